"""One collection run: ask every source for its evidence, score, store.

Sources of all projects are collected concurrently, at most
``config.concurrency`` at a time. Every collector enforces its own timeout;
the runner also stops waiting for a source that overruns it, so one hanging
source cannot hold the others. A document or JUnit report inside a git source
is read at the commit that git source was just read at, so those are
collected in a second phase.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collectors import kinds
from collectors.gitrepo import GitSource
from collectors.evidence import CollectResult, EvidenceError, EvidenceRequest, failed

from daemon.config.model import Config, Project, Source
from daemon.scoring.score import score_project
from daemon.scoring.snapshot import Snapshot
from daemon.run.record import record
from daemon.store import Store

# Called with (what finished, how many finished, how many in all).
Progress = Callable[[str, int, int], None]

# How long past its own timeout the runner still waits for a source.
_GRACE_SECONDS = 5.0
_DEFAULT_TIMEOUT = 60.0


def requests_by_source(project: Project) -> dict[str, list[EvidenceRequest]]:
    """Every fact the project's checks ask of each source, each asked once."""
    wanted: dict[str, dict[str, EvidenceRequest]] = {s.id: {} for s in project.sources}
    for pillar in project.expanded_pillars:
        for criterion in pillar.criteria:
            for check in criterion.checks:
                request = check.request()
                wanted[check.source].setdefault(request.model_dump_json(), request)
    return {source: list(requests.values()) for source, requests in wanted.items()}


def _upstream(source: Source) -> str | None:
    """The git source this one is read through, if any."""
    return getattr(source, "git", None)


def _timeout(source: Source) -> float:
    return float(getattr(source, "timeout_seconds", _DEFAULT_TIMEOUT))


class _Job:
    def __init__(self, project: Project, source: Source, requests: list[EvidenceRequest], previous: CollectResult | None):
        self.project, self.source, self.requests, self.previous = project, source, requests, previous
        self.started: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.project.id, self.source.id


def collect_sources(
    config: Config,
    projects: Sequence[Project],
    *,
    now: datetime,
    progress: Progress | None = None,
    previous: Mapping[str, Mapping[str, CollectResult]] | None = None,
) -> dict[str, list[CollectResult]]:
    """Collect every source of the given projects; faults come back as evidence errors.

    ``previous`` holds each source's latest result (by project id, then source
    id): a git source whose branch has not moved reuses what it read then.
    """
    before = previous or {}
    jobs = [
        _Job(p, s, requests, before.get(p.id, {}).get(s.id))
        for p in projects
        for s, requests in ((s, requests_by_source(p)[s.id]) for s in p.sources)
    ]
    results: dict[tuple[str, str], CollectResult] = {}
    total, done = len(jobs), 0
    lock = threading.Lock()

    def finished(job: _Job, result: CollectResult) -> None:
        nonlocal done
        with lock:
            results[job.key] = result
            done += 1
            if progress:
                progress(f"{job.project.id}/{job.source.id}", done, total)

    first = [j for j in jobs if _upstream(j.source) is None]
    second = [j for j in jobs if _upstream(j.source) is not None]
    pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="collect")
    try:
        _run_phase(pool, first, lambda j: _collect(config, j, now, results), finished, now)
        _run_phase(pool, second, lambda j: _collect(config, j, now, results), finished, now)
    finally:
        # Abandoned (overrunning) collections are not waited for.
        pool.shutdown(wait=False, cancel_futures=True)
    return {p.id: [results[(p.id, s.id)] for s in p.sources] for p in projects}


def _run_phase(
    pool: ThreadPoolExecutor,
    jobs: list[_Job],
    work: Callable[[_Job], CollectResult],
    finished: Callable[[_Job, CollectResult], None],
    now: datetime,
) -> None:
    def started(job: _Job) -> CollectResult:
        job.started = time.monotonic()
        return work(job)

    pending: dict[Future[CollectResult], _Job] = {pool.submit(started, j): j for j in jobs}
    while pending:
        complete, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
        for future in complete:
            job = pending.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # a collector bug must not sink the whole run
                error = EvidenceError(kind="malformed", message=f"collector crashed: {type(exc).__name__}: {exc}")
                result = failed(job.source.id, job.requests, error, now=now)
            finished(job, result)
        for future, job in list(pending.items()):
            limit = _timeout(job.source) + _GRACE_SECONDS
            if job.started is not None and time.monotonic() - job.started > limit:
                del pending[future]
                error = EvidenceError(kind="timeout", message=f"source {job.source.id!r} did not answer within {limit:g}s", retryable=True)
                finished(job, failed(job.source.id, job.requests, error, now=now))


def _collect(config: Config, job: _Job, now: datetime, done: dict[tuple[str, str], CollectResult]) -> CollectResult:
    upstream = _upstream(job.source)
    at = done[(job.project.id, upstream)] if upstream else None
    return collect_one(config, job.project, job.source, job.requests, now=now, upstream=at, previous=job.previous)


def collect_one(
    config: Config,
    project: Project,
    source: Source,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    upstream: CollectResult | None = None,
    previous: CollectResult | None = None,
) -> CollectResult:
    """Run the collector that serves this source's kind.

    ``upstream`` is the latest result of the git source a document or report
    is read through: it is read at that commit. ``previous`` is this source's
    own latest result (see :func:`run_collector`).
    """
    upstream_id = _upstream(source)
    repo = project.source(upstream_id) if upstream_id is not None else None
    return run_collector(source, requests, now=now, cache_dir=config.cache_path, allow_commands=config.allow_commands,
                         repo=repo, upstream=upstream, previous=previous)


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
    upstream_id, commit = _upstream(source), None
    if upstream_id is not None:
        if upstream is None or not upstream.answered or upstream.fingerprint is None or not isinstance(repo, GitSource):
            why = upstream.error.message if upstream is not None and upstream.error else "not collected yet"
            error = EvidenceError(kind="unreachable", message=f"git source {upstream_id!r} did not answer: {why}")
            return failed(source.id, requests, error, now=now)
        commit = upstream.fingerprint
    return kinds.collect(source, requests, now=now, cache_dir=cache_dir, repo=repo if commit else None, commit=commit,
                         previous=previous, allow_commands=allow_commands)


def dependents(project: Project, source_id: str) -> list[Source]:
    """Sources read through this git source (documents, reports)."""
    return [s for s in project.sources if _upstream(s) == source_id]


def run_projects(
    config: Config,
    projects: Sequence[Project],
    *,
    store: Store | None,
    now: datetime | None = None,
    progress: Progress | None = None,
    save: bool = True,
) -> list[Snapshot]:
    """Collect, score and record one snapshot per project (``save=False``: a dry run).

    Recording evaluates alerts and queues their messages, as the daemon does;
    :func:`daemon.run.record.deliver_pending` sends them.
    """
    now = now or datetime.now(timezone.utc)
    last_results = {p.id: store.latest_results(p.id) for p in projects} if store is not None else None
    collected = collect_sources(config, projects, now=now, progress=progress, previous=last_results)
    snapshots = []
    for project in projects:
        results = collected[project.id]
        if store is None or not save:
            previous = store.latest(project.id) if store else None
            snapshots.append(score_project(project, results, previous=previous, now=now))
            continue
        with store.transaction():
            for result in results:
                store.save_result(project.id, result, now)
        snapshots.append(record(store, config, project, results, now=now).snapshot)
    return snapshots
