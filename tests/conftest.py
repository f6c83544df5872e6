"""Fixtures shared by the suite: real git repositories, a real HTTP server, a real store, the daemon as a subprocess.

Fixtures only: the harnesses behind them live in ``tests/support/``, where tests import them from.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.store import Store
from tests.support.brokers import RedisServer
from tests.support.git import GitRepo
from tests.support.http_server import HttpServer
from tests.support.processes import DaemonProcess, WorkerProcess, wait_for


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = HttpServer()
    yield server
    server.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty store in tmp_path/pw.db, open for the test."""
    with Store.open(tmp_path / "pw.db") as opened:
        yield opened


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[[], DaemonProcess]]:
    """Start `pillarwatch daemon --no-api` in tmp_path (its pw.yaml); every one still running is killed at the end."""
    started: list[DaemonProcess] = []

    def start() -> DaemonProcess:
        d = DaemonProcess(tmp_path).start()
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Debian's redis-server on a free port of 127.0.0.1, one per test module."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def workers() -> Iterator[Callable[..., list[WorkerProcess]]]:
    """Start Celery workers in a folder (its pw.yaml), ready when returned; ``queues``: one list for all, or by name."""
    started: list[WorkerProcess] = []

    def start(workdir: Path, *names: str, queues: str | dict[str, str] | None = None) -> list[WorkerProcess]:
        new = [WorkerProcess(workdir, name, queues=queues.get(name) if isinstance(queues, dict) else queues) for name in names]
        started.extend(new)
        for w in new:
            wait_for(w.ready, timeout=60, what=f"worker {w.name} ready", logs=w.logs)
        return new

    yield start
    for w in started:
        w.stop()
