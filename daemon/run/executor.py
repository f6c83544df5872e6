"""Where a due source is collected: in the daemon's process, or on Celery workers.

The daemon hands its executor one :class:`CollectJob` per due source and gets
back a :class:`Collected`: the source's result, and the results of the
sources read through it (documents and reports inside a git source, read at
the commit just seen, on the same machine, so the same mirror). A job is plain
data (the collector's source model as JSON, the evidence requests, ``now``,
the upstream result), so it can cross a broker to a machine without the
configuration file; :func:`run_job` runs it, in the daemon
(:class:`LocalExecutor`) or on a worker (:mod:`daemon.run.tasks`): the same
collector functions either way.

:class:`CeleryExecutor` sends the job as a task and waits for its result in
the calling thread, which is one of the daemon's collect-job threads: they
block on the collection today, and now block on a socket instead. That keeps
what the daemon promises per source in one place (at most one run per source
at a time, claim → collect → record, the shutdown grace), and
``concurrency`` bounds the tasks in flight, so the broker's queue stays short
and the wait is about the collection's own time. The wait is bounded (see
:meth:`daemon.config.model.CelerySettings.wait_seconds`); past it the run is
recorded as a ``timeout`` error and the task, if it has not started, expires
unrun (which also ends the redeliveries of a task that kills every worker
process it runs in). Nothing about scoring, storage or alerts depends on the
executor.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, Field

from collectors.evidence import CollectResult, EvidenceError, EvidenceRequest, canonical_json, failed
from collectors.kinds import KINDS

from daemon.config.model import DAEMON_SOURCE_KEYS, Config, Project, source_timeout
from daemon.config.settings import CelerySettings
from daemon.run.collect import dependents, run_collector

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("pillarwatch.executor")


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

    @property
    def timeout_seconds(self) -> float:
        """The sum of the timeouts of every source the job collects."""
        return sum(source_timeout(s.model()) for s in (self.target, *self.dependents))

    def key(self) -> str:
        """The same id for the same due time of the same collection: a task sent twice is one task."""
        body = canonical_json([self.project, self.target.id, self.due.isoformat(),
                               self.model_dump(mode="json", include={"target", "repo", "dependents"})])
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "pillarwatch:" + hashlib.sha256(body.encode()).hexdigest()))

    def failed(self, error: EvidenceError) -> Collected:
        """The job's answer when it never ran: every source carries `error`."""
        result = failed(self.target.id, self.target.requests, error, now=self.now)
        why = EvidenceError(kind="unreachable", message=f"git source {self.target.id!r} did not answer: {error.message}")
        return Collected(result=result, dependents=[failed(d.id, d.requests, why, now=self.now) for d in self.dependents])


class Collected(BaseModel):
    """A job's results: the target's, then each dependent's, in the job's order."""

    result: CollectResult
    dependents: list[CollectResult] = Field(default_factory=list)


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


def build_job(config: Config, project: Project, source: Any, wanted: dict[str, list[EvidenceRequest]], *,
              due: datetime, now: datetime, upstream: CollectResult | None,
              previous: CollectResult | None = None) -> CollectJob:
    """The job for one due time of one source (``wanted``: the project's requests by source)."""
    repo_id = getattr(source, "git", None)
    return CollectJob(
        project=project.id, due=due, now=now, queue=getattr(source, "queue", None),
        target=SourceJob.of(source, wanted[source.id]),
        repo=source_json(project.source(repo_id)) if repo_id else None,
        upstream=upstream if repo_id else None,
        previous=previous,
        dependents=[SourceJob.of(d, wanted[d.id]) for d in dependents(project, source.id)],
        allow_commands=config.allow_commands,
    )


def run_job(job: CollectJob, *, cache_dir: Path, allow_commands: bool) -> Collected:
    """Collect a job's source, then the sources read through it at the commit just seen.

    ``allow_commands`` is the runner's own permission; a command runs only
    when the job's configuration allows it too.
    """
    source = job.target.model()
    repo = source_model(job.repo) if job.repo else None
    allowed = allow_commands and job.allow_commands
    result = run_collector(source, job.target.requests, now=job.now, cache_dir=cache_dir, allow_commands=allowed,
                           repo=repo, upstream=job.upstream, previous=job.previous)
    follow = [run_collector(d.model(), d.requests, now=datetime.now(timezone.utc), cache_dir=cache_dir,
                            allow_commands=allowed, repo=source, upstream=result) for d in job.dependents]
    return Collected(result=result, dependents=follow)


class Abandoned(Exception):
    """The executor was closed (the daemon is stopping) before the job's result came."""


class Executor(Protocol):
    def collect(self, job: CollectJob) -> Collected:
        """Run one job and return its results; source faults are data. Raises :class:`Abandoned` once closed."""
        ...

    def close(self) -> None:
        """Stop waiting: a collection still waited for raises :class:`Abandoned`."""
        ...


class LocalExecutor:
    """Collect in the calling thread: what the daemon always did."""

    def __init__(self, config: Config):
        self.cache_dir = config.cache_path

    def collect(self, job: CollectJob) -> Collected:
        return run_job(job, cache_dir=self.cache_dir, allow_commands=job.allow_commands)

    def close(self) -> None:
        pass


# How often a waiting thread looks up from the result backend to see whether it should stop.
_SLICE_SECONDS = 0.5
# Publishing a task: a broker that is briefly away is retried this way, then the run is an `unreachable` error.
_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}


class CeleryExecutor:
    """Send each job as a Celery task to its source's queue; wait for its result in the calling thread."""

    def __init__(self, settings: CelerySettings, app: Celery | None = None):
        from daemon.run.tasks import celery_app

        self.settings = settings
        self.app = app or celery_app(settings)
        self._closed = threading.Event()

    def collect(self, job: CollectJob) -> Collected:
        from celery.exceptions import TimeoutError as ResultTimeout

        from daemon.run.tasks import TASK_NAME

        settings = self.settings
        soft, hard = settings.time_limits(job.timeout_seconds)
        wait = settings.wait_seconds(job.timeout_seconds)
        queue = job.queue or settings.default_queue
        try:
            pending = self.app.send_task(
                TASK_NAME, args=[job.model_dump(mode="json")], task_id=job.key(), queue=queue,
                soft_time_limit=soft, time_limit=hard,
                # A task nobody started before the daemon stops waiting is dropped unrun.
                expires=datetime.now(timezone.utc) + timedelta(seconds=wait),
                retry=True, retry_policy=_PUBLISH_RETRY,
            )
        except Exception as exc:  # kombu/redis connection errors: the broker (or the result backend) is away
            # Celery's own words for a backend that is away ask for a restart; none is needed, the next run reconnects.
            why = "the result backend does not answer" if "Retry limit exceeded" in str(exc) else _line(exc)
            return job.failed(EvidenceError(kind="unreachable", message=f"cannot send the task: {why}", retryable=True))
        deadline = time.monotonic() + wait
        try:
            while True:
                if self._closed.is_set():
                    raise Abandoned(f"{job.project}/{job.target.id}: no result yet from queue {queue!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    error = EvidenceError(kind="timeout", retryable=True,
                                          message=f"no worker answered on queue {queue!r} within {wait:g}s")
                    return job.failed(error)
                try:
                    value = pending.get(timeout=min(left, _SLICE_SECONDS), propagate=False, interval=0.1)
                except ResultTimeout:
                    continue
                except Exception as exc:  # the result backend is away: keep waiting until the deadline
                    log.warning("%s/%s: result backend: %s", job.project, job.target.id, _line(exc))
                    self._closed.wait(_SLICE_SECONDS)
                    continue
                return self._answer(job, pending.state, value)
        finally:
            _forget(pending)

    def _answer(self, job: CollectJob, state: str, value: Any) -> Collected:
        if state == "SUCCESS":
            try:
                return Collected.model_validate(value)
            except ValueError as exc:
                error = EvidenceError(kind="malformed", message=f"a worker answered with no collection result: {_line(exc)}")
                return job.failed(error)
        name = type(value).__name__ if isinstance(value, BaseException) else state
        if name in ("TimeLimitExceeded", "SoftTimeLimitExceeded"):
            _, hard = self.settings.time_limits(job.timeout_seconds)
            return job.failed(EvidenceError(kind="timeout", message=f"the worker stopped the collection after {hard:g}s",
                                            retryable=True))
        if name in ("TaskRevokedError", "REVOKED"):
            return job.failed(EvidenceError(kind="timeout", message="the task expired before a worker started it", retryable=True))
        # A collector bug raised on the worker: the same answer the local runner gives.
        return job.failed(EvidenceError(kind="malformed", message=f"collector crashed on a worker: {name}: {_line(value)}"))

    def close(self) -> None:
        self._closed.set()


def _forget(pending: Any) -> None:
    """Drop a read (or given up) result from the backend: it holds only results in flight."""
    try:
        pending.forget()
    except Exception:  # the backend is away; the result expires by itself
        pass


def _line(exc: object) -> str:
    return " ".join(str(exc).split())[:300]


def make_executor(config: Config) -> Executor:
    """The executor `config.executor` names."""
    if config.executor == "celery":
        return CeleryExecutor(config.celery)
    return LocalExecutor(config)
