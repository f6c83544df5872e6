"""Evidence from a Markdown document: declared scores, ratios, checklists, mentions.

The document is read from disk, or from a git source at a given commit, and
parsed once with markdown-it; every request is then answered from the parsed
lines and headings. Line numbers in provenance are 1-based source lines.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from collectors.evidence import (
    CollectResult,
    Evidence,
    EvidenceRequest,
    Provenance,
    SourceFault,
    answer,
    failed,
    signal_params,
)
from collectors.gitrepo import GitSource, read_text
from collectors.markdown import (
    RATIO_VALUE,
    SCORE_VALUE,
    Markdown,
    decimal,
    find_heading,
    label_value,
    normalise_title,
    parse,
    read_document,
    without_list_marker,
)
from collectors.models.docs import SIGNALS, Checklist, DeclaredScore, DocSource, Mentions, Ratio
from collectors.regex import compile_regex

__all__ = ["SIGNALS", "Checklist", "DeclaredScore", "DocSource", "Mentions", "Ratio", "collect"]

_MAX_MENTION_LINES = 20


# ---------------------------------------------------------------------------
# Signals: each returns (value, line) or raises SourceFault (not_found: not in the document)

def _find_line(parsed: Markdown, value: re.Pattern[str], title: str) -> tuple[int, re.Match[str]] | None:
    key = normalise_title(title)
    for line, text in parsed.lines:
        found = label_value(without_list_marker(text), value)
        if found and normalise_title(found[0]) == key:
            return line, found[1]
    return None


def _declared_score(parsed: Markdown, p: DeclaredScore, path: str) -> tuple[dict[str, Any], int | None]:
    found = _find_line(parsed, SCORE_VALUE, p.title)
    if found is None:
        raise SourceFault("not_found", f"{path}: no line '{p.title}: <score>'")
    line, match = found
    score = decimal(match.group("num"))
    if not 0.0 <= score <= 1.0:
        raise SourceFault("malformed", f"{path}:{line}: score {match.group('num')} for {p.title!r} is outside 0-1")
    return {"score": score}, line


def _ratio(parsed: Markdown, p: Ratio, path: str) -> tuple[dict[str, Any], int | None]:
    found = _find_line(parsed, RATIO_VALUE, p.label)
    if found is None:
        raise SourceFault("not_found", f"{path}: no line '{p.label}: <n>/<d>'")
    line, match = found
    num, den = int(match.group("num")), int(match.group("den"))
    if den == 0:
        raise SourceFault("malformed", f"{path}:{line}: ratio {num}/0 for {p.label!r} has a zero denominator")
    return {"ratio": num / den, "numerator": num, "denominator": den}, line


def _checklist(parsed: Markdown, p: Checklist, path: str) -> tuple[dict[str, Any], int | None]:
    heading = find_heading(parsed, p.heading)
    if heading is None:
        raise SourceFault("not_found", f"{path}: no heading {p.heading!r}")
    items = [ticked for line, ticked in parsed.tasks if heading.line < line < heading.end]
    if not items:
        raise SourceFault("not_found", f"{path}:{heading.line}: no task items (- [ ] / - [x]) under heading {p.heading!r}")
    done = sum(items)
    return {"ratio": done / len(items), "done": done, "total": len(items)}, heading.line


def _mentions(parsed: Markdown, p: Mentions, path: str) -> tuple[dict[str, Any], int | None]:
    first, end = 1, len(parsed.raw_lines) + 1
    heading = None
    if p.heading is not None:
        heading = find_heading(parsed, p.heading)
        if heading is None:
            raise SourceFault("not_found", f"{path}: no heading {p.heading!r}")
        first, end = heading.line + 1, heading.end
    body = "\n".join(parsed.raw_lines[first - 1 : end - 1])
    starts = [m.start() for m in compile_regex(p.regex, multiline=True).finditer(body)]
    lines = [first + body.count("\n", 0, s) for s in starts[:_MAX_MENTION_LINES]]
    line = heading.line if heading is not None else (lines[0] if lines else None)
    return {"count": len(starts), "lines": lines}, line


_ANSWER = {
    "declared_score": _declared_score,
    "ratio": _ratio,
    "checklist": _checklist,
    "mentions": _mentions,
}


# ---------------------------------------------------------------------------
# Reading the document


def _read_git(source: DocSource, repo: GitSource, commit: str | None, cache_dir: Path | None) -> tuple[str, str]:
    # The runner always passes cache_dir; a local repository (tests) needs none. One rule for a document
    # wherever it is read: text that is not UTF-8 is refused (malformed), never read with replacements.
    text, sha = read_text(repo, source.path, cache_dir=cache_dir, commit=commit, max_bytes=source.max_bytes,
                          strict=True)
    return text.removeprefix("\ufeff"), sha


def _answer(parsed: Markdown, request: EvidenceRequest, path: str) -> tuple[dict[str, Any], int | None]:
    params = signal_params("doc", SIGNALS, request)
    return _ANSWER[request.signal](parsed, params, path)  # type: ignore[operator]


def _evidence(source: DocSource, parsed: Markdown, request: EvidenceRequest, sha: str | None, now: datetime) -> Evidence:
    def read() -> tuple[dict[str, Any], Provenance]:
        value, line = _answer(parsed, request, source.path)
        return value, Provenance(path=source.path, commit=sha, line=line)

    return answer(source.id, request, now, read, provenance=Provenance(path=source.path, commit=sha))


def collect(
    source: DocSource,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path | None = None,
    repo: GitSource | None = None,
    commit: str | None = None,
    previous: CollectResult | None = None,
    allow_commands: bool = False,
) -> CollectResult:
    """Answer every request from one reading of the document: from `repo` at `commit` when the document
    is in a git source, else from disk. `previous` and `allow_commands` are not used."""
    sha: str | None = None
    try:
        if repo is not None:
            text, sha = _read_git(source, repo, commit, cache_dir)
        elif source.git is not None:
            raise SourceFault("unsupported", f"document {source.path} is in git source {source.git!r}, which was not given")
        else:
            text = read_document(source.path, source.max_bytes)
    except SourceFault as fault:
        return failed(source.id, requests, fault.error, now=now)

    parsed = parse(text)
    evidence = [_evidence(source, parsed, request, sha, now) for request in requests]
    fingerprint = sha or hashlib.sha256(text.encode()).hexdigest()[:16]
    return CollectResult(source=source.id, evidence=evidence, fingerprint=fingerprint)
