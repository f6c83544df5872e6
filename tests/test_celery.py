"""`executor: celery`: a real broker, real `pillarwatch worker` processes, the real daemon.

Each test runs twice: on Debian's `redis-server` (results in Redis too) and
on Debian's `rabbitmq-server` (results as broker messages, `rpc://`), each
started here on free ports of 127.0.0.1 with a password (a test skips only
when its broker is not installed; .ci/run installs both).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.brokers import BROKERS, PASSWORD
from tests.support.database import query
from tests.support.git import GitRepo
from tests.support.processes import DaemonProcess, wait_for


@pytest.fixture(scope="module", params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    binary, server_class = BROKERS[request.param]
    if shutil.which(binary) is None:
        pytest.skip(f"{request.param} is not installed (apt-get install {Path(binary).name})")
    server = server_class(tmp_path_factory.mktemp(request.param))
    yield server
    server.stop()


def _write(folder: Path, body: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pw.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return folder


def _repos(tmp_path: Path) -> list[GitRepo]:
    repos = []
    for i in range(3):
        repo = GitRepo(tmp_path / "repos" / f"r{i}")
        repo.write("README.md", f"# service {i}\n")
        for t in range(i + 1):
            repo.write(f"tests/test_{t}.py", "def test_restart():\n    pass\n" if t % 2 == 0 else "def test_other():\n    pass\n")
        repo.commit("first")
        if i == 0:
            repo.write("docs/STATUS.md", "# Status\n\nSurvive restart: 0.70\n\n- [x] one\n- [ ] two\n")
        repo.commit("second")
        repos.append(repo)
    return repos


def _project(repos: list[GitRepo], *, heavy_queue: str | None = None) -> dict[str, Any]:
    sources: list[dict[str, Any]] = [{"id": f"r{i}", "kind": "git", "path": str(r.path), "timeout_seconds": 10} for i, r in enumerate(repos)]
    if heavy_queue:
        sources[2]["queue"] = heavy_queue
    sources.append({"id": "status", "kind": "doc", "git": "r0", "path": "docs/STATUS.md"})
    criteria = []
    for i in range(len(repos)):
        criteria += [
            {"id": f"readme{i}", "title": f"README {i}", "checks": [{"source": f"r{i}", "signal": "file_exists", "path": "README.md"}]},
            {"id": f"tests{i}", "title": f"Tests {i}", "checks": [
                {"source": f"r{i}", "signal": "file_count", "glob": "tests/*.py", "transform": {"scale": [0, 4]}},
                {"source": f"r{i}", "signal": "content_match", "glob": "tests/**/*.py", "regex": "restart", "field": "files",
                 "transform": {"scale": [0, 3]}}]},
            {"id": f"active{i}", "title": f"Active {i}", "checks": [
                {"source": f"r{i}", "signal": "commits_since", "days": 3650, "transform": {"scale": [0, 4]}}]},
        ]
    return {
        "id": "svc", "schedule": {"every": "1h"},
        "sources": sources,
        "pillars": [
            {"id": "code", "title": "Code", "criteria": criteria},
            {"id": "docs", "title": "Docs", "criteria": [
                {"id": "restart", "title": "Survive restart", "checks": [{"source": "status", "signal": "declared_score"}]},
                {"id": "todo", "title": "Checklist", "checks": [{"source": "status", "signal": "checklist", "heading": "Status"}]},
            ]},
        ],
    }


_DAEMON = {"debounce": "0.5s", "send_interval": "1s", "shutdown_grace": "10s"}
_VOLATILE = {"id", "taken_at", "last_seen_at", "observed_at", "scored_at", "seen_at", "collected_at"}


def _stable(value: Any) -> Any:
    """A snapshot without what differs between two runs on the same data: ids and times."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _status(folder: Path) -> dict[str, Any]:
    import json

    out = subprocess.run([sys.executable, "-m", "daemon.cli", "status", "--config", "pw.yaml", "--json"], cwd=folder,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _all_collected(folder: Path, sources: int) -> bool:
    done = query(folder / "pw.db", "SELECT count(DISTINCT source) FROM source_runs WHERE outcome = 'ok'")
    return bool(done) and done[0][0] == sources


def test_celery_workers_give_the_same_snapshot_as_local(tmp_path, broker, workers, monkeypatch):
    monkeypatch.setenv("PW_TEST_BROKER", broker.url())  # the daemon's and the workers' environment
    repos = _repos(tmp_path)
    local = _write(tmp_path / "local", {"version": 1, "store": "pw.db", "daemon": _DAEMON, "projects": [_project(repos)]})
    remote = _write(tmp_path / "celery", {
        "version": 1, "store": "pw.db", "daemon": _DAEMON, "executor": "celery",
        "celery": {"broker_url_env": "PW_TEST_BROKER", "queues": ["heavy"], "visibility_timeout": "5m"},
        "projects": [_project(repos, heavy_queue="heavy")],
    })
    a, b = workers(remote, "a", "b", queues={"b": "pillarwatch,heavy"})
    daemons = [DaemonProcess(folder).start() for folder in (local, remote)]
    try:
        for folder, d in zip((local, remote), daemons):
            wait_for(lambda folder=folder: _all_collected(folder, 4), timeout=60, what=f"{folder.name}: every source collected", logs=d.logs)
        time.sleep(1.5)  # past the debounce: the last result is scored
        assert [d.stop() for d in daemons] == [0, 0]
    finally:
        for d in daemons:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
    expected, got = _status(local), _status(remote)
    assert got["complete"] and got["overall"] is not None
    assert _stable(got) == _stable(expected)
    # Collected by the workers, not in the daemon: the heavy source only by the worker on its queue.
    assert "collecting on Celery workers" in daemons[1].logs()
    collected = a.logs() + b.logs()
    for source in ("r0", "r1"):
        assert f"svc/{source}: collected in" in collected
    assert "svc/r2: collected in" in b.logs() and "svc/r2: collected in" not in a.logs()
    assert broker.masked() in daemons[1].logs()
    for log in (daemons[1].logs(), a.logs(), b.logs()):
        assert PASSWORD not in log


def test_a_worker_killed_mid_task_loses_nothing_and_nothing_is_stored_twice(tmp_path, broker, workers):
    marks = tmp_path / "runs.txt"
    # The command says which worker runs it, then takes 5 s: long enough to kill that worker mid-task.
    command = {"id": "slow", "kind": "command", "timeout_seconds": 6,
               "argv": ["sh", "-c", f'echo "$PW_WORKER" >> {marks}; sleep 5; echo 42']}
    folder = _write(tmp_path / "w", {
        "version": 1, "store": "pw.db", "daemon": _DAEMON, "allow_commands": True, "executor": "celery",
        # A task's hard limit is 16 s (6 s + 2 x 5 s): Redis hands a dead worker's task to another after 18 s,
        # RabbitMQ as soon as the dead worker's connection drops.
        "celery": {"broker_url": broker.url(), "visibility_timeout": "18s", "max_retries": 0},
        "projects": [{"id": "svc", "schedule": {"every": "1h"}, "sources": [command], "pillars": [
            {"id": "p", "title": "P", "criteria": [
                {"id": "answer", "title": "Answer", "checks": [
                    {"source": "slow", "signal": "stdout_number", "regex": "([0-9]+)", "transform": {"scale": [0, 42]}}]}]}]}],
    })
    crew = {w.name: w for w in workers(folder, "a", "b")}
    d = DaemonProcess(folder).start()
    try:
        holder = wait_for(lambda: marks.exists() and marks.read_text().split(), timeout=30, what="a worker takes the task", logs=d.logs)[0]
        crew[holder].proc.send_signal(signal.SIGKILL)
        crew[holder].proc.wait(timeout=10)
        other = "b" if holder == "a" else "a"
        runs = wait_for(lambda: len(marks.read_text().split()) >= 2 and marks.read_text().split(), timeout=60,
                        what="the task delivered again", logs=d.logs)
        assert runs == [holder, other]
        db = folder / "pw.db"
        wait_for(lambda: query(db, "SELECT count(*) FROM snapshots")[0][0] >= 1, timeout=30, what="a snapshot", logs=d.logs)
        time.sleep(2)  # room for a second, wrong, snapshot
        assert query(db, "SELECT source, outcome FROM source_runs") == [("slow", "ok")]
        assert query(db, "SELECT count(*) FROM snapshots") == [(1,)]
        assert query(db, "SELECT count(*) FROM snapshot_repeats") == [(0,)]
        assert query(db, "SELECT overall, complete FROM snapshots") == [(100.0, 1)]
        assert "svc/slow: collected in" in crew[other].logs()
        assert len(marks.read_text().split()) == 2  # the killed worker's process did not finish it too
        assert d.stop() == 0
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
