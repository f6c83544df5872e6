"""A draft as configuration text: YAML with a comment on every drafted check saying why it is there (pure)."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from daemon.run.draft import Draft

__all__ = ["render"]


def _scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True).removesuffix("\n...\n").strip()


def _flow(mapping: dict[str, Any]) -> str:
    """A check on one line, as the example configurations write them (PyYAML quotes what a flow mapping needs)."""
    return yaml.safe_dump(mapping, default_flow_style=True, width=math.inf, sort_keys=False, allow_unicode=True).strip()


def _comment(text: str) -> str:
    """One comment line: control characters and line breaks of a document never end it early."""
    return "# " + re.sub(r"[\x00-\x1f\x7f\u2028\u2029]+", " ", text).strip()


def render(draft: Draft, *, repo_path: str, store: str, generated: str) -> str:
    """The configuration text of `draft`; `repo_path` as the file will name the repository (relative to its folder)."""
    origin = f"from {draft.document} and " if draft.document else "with the four example pillars for "
    lines = [
        f"# Drafted by `pillarwatch init` {origin}the repository at {draft.commit[:12]} on {generated}.",
        "# Every check says why it was drafted; counts are scaled to twice what the repository holds now,",
        "# so no rule starts at 1.0. Edit freely; `pillarwatch check` validates, `pillarwatch calibrate`",
        "# compares the rules with the team's judgment. Relative paths are relative to this file's folder.",
        "version: 1",
        f"store: {_scalar(store)}",
        "display:",
        "  decimals: 0",
        "",
        "projects:",
        f"  - id: {_scalar(draft.project)}",
        f"    title: {_scalar(draft.title)}",
        "    sources:",
        "      - id: repo",
        "        kind: git",
        f"        path: {_scalar(repo_path)}",
        "        branch: HEAD",
    ]
    for source, path in draft.status_docs.items():
        lines += [f"      - id: {source}", "        kind: doc", "        git: repo", f"        path: {_scalar(path)}"]
    lines += ["", "    pillars:"]
    for pillar in draft.pillars:
        lines += [f"      - id: {_scalar(pillar.id)}", f"        title: {_scalar(pillar.title)}", "        criteria:"]
        for criterion in pillar.criteria:
            if criterion.claimed is not None:
                lines.append("          " + _comment(f"the document scores it {criterion.claimed:g} (line {criterion.line})"))
            lines += [f"          - id: {_scalar(criterion.id)}", f"            title: {_scalar(criterion.title)}",
                      "            checks:"]
            for check in criterion.checks:
                lines.append("              " + _comment(f"{check.reason} (starts at {check.start:.2f})"))
                lines.append(f"              - {_flow(check.check)}")
        lines.append("")
    return "\n".join(lines)
