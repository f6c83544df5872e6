"""The Celery side of `executor: celery`: the app, its one task, and what a worker needs.

The app is built from the configuration's ``celery:`` settings
(:class:`daemon.config.model.CelerySettings`) by the daemon, which sends tasks, and
by `pillarwatch worker`, which runs them. The task ``pillarwatch.collect``
takes a :class:`daemon.run.executor.CollectJob` as JSON, rebuilds the source
models and calls :func:`daemon.run.executor.run_job` (the collector functions the
daemon calls with `executor: local`), and returns the
:class:`daemon.run.executor.Collected` as JSON.

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
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded
from kombu.utils.url import maybe_sanitize_url

from collectors.evidence import EvidenceError

from daemon.config.settings import CelerySettings
from daemon.run.executor import CollectJob, run_job

TASK_NAME = "pillarwatch.collect"

log = logging.getLogger("pillarwatch.worker")


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
