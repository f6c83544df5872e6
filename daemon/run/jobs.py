"""A collection as plain data: the job, its results, and the one function that runs it.

`collect`, `backfill`, the daemon and Celery workers all collect in jobs.
A :class:`CollectJob` is one source (its *target*) and the sources read
through it (documents and reports inside a git source), which are read right
after it, at the commit just seen, on the same machine, so with the same
mirror. A job is plain data (the collector's source model as JSON, the
evidence requests, ``now``, the upstream result), so it can cross a broker to
a machine without the configuration file. :func:`run_job` runs it, in this
process (:class:`daemon.run.executor.LocalExecutor`) or on a worker
(:mod:`daemon.run.tasks`): the same collector calls either way.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from collectors import git
from collectors.evidence import CollectResult, EvidenceError, EvidenceRequest, canonical_json, failed
from collectors.kinds import KINDS
from daemon.config.model import DAEMON_SOURCE_KEYS, Config, Project, source_timeout
from daemon.run.collect import run_collector


class SourceJob(BaseModel):
    """One source to collect: its collector model as JSON, and what to ask of it."""

    source: dict[str, Any]
    requests: list[EvidenceRequest] = Field(default_factory=list)

    @classmethod
    def of(cls, source: Any, requests: list[EvidenceRequest]) -> SourceJob:
        return cls(source=source_json(source), requests=requests)

    def model(self) -> Any:
        return source_model(self.source)

    @property
    def id(self) -> str:
        return str(self.source["id"])


class CollectJob(BaseModel):
    """Everything a collection needs, without the configuration file: what crosses the broker."""

    project: str
    due: datetime
    now: datetime
    queue: str | None = None
    target: SourceJob
    repo: dict[str, Any] | None = None  # the git source `target` is read through
    upstream: CollectResult | None = None  # that git source's latest result
    previous: CollectResult | None = None  # `target`'s own latest result: unchanged evidence is reused from it
    dependents: list[SourceJob] = Field(default_factory=list)  # read through `target` right after it
    allow_commands: bool = False
    commit: str | None = None  # backfill: the past commit a git `target` is read at, instead of its branch's tip

    @property
    def timeout_seconds(self) -> float:
        """The sum of the timeouts of every source the job collects (a document read through git: its git source's)."""
        target = self.target.model()
        repo = source_model(self.repo) if self.repo else None
        return source_timeout(target, repo) + sum(source_timeout(d.model(), target) for d in self.dependents)

    def key(self) -> str:
        """The same id for the same due time of the same collection: a task sent twice is one task."""
        body = canonical_json([self.project, self.target.id, self.due.isoformat(),
                               self.model_dump(mode="json", include={"target", "repo", "dependents"})])
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "pillarwatch:" + hashlib.sha256(body.encode()).hexdigest()))

    @property
    def sources(self) -> list[str]:
        """The ids of the sources the job collects, in the order of its results."""
        return [self.target.id, *(d.id for d in self.dependents)]

    def failed(self, error: EvidenceError) -> Collected:
        """The job's answer when it never ran: every source carries `error`."""
        result = failed(self.target.id, self.target.requests, error, now=self.now)
        why = EvidenceError(kind="unreachable", message=f"git source {self.target.id!r} did not answer: {error.message}")
        return Collected(result=result, dependents=[failed(d.id, d.requests, why, now=self.now) for d in self.dependents])


class Collected(BaseModel):
    """A job's results: the target's, then each dependent's, in the job's order."""

    result: CollectResult
    dependents: list[CollectResult] = Field(default_factory=list)

    @property
    def results(self) -> list[CollectResult]:
        return [self.result, *self.dependents]


class Abandoned(Exception):
    """The executor was closed (the daemon is stopping) before the job's result came."""


def source_json(source: Any) -> dict[str, Any]:
    """A configured source as its collector's model sees it (no `schedule`, no `queue`)."""
    model = KINDS[source.kind][0]
    return source.model_dump(mode="json", include=set(model.model_fields) - DAEMON_SOURCE_KEYS)  # type: ignore[no-any-return]


def source_model(data: dict[str, Any]) -> Any:
    """The collector's source model again, validated (a worker trusts no message it did not check)."""
    kind = data.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown source kind {kind!r}")
    return KINDS[kind][0].model_validate(data)


def requests_by_source(project: Project) -> dict[str, list[EvidenceRequest]]:
    """Every fact the project's checks ask of each source, each asked once."""
    wanted: dict[str, dict[str, EvidenceRequest]] = {s.id: {} for s in project.sources}
    for pillar in project.expanded_pillars:
        for criterion in pillar.criteria:
            for check in criterion.checks:
                request = check.request()
                wanted[check.source].setdefault(request.model_dump_json(), request)
    return {source: list(requests.values()) for source, requests in wanted.items()}


def job_sources(project: Project) -> list[Any]:
    """The sources that are a job of their own: every source not read through another.

    A document or report read through a git source is collected in that git
    source's job (:attr:`CollectJob.dependents`), on its schedule and queue:
    one task per git source, never one for each source read through it.
    """
    return [s for s in project.sources if project.upstream(s) is None]


def build_job(config: Config, project: Project, source: Any, wanted: dict[str, list[EvidenceRequest]], *,
              due: datetime, now: datetime, upstream: CollectResult | None,
              previous: CollectResult | None = None, commit: str | None = None) -> CollectJob:
    """The job for one due time of one source (``wanted``: the project's requests by source)."""
    repo = project.upstream(source)
    return CollectJob(
        project=project.id, due=due, now=now, queue=getattr(source, "queue", None),
        target=SourceJob.of(source, wanted[source.id]),
        repo=source_json(repo) if repo is not None else None,
        upstream=upstream if repo is not None else None,
        previous=previous,
        dependents=[SourceJob.of(d, wanted[d.id]) for d in project.dependents(source.id)],
        allow_commands=config.allow_commands,
        commit=commit,
    )


def run_job(job: CollectJob, *, cache_dir: Path, allow_commands: bool, result: CollectResult | None = None) -> Collected:
    """Collect a job's source, then the sources read through it at the commit just seen, all at ``job.now``.

    ``allow_commands`` is the runner's own permission; a command runs only
    when the job's configuration allows it too. A collector that raises (a
    bug) raises here; the caller records that its own way (`collect` as a
    ``malformed`` result, the daemon as a run ``error``, a worker as a failed task).
    ``result`` is the target's result when it was read already (backfill reads a
    git source along its whole history at once): only the dependents are read.
    """
    source = job.target.model()
    repo = source_model(job.repo) if job.repo else None
    allowed = allow_commands and job.allow_commands
    if result is None and job.commit is not None:
        result = git.collect(source, job.target.requests, now=job.now, cache_dir=cache_dir, commit=job.commit,
                             previous=job.previous)
    elif result is None:
        result = run_collector(source, job.target.requests, now=job.now, cache_dir=cache_dir, allow_commands=allowed,
                               repo=repo, upstream=job.upstream, previous=job.previous)
    follow = [run_collector(d.model(), d.requests, now=job.now, cache_dir=cache_dir, allow_commands=allowed,
                            repo=source, upstream=result) for d in job.dependents]
    return Collected(result=result, dependents=follow)


__all__ = ["Abandoned", "CollectJob", "Collected", "SourceJob", "build_job", "job_sources", "requests_by_source",
           "run_job", "source_json", "source_model"]
