"""Where a job runs: in this process, or on Celery workers (`executor: celery`).

An :class:`Executor` takes one :class:`daemon.run.jobs.CollectJob` and gives
back its :class:`daemon.run.jobs.Collected`. :class:`LocalExecutor` runs it
in the calling thread; :class:`daemon.run.tasks.CeleryExecutor` sends it to a
worker and waits. The daemon hands its executor one job per due source, from
its own collect-job threads; `collect` and `backfill` run theirs on a local
executor, `collect` through :func:`collect_all`, which bounds how many run at
once and stops waiting for one that overruns. Nothing about scoring, storage
or alerts depends on the executor.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from collectors.evidence import EvidenceError
from daemon.config.model import Config
from daemon.run.jobs import Collected, CollectJob, run_job

# Called with (what finished, how many finished, how many in all).
Progress = Callable[[str, int, int], None]

# How long past its sources' own timeouts a job is still waited for.
_GRACE_SECONDS = 5.0


class Executor(Protocol):
    def collect(self, job: CollectJob) -> Collected:
        """Run one job and return its results; source faults are data. Raises
        :class:`daemon.run.jobs.Abandoned` once closed."""
        ...

    def close(self) -> None:
        """Stop waiting: a collection still waited for raises :class:`daemon.run.jobs.Abandoned`."""
        ...


class LocalExecutor:
    """Collect in the calling thread: what the daemon always did."""

    def __init__(self, config: Config):
        self.cache_dir = config.cache_path

    def collect(self, job: CollectJob) -> Collected:
        return run_job(job, cache_dir=self.cache_dir, allow_commands=job.allow_commands)

    def close(self) -> None:
        pass


def make_executor(config: Config) -> Executor:
    """The executor `config.executor` names."""
    if config.executor == "celery":
        from daemon.run.tasks import CeleryExecutor  # Celery loads only when `executor: celery` asks for it

        return CeleryExecutor(config.celery)
    return LocalExecutor(config)


def collect_all(executor: Executor, jobs: Sequence[CollectJob], *, concurrency: int,
                progress: Progress | None = None) -> list[Collected]:
    """Run every job, at most ``concurrency`` at a time; their results in the jobs' order.

    A job that raises (a collector bug must not sink the whole run) is
    answered as ``malformed``. One still running past its sources' timeouts
    plus a grace is answered as a ``timeout`` and not waited for, so one
    hanging source cannot hold the others. ``progress`` hears of every source.
    """
    results: dict[int, Collected] = {}
    started: dict[int, float] = {}
    # Each job's limit, worked out once: it validates the job's source models, and the loop below looks at
    # every pending job each time one finishes (most of this function's CPU with 200 sources, re-computed).
    limits = [job.timeout_seconds + _GRACE_SECONDS for job in jobs]
    total, done = sum(len(job.sources) for job in jobs), 0

    def run(i: int) -> Collected:
        started[i] = time.monotonic()
        return executor.collect(jobs[i])

    def finished(i: int, collected: Collected) -> None:
        nonlocal done
        results[i] = collected
        for source_id in jobs[i].sources:
            done += 1
            if progress:
                progress(f"{jobs[i].project}/{source_id}", done, total)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="collect")
    try:
        # Finished futures arrive on a queue: `wait(pending, FIRST_COMPLETED)` hooked a waiter onto every pending
        # future at every look, which with hundreds of sources cost more than the collections' own Python.
        arrived: queue.SimpleQueue[Future[Collected]] = queue.SimpleQueue()
        pending: dict[Future[Collected], int] = {}
        for i in range(len(jobs)):
            future = pool.submit(run, i)
            pending[future] = i
            future.add_done_callback(arrived.put)
        looked = time.monotonic()
        while pending:
            try:
                complete = [arrived.get(timeout=0.1)]
            except queue.Empty:
                complete = []
            while not arrived.empty():
                complete.append(arrived.get())
            for future in complete:
                if future not in pending:  # abandoned below as overrunning, then finished
                    continue
                i = pending.pop(future)
                try:
                    collected = future.result()
                except Exception as exc:
                    error = EvidenceError(kind="malformed", message=f"collector crashed: {type(exc).__name__}: {exc}")
                    collected = jobs[i].failed(error)
                finished(i, collected)
            if complete and time.monotonic() - looked < 0.1:
                continue  # overruns are looked for ten times a second, not at every finished job
            looked = time.monotonic()
            for future, i in list(pending.items()):
                limit = limits[i]
                if i in started and time.monotonic() - started[i] > limit:
                    del pending[future]
                    message = f"source {jobs[i].target.id!r} did not answer within {limit:g}s"
                    finished(i, jobs[i].failed(EvidenceError(kind="timeout", message=message, retryable=True)))
    finally:
        # Abandoned (overrunning) collections are not waited for.
        pool.shutdown(wait=False, cancel_futures=True)
    return [results[i] for i in range(len(jobs))]


__all__ = ["Executor", "LocalExecutor", "Progress", "collect_all", "make_executor"]
