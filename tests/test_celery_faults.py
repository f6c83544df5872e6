"""`executor: celery` when things go wrong (issue 17): lost tasks, a result backend away, wasted tasks.

A real Debian `redis-server` (broker and result backend, restarted here as a
Redis without persistence restarts: empty), real `pillarwatch worker`
processes and the real daemon. Redis only: finding a lost task reads the
broker's queue and its unacknowledged tasks, which only Redis shows
(RabbitMQ keeps tasks in durable queues through a restart; docs/SCALING.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.brokers import PASSWORD, RedisServer
from tests.support.database import query
from tests.support.git import GitRepo
from tests.support.processes import DaemonProcess, WorkerProcess, wait_for

_DAEMON = {"debounce": "0.5s", "send_interval": "1s", "shutdown_grace": "5s"}


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def workers():
    started: list[WorkerProcess] = []

    def start(workdir: Path, *names: str, queues: str | None = None) -> list[WorkerProcess]:
        new = [WorkerProcess(workdir, name, queues=queues) for name in names]
        started.extend(new)
        for w in new:
            wait_for(w.ready, timeout=60, what=f"worker {w.name} ready", logs=w.logs)
        return new

    yield start
    for w in started:
        w.stop()


def _write(folder: Path, body: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pw.yaml").write_text(yaml.safe_dump({"version": 1, "store": "pw.db", "daemon": _DAEMON, **body}, sort_keys=False))
    return folder


def _command_project(source: dict[str, Any]) -> dict[str, Any]:
    return {"id": "svc", "schedule": {"every": "1h"}, "sources": [source], "pillars": [
        {"id": "p", "title": "P", "criteria": [{"id": "answer", "title": "Answer", "checks": [
            {"source": source["id"], "signal": "stdout_number", "regex": "([0-9]+)", "transform": {"scale": [0, 42]}}]}]}]}


def _run_errors(db: Path) -> list[tuple[str, str]]:
    return query(db, "SELECT outcome, error FROM source_runs WHERE outcome != 'running'")


def _result_error(db: Path, source: str) -> dict[str, Any] | None:
    rows = query(db, "SELECT result FROM source_results WHERE source = ?", source)
    return json.loads(rows[0][0])["error"] if rows else None


def test_one_task_per_git_source_and_the_documents_read_through_it(tmp_path, redis, workers):
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "# svc\n")
    repo.write("docs/STATUS.md", "# Status\n\nSurvive restart: 0.70\n")
    repo.write("docs/PLAN.md", "# Plan\n\n- [x] one\n- [ ] two\n")
    repo.commit("first")
    folder = _write(tmp_path / "w", {
        "executor": "celery", "celery": {"broker_url": redis.url(), "visibility_timeout": "10m"},
        "projects": [{"id": "svc", "schedule": {"every": "3s"}, "sources": [
            {"id": "repo", "kind": "git", "path": str(repo.path), "timeout_seconds": 10},
            {"id": "status", "kind": "doc", "git": "repo", "path": "docs/STATUS.md"},
            {"id": "plan", "kind": "doc", "git": "repo", "path": "docs/PLAN.md"},
        ], "pillars": [{"id": "p", "title": "P", "criteria": [
            {"id": "readme", "title": "README", "checks": [{"source": "repo", "signal": "file_exists", "path": "README.md"}]},
            {"id": "restart", "title": "Restart", "checks": [{"source": "status", "signal": "declared_score"}]},
            {"id": "todo", "title": "Todo", "checks": [{"source": "plan", "signal": "checklist", "heading": "Plan"}]},
        ]}]}],
    })
    (worker,) = workers(folder, "a")
    db = folder / "pw.db"
    d = DaemonProcess(folder).start()
    try:
        wait_for(lambda: len(query(db, "SELECT due_at FROM source_runs WHERE source = 'repo' AND outcome = 'ok'")) >= 3,
                 timeout=60, what="three cycles", logs=d.logs)
        assert d.stop() == 0
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
    cycles = query(db, "SELECT due_at FROM source_runs WHERE source = 'repo' ORDER BY due_at")
    tasks = worker.logs()
    # One task a cycle: the git source's, which reads both documents at the commit it saw.
    assert tasks.count("svc/repo: collected in") == len(cycles) >= 3
    assert "svc/status: collected in" not in tasks and "svc/plan: collected in" not in tasks
    for doc in ("status", "plan"):
        assert query(db, "SELECT due_at FROM source_runs WHERE source = ? ORDER BY due_at", doc) == cycles
    assert query(db, "SELECT DISTINCT outcome FROM source_runs") == [("ok",)]
    assert query(db, "SELECT complete FROM snapshots ORDER BY id DESC LIMIT 1") == [(1,)]
    assert PASSWORD not in d.logs()
