"""The daemon's collections: each due time of each source recorded once, its run on the collection pool.

The scheduler calls :meth:`Collections.fire` when a source is due; that
only notes the due time (``schedule.latest_due`` of the moment it fires)
and hands its run to the :class:`daemon.run.pool.CollectionPool`, so the
scheduler's own threads never wait for a collection. The run claims its due
time in the database, collects through the executor and records the
results, then asks for the project to be scored.

Every due time gets one row in ``source_runs``: the run's own (``ok``,
``error``), ``skipped`` when the source's previous run was still waiting or
going, ``missed`` when it was never fired (the daemon was stopped, the
scheduler was late or coalesced a backlog) or still waiting when the daemon
stopped. A run carries the due time it was fired for, however late it
starts: it never takes the next one's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from daemon.config.model import Config
from daemon.config.schedule import Schedule
from daemon.errors import PillarwatchError
from daemon.run.executor import Executor
from daemon.run.jobs import Abandoned, build_job, job_sources, requests_by_source
from daemon.run.pool import LOCAL_QUEUE, CollectionPool
from daemon.scoring.snapshot import rfc3339
from daemon.store import DatabaseError, Store

log = logging.getLogger("pillarwatch.daemon")

# At most this many due times missed in one gap get a row each (a daemon stopped for a year on a minute's
# schedule); the rest are counted in one log line.
MISSED_ROWS_LIMIT = 1000

Key = tuple[str, str]  # (project, source)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def due_times_between(schedule: Schedule, after: datetime, before: datetime, *, limit: int = MISSED_ROWS_LIMIT) -> tuple[list[datetime], int]:
    """The due times strictly between ``after`` and ``before`` (at most ``limit``, the latest), and how many in all."""
    if schedule.every is not None:
        every = schedule.every
        first = schedule.latest_due(after) + every
        count = max(0, -(-(before - first) // every)) if first < before else 0
        start = max(0, count - limit)
        return [first + i * every for i in range(start, count)], count
    found: list[datetime] = []
    count, due = 0, schedule.next_due(after)
    while due < before:
        count += 1
        found.append(due)
        if len(found) > limit:
            found.pop(0)
        due = schedule.next_due(due)
    return found, count


@dataclass
class Collections:
    """The due times and runs of the daemon's sources; ``scored(project)`` is called after each recorded run."""

    store: Store
    db: threading.RLock  # the store's one connection, one writer at a time
    config: Callable[[], Config]
    executor: Executor
    pool: CollectionPool
    scored: Callable[[str], None]
    stopping: threading.Event
    _last: dict[Key, datetime] = field(default_factory=dict)  # the latest due time handled, per source
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: dict[Key, datetime] = field(default_factory=dict)  # the due time of each source's run, waiting or going
    generation: dict[str, int] = field(default_factory=dict)  # per project: bumped, holding ``db``, at each recorded run
    closed: bool = False  # set, holding ``db``, when the store closes: a run still going then records nothing
    running: int = 0
    running_changed: threading.Condition = field(default_factory=threading.Condition)

    def start(self, now: datetime) -> None:
        """At start and after a reload: each new source's gap since its last row, and its catch-up run."""
        config = self.config()
        self.pool.set_queues(queues_of(config))
        for project in config.projects:
            for source in job_sources(project):  # a document read through git runs in its git source's job
                key = (project.id, source.id)
                if key in self._last:
                    continue
                schedule = project.schedule_of(source)
                due = schedule.latest_due(now)
                with self.db:
                    claimed = self.store.last_due(project.id, source.id)
                    recorded = self.store.last_recorded_due(project.id, source.id)
                if recorded is not None:
                    self._missed(key, schedule, recorded, due, why="the daemon was not running")
                self._last[key] = max(due, recorded or due)
                if claimed is None or claimed < due:
                    self._submit(key, due)  # catch-up: the latest due time, whatever the clock says when it runs

    def fire(self, project_id: str, source_id: str) -> None:
        """The scheduler's job for one source: note the due time now, and queue its run."""
        if self.stopping.is_set():
            return
        try:
            project = self.config().project(project_id)
            schedule = project.schedule_of(project.source(source_id))
        except (PillarwatchError, StopIteration):
            return  # removed by a reload
        key, due = (project_id, source_id), schedule.latest_due(utcnow())
        with self._lock:
            last = self._last.get(key)
            if last is not None and due <= last:
                return  # fired twice for one due time (the catch-up at start, then the trigger)
            self._last[key] = due
            going = self._pending.get(key)
        busy = going is not None
        if last is not None:
            self._missed(key, schedule, last, due, why="the scheduler did not fire it", outcome="skipped" if busy else "missed")
        if busy:
            self._record(key, due, "skipped", f"the run due {rfc3339(going)} was still waiting or going")
            return
        self._submit(key, due)

    def close(self) -> None:
        """At shutdown: the runs still waiting for a slot are recorded ``missed``."""
        for key in self.pool.close():
            with self._lock:
                due = self._pending.pop(key, None)  # type: ignore[call-overload]
            if due is not None:
                self._record(key, due, "missed", "the daemon stopped before the run started")  # type: ignore[arg-type]

    # --- one run ---------------------------------------------------------------------

    def _submit(self, key: Key, due: datetime) -> None:
        with self._lock:
            self._pending[key] = due
        if not self.pool.submit(key, queue_of(self.config(), *key), lambda: self._run(key, due)):
            with self._lock:
                self._pending.pop(key, None)

    def _run(self, key: Key, due: datetime) -> None:
        with self.running_changed:
            self.running += 1
        try:
            if not self.stopping.is_set():
                self._collect(*key, due)
        except DatabaseError as exc:  # a full disk: nothing of this run is stored, the next run tries again
            write_failed(f"{key[0]}/{key[1]}: run not recorded", exc)
        except Exception as exc:  # a bug: the run is an error, the pool keeps its thread
            log.exception("%s/%s: run due %s failed", *key, rfc3339(due))
            with self.db:
                if not self.closed:
                    self.store.record_run(*key, due, outcome="error", now=utcnow(), error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._pending.pop(key, None)
            with self.running_changed:
                self.running -= 1
                self.running_changed.notify_all()

    def _collect(self, project_id: str, source_id: str, due: datetime) -> None:
        config = self.config()
        try:
            project = config.project(project_id)
            source = project.source(source_id)
        except (PillarwatchError, StopIteration):
            return  # removed by a reload while waiting
        now = utcnow()
        with self.db:
            if self.closed:
                return
            latest = self.store.latest_results(project_id)
            if not self.store.claim_run(project_id, source_id, due, now=now):
                log.info("%s/%s: due time %s already collected", project_id, source_id, rfc3339(due))
                return
        # Documents and reports inside a git source are read at the commit just seen, in the same job.
        job = build_job(config, project, source, requests_by_source(project), due=due, now=now,
                        upstream=None, previous=latest.get(source_id))
        try:
            collected = self.executor.collect(job)
        except Abandoned:
            log.warning("%s/%s: run due %s abandoned at shutdown; collected at the next start", project_id, source_id, rfc3339(due))
            return
        result = collected.result
        self.pool.answered(queue_of(config, project_id, source_id),
                           timed_out=result.error is not None and result.error.kind == "timeout")
        with self.db:
            if self.closed:
                log.warning("%s/%s: run due %s ended after the store closed; not recorded", project_id, source_id, rfc3339(due))
                return
            # A due time is recorded once: a later result for one already recorded is dropped (a task
            # delivered twice).
            if self.store.run_outcome(project_id, source_id, due) != "running":
                log.info("%s/%s: due time %s already recorded; a later result is dropped", project_id, source_id, rfc3339(due))
                return
            for each in collected.results:
                self.store.record_run(project_id, each.source, due, outcome="ok" if each.answered else "error", now=utcnow(),
                                      result=each, error=each.error.message if each.error else None)
            self.generation[project_id] = self.generation.get(project_id, 0) + 1
        if result.error:
            log.warning("%s/%s: %s: %s", project_id, source_id, result.error.kind, result.error.message)
        self.scored(project_id)

    # --- due times that did not run --------------------------------------------------

    def _missed(self, key: Key, schedule: Schedule, after: datetime, before: datetime, *, why: str,
                outcome: str = "missed") -> None:
        dues, count = due_times_between(schedule, after, before)
        if not dues:
            return
        kept = f"; the latest {len(dues)} recorded" if count > len(dues) else ""
        log.warning("%s/%s: %d run(s) due from %s to %s %s: %s%s", *key, count, rfc3339(dues[0]), rfc3339(dues[-1]), outcome, why, kept)
        try:
            with self.db:
                if not self.closed:
                    self.store.record_not_run(*key, dues, outcome=outcome, now=utcnow(), error=why)
        except DatabaseError as exc:
            write_failed(f"{key[0]}/{key[1]}: {len(dues)} run(s) due from {rfc3339(dues[0])} not recorded", exc)

    def _record(self, key: Key, due: datetime, outcome: str, error: str) -> None:
        log.warning("%s/%s: run due %s %s: %s", *key, rfc3339(due), outcome, error)
        try:
            with self.db:
                if not self.closed:
                    self.store.record_run(*key, due, outcome=outcome, now=utcnow(), error=error)
        except DatabaseError as exc:
            write_failed(f"{key[0]}/{key[1]}: run due {rfc3339(due)} not recorded", exc)


def queue_of(config: Config, project_id: str, source_id: str) -> str:
    """The queue a source's collections share slots with: its Celery queue, or the one local queue."""
    if config.executor != "celery":
        return LOCAL_QUEUE
    try:
        source = config.project(project_id).source(source_id)
    except (PillarwatchError, StopIteration):
        return config.celery.default_queue
    return getattr(source, "queue", None) or config.celery.default_queue


def queues_of(config: Config) -> set[str]:
    """Every queue the configuration's sources use."""
    return {queue_of(config, p.id, s.id) for p in config.projects for s in job_sources(p)}


def write_failed(what: str, exc: DatabaseError) -> None:
    """One log line for a write the database refused (a full disk); the transaction was rolled back whole."""
    log.error("%s: cannot write the database: %s", what, " ".join(str(exc).split()))


__all__ = ["MISSED_ROWS_LIMIT", "Collections", "due_times_between", "queue_of", "queues_of", "write_failed"]
