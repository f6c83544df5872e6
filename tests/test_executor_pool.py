"""The daemon's collection pool on Celery (issue 17, items 1 and 2), with a real Redis and real workers.

A queue no worker serves must cost the other queues, and alert delivery,
nothing: its tasks hold at most their share of the `concurrency` slots, and
the daemon stops waiting for a task nobody took after the queue's
`queue_timeout`. `concurrency` bounds the tasks in flight.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

from daemon.store import Store
from tests.support.alerts import outbox_item
from tests.support.daemon_config import write_config
from tests.support.database import query
from tests.support.git import GitRepo
from tests.support.processes import DaemonProcess, WorkerProcess, wait_for
from tests.support.webhooks import Receiver


def _two_queues(tmp_path: Path, broker: str, hook: str) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "# service\n")
    repo.commit("first")
    sources = [{"id": f"{q}{i}", "kind": "git", "path": str(repo.path), "queue": q, "timeout_seconds": 5}
               for q, n in (("qa", 4), ("qb", 2)) for i in range(n)]
    write_config(tmp_path, {
        "version": 1, "store": "pw.db", "executor": "celery", "concurrency": 2,
        "daemon": {"debounce": "0.3s", "send_interval": "0.3s", "shutdown_grace": "3s", "retry_initial": "0.2s"},
        "celery": {"broker_url": broker, "queues": ["qa", "qb"], "visibility_timeout": "5m", "max_retries": 0,
                   "queue_timeouts": {"qa": "6s"}},
        "channels": [{"kind": "webhook", "id": "hook", "url": hook, "secret_env": "PW_TEST_WEBHOOK_SECRET"}],
        "projects": [{
            "id": "svc", "schedule": {"every": "3s"}, "sources": sources,
            "pillars": [{"id": "docs", "title": "Docs", "criteria": [
                {"id": f"readme-{s['id']}", "title": f"README {s['id']}", "checks": [
                    {"source": s["id"], "signal": "file_exists", "path": "README.md"}]} for s in sources]}],
        }],
    })


def count(db: Path, sql: str, *params: object) -> int:
    rows = query(db, sql, *params)
    return int(rows[0][0]) if rows else 0


class InFlight:
    """The most runs claimed and not finished at once, looked at every 0.1 s from a thread."""

    def __init__(self, db: Path):
        self.db, self.most, self._stop = db, 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            if self.db.exists():
                try:
                    (n,), = query(self.db, "SELECT count(*) FROM source_runs WHERE outcome = 'running'")
                except Exception:
                    continue
                self.most = max(self.most, n)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.most


def test_a_queue_without_a_worker_starves_neither_another_queue_nor_delivery(tmp_path, redis, http_server):
    receiver = Receiver(http_server)
    _two_queues(tmp_path, redis.url(), f"{http_server.url}/hook")
    worker = WorkerProcess(tmp_path, "b", queues="qb")
    d = DaemonProcess(tmp_path)
    db = tmp_path / "pw.db"
    try:
        wait_for(worker.ready, timeout=60, what="worker b ready", logs=worker.logs)
        d.start()
        watch = InFlight(db)
        wait_for(lambda: count(db, "SELECT count(*) FROM source_runs WHERE source LIKE 'qa%'"),
                 timeout=20, what="a task sent to the dead queue qa", logs=d.logs)
        # An alert waiting in the outbox while qa's tasks wait for a worker that never comes.
        with Store.open(db) as store:
            store.enqueue([outbox_item("hook", "pending-1", created_at=datetime.now(timezone.utc))])
        wait_for(lambda: receiver.accepted, timeout=10, what="the pending alert delivered while qa waits", logs=d.logs)

        def ok(source: str) -> int:
            return count(db, "SELECT count(*) FROM source_runs WHERE source = ? AND outcome = 'ok'", source)

        wait_for(lambda: ok("qb0") >= 3 and ok("qb1") >= 3, timeout=30, what="qb collected on schedule", logs=d.logs)
        # qa's runs end within their queue's timeout, as errors that name the queue; nothing of qa is ok.
        wait_for(lambda: count(db, "SELECT count(*) FROM source_runs WHERE source LIKE 'qa%' AND outcome = 'error'"),
                 timeout=30, what="a qa run given up", logs=d.logs)
        errors = query(db, "SELECT DISTINCT error FROM source_runs WHERE source LIKE 'qa%' AND outcome = 'error'")
        assert errors == [("no worker took the task on queue 'qa' within 6s",)]
        assert query(db, "SELECT count(*) FROM source_runs WHERE source LIKE 'qa%' AND outcome = 'ok'") == [(0,)]
        most = watch.stop()
        assert 1 <= most <= 2  # `concurrency: 2`: never more tasks in flight
        assert d.stop() == 0
        assert "Traceback" not in d.logs()
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
        worker.stop()
