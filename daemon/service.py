"""The daemon: collects every source on its schedule, scores, records, delivers alerts.

APScheduler (3.x) fires one job per source, which only notes the due time
and hands the run to the collection pool (:mod:`daemon.run.dispatch`,
:mod:`daemon.run.pool`): exactly ``concurrency`` threads of its own, shared
fairly between Celery queues. Each run claims its due time in the database
first, so a due time is never collected twice, even across a crash and
restart, and every due time gets one row, run or not; on start, a source
whose latest due time was not claimed is collected at once (catch-up).
After a source's run its project is re-scored, debounced, so that sources
finishing together make one snapshot, and never twice for the same results.
Scoring, the outbox sender and retention run on the scheduler's threads,
which no collection holds. The read-only HTTP API
(:mod:`daemon.web.api`) is served from a thread, reading the current
configuration, so a reload reaches it too. The health file
(:mod:`daemon.run.health`) is rewritten after every snapshot.

Signal handling lives in the command's entry point: it calls :meth:`stop`
and :meth:`request_reload`. This class installs no handlers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from daemon.alerting.notify import SendControl
from daemon.config.loading import load_config
from daemon.config.model import Config
from daemon.errors import PillarwatchError
from daemon.run.dispatch import Collections, queues_of, write_failed
from daemon.run.executor import Executor, make_executor
from daemon.run.health import health, write_health
from daemon.run.jobs import job_sources
from daemon.run.lock import DaemonLock
from daemon.run.pool import CollectionPool
from daemon.run.record import deliver_pending, record
from daemon.scoring.snapshot import rfc3339
from daemon.store import DatabaseError, Store

if TYPE_CHECKING:
    from daemon.web.server import ApiServer

log = logging.getLogger("pillarwatch.daemon")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Daemon:
    """``Daemon(path).run_until_stopped()`` until :meth:`stop` is called."""

    def __init__(self, config_path: Path, *, api: bool = True, host: str | None = None, port: int | None = None,
                 access_log: bool = False):
        self.config_path = config_path
        self.config: Config = load_config(config_path)
        self._api_address = (host, port) if api else None  # None: no API; host/port None: from the config
        self._access_log = access_log
        self.api: ApiServer | None = None
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._db = threading.RLock()  # one connection, one writer at a time
        self._sending = threading.Lock()
        self._sends = SendControl()  # shared by the send rounds: bounded at shutdown, items in flight
        self._health = threading.Lock()  # one writer of the health file's .tmp at a time
        self._closed = False  # set, holding the locks, when the stores close: a late job writes nothing
        self._dirty: set[str] = set()
        self._scored: dict[str, tuple[int, Config]] = {}  # per project: the results' generation and rules last scored
        self.started_at = utcnow()
        self.store: Store | None = None
        self.sender_store: Store | None = None  # its own connection: sending must not hold up scoring
        self.scheduler: BackgroundScheduler | None = None
        self.executor: Executor | None = None  # where collections run (daemon.run.executor), fixed at start
        self.collections: Collections | None = None  # the due times and runs of the sources (daemon.run.dispatch)

    # --- life cycle -------------------------------------------------------------------

    def run_until_stopped(self) -> int:
        with DaemonLock(self.config.store_path):
            self.store = Store.open(self.config.store_path)
            self.sender_store = Store.open(self.config.store_path)
            try:
                self._interrupted()
                self.executor = make_executor(self.config)
                if self.config.executor == "celery":
                    from daemon.run.tasks import describe  # Celery loads only when `executor: celery` asks for it

                    log.info("collecting on Celery workers: %s", describe(self.config.celery))
                self._start_api()
                self._start_scheduler()
                log.info("started (pid %d): %s", os.getpid(), self._describe())
                self._write_health()
                while not self._stop.is_set():
                    if self._reload.wait(timeout=0.5):
                        self._reload.clear()  # several SIGHUPs in a row make one reload
                        self._do_reload()
                self._shutdown()
            finally:
                if self.api is not None:
                    self.api.stop()
                self._close_stores()
        log.info("stopped")
        return 0

    def stop(self) -> None:
        self._stop.set()

    def _interrupted(self) -> None:
        """Runs a previous daemon left ``running`` (killed, or stopped without them) become ``interrupted``;
        their due times are no longer claimed, so the jobs added next collect them at once."""
        assert self.store is not None
        for project_id, source_id, due in self.store.interrupt_runs(now=utcnow()):
            log.warning("%s/%s: run due %s was interrupted (the daemon stopped during it); collecting it now",
                        project_id, source_id, rfc3339(due))

    def request_reload(self) -> None:
        self._reload.set()

    def _start_api(self) -> None:
        if self._api_address is None:
            return
        from daemon.web.server import ApiServer  # FastAPI and uvicorn load only when the API is served

        host, port = self._api_address
        self.api = ApiServer(lambda: self.config, host=host or self.config.api.host, port=port or self.config.api.port,
                             access_log=self._access_log)
        self.api.start()
        log.info("API on %s", self.api.url)

    def _start_scheduler(self) -> None:
        assert self.store is not None and self.executor is not None
        self.scheduler = BackgroundScheduler(
            # The scheduler's threads never collect: "fire" notes due times, "default" scores, sends and prunes.
            executors={"default": ThreadPoolExecutor(max_workers=3), "fire": ThreadPoolExecutor(max_workers=2)},
            # coalesce: a backlog of fires is one (Collections records the due times in between); no misfire
            # limit: a late fire still runs.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=timezone.utc,
        )
        pool = CollectionPool(self.config.concurrency, queues_of(self.config))
        self.collections = Collections(store=self.store, db=self._db, config=lambda: self.config, executor=self.executor,
                                       pool=pool, scored=self._request_score, stopping=self._stop)
        self._add_jobs()
        self.scheduler.add_job(self._send_job, "interval", seconds=self.config.daemon.send_interval.total_seconds(),
                               id="send", next_run_time=utcnow())
        # Retention once a day, first a few minutes after start (after the catch-up collections).
        self.scheduler.add_job(self._prune_job, "interval", hours=24, id="prune", next_run_time=utcnow() + timedelta(minutes=5))
        self.scheduler.start()

    def _add_jobs(self) -> None:
        assert self.scheduler is not None and self.collections is not None
        self.collections.start(utcnow())  # what was missed while away, and the catch-up runs
        for project in self.config.projects:
            for source in job_sources(project):  # a document read through git is collected in its git source's job
                self.scheduler.add_job(
                    self.collections.fire, project.schedule_of(source).trigger(), args=[project.id, source.id],
                    id=_job_id(project.id, source.id), replace_existing=True, executor="fire",
                )

    def _do_reload(self) -> None:
        try:
            new = load_config(self.config_path)
            if self.api is not None:
                from daemon.web.api import api_token  # FastAPI loads only when the API is served

                api_token(new)  # a token that cannot be read would lock every reader out
        except PillarwatchError as exc:
            log.error("reload failed, keeping the running configuration: %s", str(exc).replace("\n", "; "))
            return
        if new.store_path != self.config.store_path:
            log.warning("reload: the store path changed; it takes effect at the next start")
            new.store = str(self.config.store_path)
        if (new.api.host, new.api.port) != (self.config.api.host, self.config.api.port) and self.api is not None:
            log.warning("reload: the API address changed; it takes effect at the next start")
        if (new.executor, new.celery) != (self.config.executor, self.config.celery):
            log.warning("reload: the executor or its celery settings changed; they take effect at the next start")
        if new.concurrency != self.config.concurrency:
            log.warning("reload: concurrency changed; it takes effect at the next start")
        self.config = new
        assert self.scheduler is not None
        for job in self.scheduler.get_jobs():
            if job.id.startswith("collect:"):
                job.remove()
        self._add_jobs()
        log.info("reloaded: %s", self._describe())

    def _shutdown(self) -> None:
        """Everything within ``shutdown_grace``: running collections, the snapshot flush, the send flush."""
        assert self.scheduler is not None and self.collections is not None
        self.scheduler.pause()  # no new runs
        grace = self.config.daemon.shutdown_grace.total_seconds()
        deadline = time.monotonic() + grace
        self._sends.deadline = deadline  # a send round in flight returns by then, leaving unanswered items pending
        collections = self.collections
        collections.close()  # runs still waiting for a slot are recorded missed
        with collections.running_changed:
            while collections.running and time.monotonic() < deadline:
                collections.running_changed.wait(timeout=0.2)
        if collections.running:
            log.warning("%d collection(s) still running after %gs; stopping without them", collections.running, grace)
        if self.executor is not None:
            self.executor.close()  # threads still waiting for a worker's result give up
        for project_id in sorted(self._dirty):  # flush: score what was collected
            self._score_job(project_id)
        self._send_job(wait=max(0.0, deadline - time.monotonic()))
        # The scheduler's own jobs (a send round cut at the deadline, a score) finish before the stores close.
        self.scheduler.shutdown(wait=True)
        self._write_health()

    def _close_stores(self) -> None:
        """Close both connections; a collection still running past the grace finds them closed and writes nothing."""
        assert self.store is not None and self.sender_store is not None
        with self._db, self._sending:
            self._closed = True
            if self.collections is not None:
                self.collections.closed = True
            self.store.close()
            self.sender_store.close()

    # --- jobs ----------------------------------------------------------------------

    def _request_score(self, project_id: str) -> None:
        """Score soon: another source finishing within the debounce joins the same snapshot."""
        self._dirty.add(project_id)
        assert self.scheduler is not None
        run_at = utcnow() + self.config.daemon.debounce
        self.scheduler.add_job(self._score_job, "date", run_date=run_at, args=[project_id],
                               id=f"score:{project_id}", replace_existing=True)

    def _score_job(self, project_id: str) -> None:
        assert self.store is not None and self.collections is not None
        self._dirty.discard(project_id)
        config = self.config
        try:
            project = config.project(project_id)
        except PillarwatchError:
            return  # removed by a reload
        try:
            with self._db:
                # Scored once per set of results (and rules): a run recorded just before a score already
                # in progress took it in, so the score that run asked for would only repeat it.
                generation = self.collections.generation.get(project_id, 0)
                last = self._scored.get(project_id)
                if self._closed or (last is not None and last[0] == generation and last[1] is config):
                    return
                now = utcnow()
                results = self.store.latest_results(project_id)
                ordered = [results[s.id] for s in project.sources if s.id in results]
                recorded = record(self.store, config, project, ordered, now=now)
                self._scored[project_id] = (generation, config)
        except DatabaseError as exc:  # rolled back whole; scored again after the next run (or at shutdown)
            self._dirty.add(project_id)
            write_failed(f"{project_id}: snapshot not stored", exc)
            return
        s = recorded.snapshot
        log.info("%s: snapshot #%s overall %s (%s)%s", project_id, s.id, _figure(s.overall),
                 "complete" if s.complete else "partial", f", {recorded.queued} alert message(s) queued" if recorded.queued else "")
        for message in recorded.messages:
            log.warning("%s alert: %s", message.event, message.title)
        self._write_health()
        if recorded.queued and self.scheduler is not None:
            self.scheduler.modify_job("send", next_run_time=utcnow())

    def _send_job(self, wait: float = -1) -> None:
        """One send round; ``wait``: how long to wait for a round in flight (the shutdown flush), -1 for ever."""
        assert self.sender_store is not None
        # The interval job and the shutdown flush never overlap; the flush skips what a cut round left in flight.
        if not self._sending.acquire(timeout=wait):
            log.warning("delivery: a send round is still running at the shutdown deadline; what it holds stays pending")
            return
        try:
            if self._closed:
                return
            report = deliver_pending(self.sender_store, self.config, now=utcnow(), control=self._sends)
        except DatabaseError as exc:  # the outbox keeps what is due: the next round sends it
            write_failed("delivery", exc)
            return
        finally:
            self._sending.release()
        if report.total:
            log.info("delivery: %s", report)

    def _prune_job(self) -> None:
        """Thin old snapshots by the `retention:` tiers (see daemon.config.retention); one log line."""
        assert self.store is not None
        policy = self.config.retention
        if not policy.enabled:
            return
        started, evidence = time.monotonic(), 0
        removed: dict[str, int] = {}
        for project in self.config.projects:
            if self._stop.is_set():
                log.info("retention: stopped for shutdown; the rest is thinned at the next round")
                return
            try:
                with self._db:  # one project at a time: scoring may run in between
                    pruned = self.store.prune(project.id, policy, now=utcnow())
            except PillarwatchError as exc:
                log.error("retention: %s", exc)
                continue
            except DatabaseError as exc:
                write_failed(f"retention of {project.id}", exc)
                continue
            removed[project.id] = len(pruned.plan.remove)
            evidence += pruned.deleted.evidence if pruned.deleted else 0
        detail = ", ".join(f"{pid} {n}" for pid, n in removed.items())
        log.info("retention: removed %d snapshot(s) (%s) and %d evidence row(s) in %.1fs",
                 sum(removed.values()), detail, evidence, time.monotonic() - started)

    # --- health -----------------------------------------------------------------------

    def _describe(self) -> str:
        return ", ".join(f"{p.id} ({len(p.sources)} sources, rules {p.rules_hash()})" for p in self.config.projects)

    def _write_health(self) -> None:
        """A file a supervisor can read: when the last successful collection was."""
        assert self.store is not None
        with self._db:
            body = health(self.store, self.config.projects, started_at=self.started_at, now=utcnow())
        with self._health:  # the score jobs of two projects may finish together
            write_health(self.config.health_path, body)


def _job_id(project_id: str, source_id: str) -> str:
    return f"collect:{project_id}:{source_id}"


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}%"


