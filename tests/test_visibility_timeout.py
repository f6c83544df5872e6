"""`pillarwatch check` on a Celery task's length against `celery.visibility_timeout` (issue 17, item 8).

A task collects a git source and the documents read through it. A document
has no `timeout_seconds`: each of its reads of the repository is bounded by
the git source's, so it counts as that long. The task's hard limit is the
sum plus 10 s; with the default retries (2, from 5 s) the longest retry
delay, 10 s, comes on top: it must stay below the visibility timeout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_cli


def _folder(tmp_path: Path, *, git_timeout: float, visibility: str, doc_extra: dict[str, Any] | None = None) -> Path:
    body = {
        "version": 1, "store": "pw.db", "executor": "celery", "celery": {"visibility_timeout": visibility},
        "projects": [{"id": "svc", "sources": [
            {"id": "repo", "kind": "git", "path": str(tmp_path / "repo"), "timeout_seconds": git_timeout},
            {"id": "status", "kind": "doc", "git": "repo", "path": "docs/STATUS.md", **(doc_extra or {})},
            {"id": "plan", "kind": "doc", "git": "repo", "path": "docs/PLAN.md"},
        ], "pillars": [{"id": "p", "title": "P", "criteria": [
            {"id": "restart", "title": "Restart", "checks": [{"source": "status", "signal": "declared_score"}]},
            {"id": "todo", "title": "Todo", "checks": [{"source": "plan", "signal": "checklist", "heading": "Plan"}]},
        ]}]}],
    }
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return tmp_path


@pytest.mark.parametrize(("git_timeout", "visibility", "ok"), [
    (20, "81s", True),    # 3 x 20 s + 10 s + 10 s = 80 s < 81 s (a document counted as 60 s would fail: 160 s)
    (20, "80s", False),   # 80 s: not shorter
    (100, "5m", False),   # 3 x 100 s + 20 s = 320 s (a document counted as 60 s would pass: 240 s)
    (100, "6m", True),
])
def test_a_document_read_through_git_counts_as_its_git_sources_timeout(tmp_path, git_timeout, visibility, ok):
    folder = _folder(tmp_path, git_timeout=git_timeout, visibility=visibility)
    if ok:
        run_cli("check", "--config", "pw.yaml", cwd=folder)
        return
    out = run_cli("check", "--config", "pw.yaml", cwd=folder, code=2)
    total = 3 * git_timeout + 20
    assert "pw.yaml:" in out.stderr and "projects[0].sources[0].timeout_seconds" in out.stderr
    assert f"a task of this source may run {total:g}s" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("key", ["schedule", "queue"])
def test_a_document_read_through_git_takes_its_schedule_and_queue(tmp_path, key):
    """Collected in its git source's task (one task per git source), it cannot have a schedule or queue of its own."""
    value = {"every": "5m"} if key == "schedule" else "docs"
    folder = _folder(tmp_path, git_timeout=20, visibility="1h", doc_extra={key: value})
    out = run_cli("check", "--config", "pw.yaml", cwd=folder, code=2)
    assert f"projects[0].sources[1].{key}: a source read through git source 'repo' is collected in that source's job" in out.stderr
