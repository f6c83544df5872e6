"""`executor: celery` when things go wrong (issue 17): lost tasks, a result backend away, wasted tasks.

A real Debian `redis-server` (broker and result backend, restarted here as a
Redis without persistence restarts: empty), real `pillarwatch worker`
processes and the real daemon. Redis only: finding a lost task reads the
broker's queue and its unacknowledged tasks, which only Redis shows
(RabbitMQ keeps tasks in durable queues through a restart; docs/SCALING.md).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from redis.exceptions import ConnectionError as RedisConnectionError

from daemon.config.settings import CelerySettings
from daemon.run.jobs import CollectJob, SourceJob
from daemon.run.tasks import CeleryExecutor
from tests.support.brokers import PASSWORD, RedisServer
from tests.support.database import query
from tests.support.git import GitRepo
from tests.support.processes import DaemonProcess, wait_for

_DAEMON = {"debounce": "0.5s", "send_interval": "1s", "shutdown_grace": "5s"}


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
    # The cycles whose result came back; on a loaded machine a due time may also be skipped (its run still
    # going) or missed, and the run going at the stop is left to the next start (its task may still have run).
    cycles = query(db, "SELECT due_at FROM source_runs WHERE source = 'repo' AND outcome IN ('ok', 'error') ORDER BY due_at")
    sent = query(db, "SELECT due_at FROM source_runs WHERE source = 'repo' AND outcome NOT IN ('skipped', 'missed')")
    tasks = worker.logs()
    # One task a cycle: the git source's, which reads both documents at the commit it saw.
    assert len(cycles) <= tasks.count("svc/repo: collected in") <= len(sent) and len(cycles) >= 3
    assert "svc/status: collected in" not in tasks and "svc/plan: collected in" not in tasks
    for doc in ("status", "plan"):
        assert query(db, "SELECT due_at FROM source_runs WHERE source = ? ORDER BY due_at", doc) == cycles
    assert {o for o, in query(db, "SELECT DISTINCT outcome FROM source_runs")} <= {"ok", "skipped", "missed", "running"}
    assert query(db, "SELECT DISTINCT outcome FROM source_runs WHERE source != 'repo'") == [("ok",)]
    assert query(db, "SELECT complete FROM snapshots ORDER BY id DESC LIMIT 1") == [(1,)]
    assert PASSWORD not in d.logs()


def test_a_task_lost_in_a_broker_restart_is_an_unreachable_error_and_a_running_one_is_not_lost(tmp_path, redis, workers):
    marks = tmp_path / "runs.txt"
    folder = _write(tmp_path / "w", {
        "allow_commands": True, "executor": "celery",
        "celery": {"broker_url": redis.url(), "queues": ["qa"], "visibility_timeout": "1m", "max_retries": 0},
        "projects": [{"id": "svc", "schedule": {"every": "1h"}, "sources": [
            # Queue `qa` has no worker: its task waits in the broker, which loses it in the restart.
            {"id": "stuck", "kind": "command", "queue": "qa", "timeout_seconds": 5, "argv": ["echo", "42"]},
            # A worker runs this one through the restart: it still has it, and its result comes.
            {"id": "slow", "kind": "command", "timeout_seconds": 15, "argv": ["sh", "-c", f"echo go >> {marks}; sleep 8; echo 42"]},
        ], "pillars": [{"id": "p", "title": "P", "criteria": [
            {"id": s, "title": s, "checks": [
                {"source": s, "signal": "stdout_number", "regex": "([0-9]+)", "transform": {"scale": [0, 42]}}]}
            for s in ("stuck", "slow")]}]}],
    })
    workers(folder, "a")
    db = folder / "pw.db"
    d = DaemonProcess(folder).start()
    try:
        wait_for(marks.exists, timeout=30, what="the slow task started", logs=d.logs)
        wait_for(lambda: query(db, "SELECT outcome FROM source_runs WHERE source = 'stuck'") == [("running",)],
                 timeout=10, what="the stuck task sent", logs=d.logs)
        redis.restart()
        outcome = "SELECT outcome, error FROM source_runs WHERE source = ?"
        (stuck,) = wait_for(lambda: [r for r in query(db, outcome, "stuck") if r[0] != "running"], timeout=30,
                            what="the lost task found", logs=d.logs)
        assert stuck[0] == "error" and "was lost" in stuck[1] and "queue 'qa'" in stuck[1], stuck
        assert _result_error(db, "stuck")["kind"] == "unreachable"
        (slow,) = wait_for(lambda: [r for r in query(db, outcome, "slow") if r[0] != "running"], timeout=30,
                           what="the slow task answered", logs=d.logs)
        assert slow == ("ok", None)
        assert "svc/slow: task" not in d.logs()  # never taken for lost
        assert d.stop() == 0
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
    assert PASSWORD not in d.logs()


@pytest.mark.parametrize("retries", [0, 1])
def test_a_result_backend_away_while_the_worker_runs_is_unreachable_and_sent_again(tmp_path, redis, workers, retries):
    """The worker cannot store its result: not a collector crash (`malformed`) but `unreachable`, retried."""
    (tmp_path / "backend").mkdir()
    backend = RedisServer(tmp_path / "backend")
    marks, go = tmp_path / "runs.txt", tmp_path / "go"
    try:
        folder = _write(tmp_path / "w", {
            "allow_commands": True, "executor": "celery",
            "celery": {"broker_url": redis.url(), "result_backend": backend.url(), "visibility_timeout": "2m",
                       "max_retries": retries, "retry_delay": "1s"},
            "projects": [_command_project({"id": "slow", "kind": "command", "timeout_seconds": 20, "argv": [
                "sh", "-c", f"echo run >> {marks}; while [ ! -f {go} ]; do sleep 0.1; done; echo 42"]})],
        })
        (worker,) = workers(folder, "a")
        db = folder / "pw.db"
        d = DaemonProcess(folder).start()
        try:
            wait_for(marks.exists, timeout=30, what="the task started", logs=d.logs)
            backend.stop()
            go.touch()  # the collection ends while the result backend is away
            wait_for(lambda: "Pool callback raised exception" in worker.logs(), timeout=30, what="the result not stored",
                     logs=worker.logs)
            backend.start()
            (run,) = wait_for(lambda: [r for r in _run_errors(db)], timeout=60, what="the run recorded", logs=d.logs)
            if retries:
                assert run == ("ok", None)
                assert "sending the task again" in d.logs() and marks.read_text().split() == ["run", "run"]
            else:
                assert run[0] == "error" and "no result came" in run[1], run
                assert _result_error(db, "slow")["kind"] == "unreachable"
            assert "crashed" not in d.logs() and "malformed" not in d.logs()
            assert d.stop() == 0
        finally:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
    finally:
        backend.stop()


def test_a_connection_fault_stored_as_the_tasks_failure_is_unreachable_and_sent_again():
    """When the backend is back by the time the worker stores the failure of storing its result, that failure
    (a redis ConnectionError) is what the daemon reads: unreachable, sent again; a collector's bug stays malformed."""
    now = datetime(2026, 12, 3, 8, 42, tzinfo=timezone.utc)
    job = CollectJob(project="svc", due=now, now=now, target=SourceJob(source={"id": "slow", "kind": "command", "argv": ["true"]}))
    executor = CeleryExecutor(CelerySettings(broker_url="redis://127.0.0.1:9/0"))
    collected, again = executor._answer(job, "FAILURE", RedisConnectionError("Error 111 connecting to 127.0.0.1:6379."))
    assert again and collected.result.error is not None
    assert (collected.result.error.kind, collected.result.error.retryable) == ("unreachable", True)
    assert "could not store its result" in collected.result.error.message
    collected, again = executor._answer(job, "FAILURE", KeyError("oops"))
    assert not again and collected.result.error is not None and collected.result.error.kind == "malformed"
