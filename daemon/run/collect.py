"""Collecting one source: the collector its kind names, called with what that collector needs.

:func:`run_collector` is where every way of collecting ends: `collect`,
`backfill`, the daemon and Celery workers build :class:`daemon.run.jobs.CollectJob`
values and run them with :func:`daemon.run.jobs.run_job`, which calls it for
the job's source and then for each source read through it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from collectors import kinds
from collectors.evidence import CollectResult, EvidenceError, EvidenceRequest, failed
from collectors.gitrepo import GitSource
from daemon.config.model import upstream_id


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
    through, commit = upstream_id(source), None
    if through is not None:
        if upstream is None or not upstream.answered or upstream.fingerprint is None or not isinstance(repo, GitSource):
            why = upstream.error.message if upstream is not None and upstream.error else "not collected yet"
            error = EvidenceError(kind="unreachable", message=f"git source {through!r} did not answer: {why}")
            return failed(source.id, requests, error, now=now)
        commit = upstream.fingerprint
    return kinds.collect(source, requests, now=now, cache_dir=cache_dir, repo=repo if commit else None, commit=commit,
                         previous=previous, allow_commands=allow_commands)
