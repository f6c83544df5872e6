"""The Celery side of `executor: celery`: the app, its one task, what a worker needs, and the daemon's executor.

The app is built from the configuration's ``celery:`` settings
(:class:`daemon.config.settings.CelerySettings`) by the daemon, which sends tasks, and
by `pillarwatch worker`, which runs them. The task ``pillarwatch.collect``
takes a :class:`daemon.run.jobs.CollectJob` as JSON, rebuilds the source
models and calls :func:`daemon.run.jobs.run_job` (the collector functions the
daemon calls with `executor: local`), and returns the
:class:`daemon.run.jobs.Collected` as JSON.

Delivery, as the daemon relies on it:

- acknowledged late (``acks_late``, ``reject_on_worker_lost``, a prefetch of
  one): a worker that dies mid-task loses nothing, the broker delivers the
  task again (Redis after ``visibility_timeout``, RabbitMQ when the
  connection drops);
- a soft time limit from the sources' timeouts (the task returns a
  ``timeout`` result), and a hard one a little later (the worker process is
  killed);
- retried by Celery only when the source was ``unreachable`` and the fault
  is retryable (``autoretry_for``), ``retry_delay`` doubling, at most
  ``max_retries`` times; the last attempt returns the fault as data. Every
  other fault is data at once, as in the daemon.

A task may thus run twice for the same due time; the daemon records one
result per due time and reads one result per task id, so it stores one
snapshot. Results are JSON only; broker URLs (which may hold passwords) are
never logged.

:class:`CeleryExecutor` sends the job as a task and waits for its result in
the calling thread, which is one of the daemon's collect-job threads: they
would block on the collection in the daemon's process, and block on a socket
instead. That keeps what the daemon promises per source in one place (at
most one run per source at a time, claim → collect → record, the shutdown
grace), and ``concurrency`` bounds the tasks in flight, so the broker's queue
stays short and the wait is about the collection's own time. The wait is
bounded (see :meth:`daemon.config.settings.CelerySettings.wait_seconds`); past
it the run is recorded as a ``timeout`` error and the task, if it has not
started, expires unrun (which also ends the redeliveries of a task that kills
every worker process it runs in).

Faults of the broker and the result backend are ``unreachable`` errors, sent
again by the daemon with the retry policy of an unreachable source
(``max_retries``, ``retry_delay`` doubling), within the same wait:

- a task the broker lost (a Redis restarted without persistence), or whose
  result the worker could not store and so never came, is found by
  :mod:`daemon.run.lost` within seconds instead of at the end of the wait;
- a task whose stored failure is a connection fault (the worker could not
  store its result; Celery then stored that) is not a collector crash.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from celery.exceptions import TimeoutError as ResultTimeout
from kombu.utils.url import maybe_sanitize_url

from collectors.evidence import EvidenceError
from daemon.config.settings import CelerySettings
from daemon.run.jobs import Abandoned, Collected, CollectJob, run_job
from daemon.run.lost import LostWatch

TASK_NAME = "pillarwatch.collect"

log = logging.getLogger("pillarwatch.worker")
send_log = logging.getLogger("pillarwatch.executor")


class Unreachable(Exception):
    """A source that did not answer and may on another try: the one fault Celery retries."""


@dataclass
class WorkerOptions:
    """This worker's own side of a job: its git and HTTP cache, and whether it runs commands."""

    cache_dir: Path
    allow_commands: bool = False


# Set by `pillarwatch worker` before the pool forks; its processes inherit it.
_worker = WorkerOptions(cache_dir=Path(os.environ.get("PILLARWATCH_CACHE_DIR", ".pillarwatch/mirrors")))


def configure_worker(options: WorkerOptions) -> None:
    global _worker
    _worker = options


def collect(task: Task, job: dict[str, Any]) -> dict[str, Any]:
    """The task: one job in, its results out (JSON)."""
    parsed = CollectJob.model_validate(job)
    started = time.monotonic()
    try:
        collected = run_job(parsed, cache_dir=_worker.cache_dir, allow_commands=_worker.allow_commands)
    except SoftTimeLimitExceeded:
        limit = task.request.timelimit[1] if task.request.timelimit else None
        message = f"collection stopped by the worker's time limit{f' ({limit:g}s)' if limit else ''}"
        collected = parsed.failed(EvidenceError(kind="timeout", message=message, retryable=True))
    error = collected.result.error
    log.info("%s/%s: collected in %.2fs%s", parsed.project, parsed.target.id, time.monotonic() - started,
             f" ({error.kind}: {error.message})" if error else "")
    if error is not None and error.kind == "unreachable" and error.retryable and task.request.retries < (task.max_retries or 0):
        log.info("%s/%s: %s; retrying", parsed.project, parsed.target.id, error.message)
        raise Unreachable(error.message)
    return collected.model_dump(mode="json")


def celery_app(settings: CelerySettings) -> Celery:
    """A Celery app for these settings, with the collect task registered."""
    broker = settings.broker()
    visibility = settings.visibility_timeout.total_seconds()
    app = Celery("pillarwatch", set_as_current=False)
    app.conf.update(
        broker_url=broker,
        result_backend=settings.backend(),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_default_queue=settings.default_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_deduplicate_successful_tasks=True,  # a redelivered task whose result is already stored is not run again
        task_ignore_result=False,
        task_track_started=True,  # STARTED: a worker took the task (the daemon's `queue_timeout` ends there)
        # The daemon deletes a result once read; one it gave up on goes after a while.
        result_expires=max(3600.0, visibility),
        broker_transport_options={
            "visibility_timeout": visibility,
            # Look for tasks of dead workers often enough to notice one after about `visibility_timeout`.
            "unacked_restore_interval": max(1, min(10, int(visibility // 10))),
            "unacked_restore_throttle": 1,
        },
        # A Redis result backend that is away fails a run in seconds (`unreachable`), not in minutes.
        result_backend_transport_options={"retry_policy": {"max_retries": 3, "interval_start": 0, "interval_step": 0.5,
                                                           "interval_max": 1}},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        enable_utc=True,
        timezone="UTC",
    )
    countdowns = settings.retry_countdowns()
    app.task(
        name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True,
        autoretry_for=(Unreachable,), max_retries=settings.max_retries,
        retry_backoff=countdowns[0] if countdowns else False, retry_backoff_max=countdowns[-1] if countdowns else 600,
        retry_jitter=False,
    )(collect)
    return app


def describe(settings: CelerySettings) -> str:
    """The broker and backend for a log line, passwords masked."""
    return f"broker {maybe_sanitize_url(settings.broker())}, results {maybe_sanitize_url(settings.backend())}"


# How often a waiting thread looks up from the result backend to see whether it should stop.
_SLICE_SECONDS = 0.5
# Publishing a task: a broker that is briefly away is retried this way, then the run is an `unreachable` error.
_PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}
# A task's failure of these kinds (by class name: redis', kombu's, the built-in ones) is the result backend or the
# broker away while the worker stored the result, not a collector's bug.
_CONNECTION_FAULTS = frozenset({"ConnectionError", "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError",
                                "TimeoutError", "OperationalError", "BusyLoadingError", "RecoverableConnectionError"})


class CeleryExecutor:
    """Send each job as a Celery task to its source's queue; wait for its result in the calling thread."""

    def __init__(self, settings: CelerySettings, app: Celery | None = None):
        self.settings = settings
        self.app = app or celery_app(settings)
        self._closed = threading.Event()
        self._lost = LostWatch.for_broker(self.app, settings.broker())

    def collect(self, job: CollectJob) -> Collected:
        deadline = time.monotonic() + self.settings.wait_seconds(job.timeout_seconds)
        delays = self.settings.retry_countdowns()
        for attempt in range(len(delays) + 1):
            collected, again = self._attempt(job, deadline)
            error = collected.result.error
            if not again or attempt == len(delays) or error is None:
                return collected
            # The retry policy of an unreachable source (`max_retries`, `retry_delay` doubling), within the wait.
            send_log.info("%s/%s: %s; sending the task again in %ds", job.project, job.target.id, error.message, delays[attempt])
            if self._closed.wait(min(delays[attempt], max(0.0, deadline - time.monotonic()))):
                raise Abandoned(f"{job.project}/{job.target.id}: stopped before sending the task again")
        return collected

    def _attempt(self, job: CollectJob, deadline: float) -> tuple[Collected, bool]:
        """Send the task once and wait for its answer: (the job's results, whether to send it again)."""
        settings = self.settings
        soft, hard = settings.time_limits(job.timeout_seconds)
        wait = max(0.0, deadline - time.monotonic())
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
            return job.failed(EvidenceError(kind="unreachable", message=f"cannot send the task: {why}", retryable=True)), False
        watch = self._lost.task(pending.id, queue) if self._lost is not None else None
        sent, untaken, taken = time.monotonic(), settings.queue_wait_seconds(queue), False
        try:
            while True:
                if self._closed.is_set():
                    raise Abandoned(f"{job.project}/{job.target.id}: no result yet from queue {queue!r}")
                if not taken and time.monotonic() > sent + untaken:
                    state = _state(pending)
                    taken = state not in ("PENDING", "UNKNOWN")  # a worker took it: STARTED, RETRY, a result
                    if state == "PENDING":
                        return job.failed(EvidenceError(kind="timeout", retryable=True,
                                                        message=f"no worker took the task on queue {queue!r} within {untaken:g}s")), False
                left = deadline - time.monotonic()
                if left <= 0:
                    error = EvidenceError(kind="timeout", retryable=True,
                                          message=f"no worker answered on queue {queue!r} within {wait:g}s")
                    return job.failed(error), False
                try:
                    value = pending.get(timeout=min(left, _SLICE_SECONDS), propagate=False, interval=0.1)
                except ResultTimeout:
                    if watch is not None and watch.lost() and _state(pending) == "PENDING":  # a result stored meanwhile wins
                        send_log.warning("%s/%s: %s", job.project, job.target.id, watch.message())
                        return job.failed(EvidenceError(kind="unreachable", message=watch.message(), retryable=True)), True
                    continue
                except Exception as exc:  # the result backend is away: keep waiting until the deadline
                    send_log.warning("%s/%s: result backend: %s", job.project, job.target.id, _line(exc))
                    self._closed.wait(_SLICE_SECONDS)
                    continue
                return self._answer(job, pending.state, value)
        finally:
            _forget(pending)

    def _answer(self, job: CollectJob, state: str, value: Any) -> tuple[Collected, bool]:
        if state == "SUCCESS":
            try:
                return Collected.model_validate(value), False
            except ValueError as exc:
                error = EvidenceError(kind="malformed", message=f"a worker answered with no collection result: {_line(exc)}")
                return job.failed(error), False
        name = type(value).__name__ if isinstance(value, BaseException) else state
        if name in ("TimeLimitExceeded", "SoftTimeLimitExceeded"):
            _, hard = self.settings.time_limits(job.timeout_seconds)
            return job.failed(EvidenceError(kind="timeout", message=f"the worker stopped the collection after {hard:g}s",
                                            retryable=True)), False
        if name in ("TaskRevokedError", "REVOKED"):
            return job.failed(EvidenceError(kind="timeout", message="the task expired before a worker started it",
                                            retryable=True)), False
        if name in _CONNECTION_FAULTS or isinstance(value, OSError):
            # The collection ran, but storing its result failed (the result backend away during an outage); Celery
            # then stored that failure as the task's. Not a crash: the source is unreachable for now, sent again.
            message = f"the worker could not store its result (result backend away: {name}: {_line(value)})"
            return job.failed(EvidenceError(kind="unreachable", message=message, retryable=True)), True
        # A collector bug raised on the worker: the same answer the local runner gives.
        return job.failed(EvidenceError(kind="malformed", message=f"collector crashed on a worker: {name}: {_line(value)}")), False

    def close(self) -> None:
        self._closed.set()


def _state(pending: Any) -> str:
    """The task's state in the result backend; ``UNKNOWN`` when the backend is away."""
    try:
        return str(pending.state)
    except Exception:  # kombu/redis connection errors: not known, so not given up for it; asked again next time
        return "UNKNOWN"


def _forget(pending: Any) -> None:
    """Drop a read (or given up) result from the backend: it holds only results in flight."""
    try:
        pending.forget()
    except Exception:  # the backend is away; the result expires by itself
        pass


def _line(exc: object) -> str:
    return " ".join(str(exc).split())[:300]
