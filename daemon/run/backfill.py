"""Backfill: score a project at past commits of its git history.

The project's first git source (or the one named) sets the timeline: one
snapshot per commit of its branch, first parents only, ``taken_at`` = the
commit time, ``origin = "backfilled"``. Other git sources are read at their
last commit before that time; documents and reports inside a git source are
read at the same commit, in the same job (:mod:`daemon.run.jobs`), on a
local executor. Evidence that cannot be had for the past (CI APIs,
live endpoints, commands) is an ``unsupported`` error, so those criteria are
``unknown`` there. Nothing is checked out: every read is from commit objects.

Running it twice adds nothing: commits already backfilled are skipped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from collectors import git, git_history
from collectors.evidence import CollectResult, EvidenceError, EvidenceRequest, SourceFault, failed
from collectors.history_reader import collect_history
from daemon.config.model import Config, Project
from daemon.errors import InputError
from daemon.run.executor import Executor, LocalExecutor, Progress
from daemon.run.jobs import build_job, requests_by_source, run_job, source_json, source_model
from daemon.scoring.score import score_project
from daemon.scoring.snapshot import Snapshot
from daemon.store import Store

_BATCH = 50  # snapshots saved per transaction


class BackfillReport(BaseModel):
    project: str
    source: str
    commits: int  # on the timeline asked for
    added: int
    skipped: int  # already backfilled
    first: datetime | None = None
    last: datetime | None = None


def backfill(
    store: Store,
    config: Config,
    project: Project,
    *,
    since: datetime | None = None,
    commits: int | None = None,
    source_id: str | None = None,
    progress: Progress | None = None,
) -> BackfillReport:
    """Store one backfilled snapshot per past commit not backfilled yet."""
    if since is None and commits is None:
        raise InputError("say how far back: --since DATE or --commits N")
    timeline = timeline_source(project, source_id)
    try:
        history = git_history.first_parent_log(timeline, cache_dir=config.cache_path, since=since, max_count=commits)
    except SourceFault as fault:
        raise InputError(f"cannot read the history of {project.id}/{timeline.id}: {fault.error.message}") from None
    done = store.backfilled_commits(project.id, timeline.id)
    todo = [(sha, when) for sha, when in history if sha not in done]
    added = backfill_commits(store, config, project, todo, source_id=timeline.id, progress=progress)
    return BackfillReport(
        project=project.id, source=timeline.id, commits=len(history), added=added, skipped=len(history) - len(todo),
        first=history[0][1] if history else None, last=history[-1][1] if history else None,
    )


def backfill_commits(
    store: Store, config: Config, project: Project, todo: list[tuple[str, datetime]], *,
    source_id: str | None = None, progress: Progress | None = None,
) -> int:
    """Store one backfilled snapshot at each ``(commit, commit time)`` of the timeline source; the number stored.

    The caller chooses the commits (``backfill``: the history not backfilled yet;
    ``calibrate``: those the team judged).
    """
    timeline = timeline_source(project, source_id)
    wanted = requests_by_source(project)
    executor = LocalExecutor(config)
    # The timeline source read along its history at once (each commit's result as a collection there gives it);
    # the other git sources at their commit of the time, reusing their last answers while it does not move.
    collector_model = source_model(source_json(timeline))
    along = collect_history(collector_model, wanted[timeline.id], todo, cache_dir=config.cache_path)
    last: dict[str, CollectResult] = {}
    backfillable = [s.id for s in project.sources if s.kind == "git" or project.upstream(s) is not None]
    pending: list[Snapshot] = []

    def save() -> None:
        # A few snapshots a transaction: one commit (an fsync) per snapshot cost more than reading the commit.
        # Each is whole; a backfill cut short keeps what was saved and carries on from there when run again.
        with store.transaction():
            for snapshot in pending:
                store.save_snapshot(snapshot)
        pending.clear()

    added = 0
    try:
        for n, (sha, when) in enumerate(todo, 1):
            results = _collect_at(config, project, timeline, sha, when, wanted, executor, next(along), last)
            snapshot = score_project(project, results, previous=None, now=when)
            answered = {r.source for r in results if r.answered}
            pending.append(snapshot.model_copy(update={
                "origin": "backfilled",
                # Complete when every source the past can answer did.
                "complete": all(s in answered for s in backfillable),
            }))
            added += 1
            if len(pending) == _BATCH:
                save()
            if progress:
                progress(f"{sha[:7]} {when:%Y-%m-%d}", n, len(todo))
    finally:
        save()
    return added


def timeline_source(project: Project, source_id: str | None) -> git.GitSource:
    sources = [s for s in project.sources if s.kind == "git"]
    if source_id is not None:
        sources = [s for s in sources if s.id == source_id]
        if not sources:
            raise InputError(f"no git source {source_id!r} in project {project.id!r}")
    if not sources:
        raise InputError(f"project {project.id!r} has no git source to backfill from")
    return sources[0]  # type: ignore[no-any-return]


def _collect_at(
    config: Config, project: Project, timeline: git.GitSource, sha: str, when: datetime,
    wanted: dict[str, list[EvidenceRequest]], executor: Executor, read: CollectResult, last: dict[str, CollectResult],
) -> list[CollectResult]:
    """Every source's result as it was at `when`: each git source (and what is read through it) at its
    commit then, the rest unsupported. `read` is the timeline source's result at `sha`; `last` the other
    git sources' results at the commit before (updated)."""
    results: dict[str, CollectResult] = {}
    for source in project.sources:
        if source.kind != "git":
            continue
        commit = sha if source.id == timeline.id else _commit_before(source, when, config)
        job = build_job(config, project, source, wanted, due=when, now=when, upstream=None, commit=commit,
                        previous=last.get(source.id) if source.id != timeline.id else None)
        if commit is None:
            error = EvidenceError(kind="not_found", message=f"{source.id} had no commit before {when:%Y-%m-%d %H:%M}Z")
            collected = job.failed(error)
        elif source.id == timeline.id:
            collected = run_job(job, cache_dir=config.cache_path, allow_commands=job.allow_commands, result=read)
        else:
            collected = executor.collect(job)
            last[source.id] = collected.result
        results.update((r.source, r) for r in collected.results)
    return [results[s.id] if s.id in results else _unsupported(s, wanted[s.id], when) for s in project.sources]


def _unsupported(source: Any, requests: list[EvidenceRequest], when: datetime) -> CollectResult:
    error = EvidenceError(kind="unsupported", message=f"a {source.kind} source cannot be read for the past")
    return failed(source.id, requests, error, now=when)


def _commit_before(source: git.GitSource, when: datetime, config: Config) -> str | None:
    try:
        return git_history.commit_before(source, when, cache_dir=config.cache_path)
    except SourceFault:
        return None
