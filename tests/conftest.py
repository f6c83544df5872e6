"""Fixtures shared by the suite: real git repositories, a real HTTP server, a real store, the daemon as a subprocess.

Fixtures only: the harnesses behind them live in ``tests/support/``, where tests import them from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.store import Store
from tests.support.git import GitRepo
from tests.support.http_server import HttpServer
from tests.support.processes import DaemonProcess


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
