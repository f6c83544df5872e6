"""One collection run (`pillarwatch collect`): ask every source for its evidence, score, store.

Each source that is not read through another is one job, with the documents
and reports read through it (:func:`daemon.run.jobs.build_job`): the jobs the
daemon hands its executor. They run on a local executor, jobs of all projects
concurrently, at most ``config.concurrency`` at a time
(:func:`daemon.run.executor.collect_all`). Every collector enforces its own
timeout; the run also stops waiting for a job that overruns them, so one
hanging source cannot hold the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from collectors.evidence import CollectResult
from daemon.config.model import Config, Project
from daemon.run.executor import LocalExecutor, Progress, collect_all
from daemon.run.jobs import build_job, job_sources, requests_by_source
from daemon.run.record import record
from daemon.scoring.score import score_project
from daemon.scoring.snapshot import Snapshot
from daemon.store import Store


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
    jobs = []
    for project in projects:
        wanted, mine = requests_by_source(project), before.get(project.id, {})
        jobs += [build_job(config, project, source, wanted, due=now, now=now, upstream=None, previous=mine.get(source.id))
                 for source in job_sources(project)]
    collected = collect_all(LocalExecutor(config), jobs, concurrency=config.concurrency, progress=progress)
    results = {(job.project, r.source): r for job, done in zip(jobs, collected) for r in done.results}
    return {p.id: [results[(p.id, s.id)] for s in p.sources] for p in projects}


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


__all__ = ["collect_sources", "run_projects"]
