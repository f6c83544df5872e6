"""Collecting one source: the collector its kind names, called with what that collector needs.

:func:`run_collector` is where every way of collecting ends: `collect`,
`backfill`, the daemon and Celery workers build :class:`daemon.run.jobs.CollectJob`
values and run them with :func:`daemon.run.jobs.run_job`, which calls it for
the job's source and then for each source read through it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from collectors import git
from collectors.kinds import KINDS
from collectors.evidence import CollectResult, EvidenceError, EvidenceRequest, failed

from daemon.config.model import upstream_id as _upstream  # the name run_collector asks the model through


def run_collector(
    source: Any,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path,
    allow_commands: bool = False,
    repo: Any = None,
    upstream: CollectResult | None = None,
    previous: CollectResult | None = None,
) -> CollectResult:
    """The collector call itself, from a source model alone: what a Celery worker runs too.

    ``repo`` is the git source a document or report is read through, and
    ``upstream`` its latest result. ``previous`` is this source's own latest
    result: a git source whose branch has not moved since reuses the evidence
    it read from that commit instead of walking its tree again.
    """
    upstream_id = _upstream(source)
    if upstream_id is not None:
        if upstream is None or not upstream.answered or upstream.fingerprint is None or not isinstance(repo, git.GitSource):
            why = upstream.error.message if upstream is not None and upstream.error else "not collected yet"
            error = EvidenceError(kind="unreachable", message=f"git source {upstream_id!r} did not answer: {why}")
            return failed(source.id, requests, error, now=now)
        return _collector(source.kind)(source, requests, now=now, cache_dir=cache_dir, repo=repo, commit=upstream.fingerprint)
    if source.kind == "command":
        return _collector("command")(source, requests, now=now, allowed=allow_commands)
    if source.kind == "git":
        return git.collect(source, requests, now=now, cache_dir=cache_dir, previous=previous)
    return _collector(source.kind)(source, requests, now=now, cache_dir=cache_dir)


def _collector(kind: str) -> Callable[..., CollectResult]:
    return KINDS[kind][1].collect  # type: ignore[no-any-return]
