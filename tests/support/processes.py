"""The daemon and Celery workers as real subprocesses, and polling for what they do.

Each runs ``python -m daemon.cli`` in its working folder, on the ``pw.yaml``
there, with its standard error kept in a log file that a failing wait prints.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.ports import free_port
from tests.support.webhooks import SECRET


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "condition", logs: Callable[[], str] = lambda: "") -> Any:
    """The first true value of ``condition()``, polled every 0.1 s; past ``timeout``, fail with the tail of ``logs()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{logs()[-4000:]}")


class DaemonProcess:
    """`pillarwatch daemon --no-api`, with the webhook secret of ``tests.support.webhooks`` in its environment."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.log = workdir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        env = {**os.environ, "PW_TEST_WEBHOOK_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "daemon", "--config", "pw.yaml", "--no-api"],  # the API has its own tests
            cwd=self.workdir, env=env, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),
        )
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.signal(signal.SIGTERM)
        return self.wait()

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


class ApiDaemonProcess(DaemonProcess):
    """The daemon subprocess serving the API on a free port instead of ``--no-api``."""

    def start(self) -> ApiDaemonProcess:
        self.port = free_port()
        env = {**os.environ, "PW_TEST_WEBHOOK_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "daemon", "--config", "pw.yaml", "--port", str(self.port)],
            cwd=self.workdir, env=env, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class WorkerProcess:
    """`pillarwatch worker` as a subprocess; its environment names it (PW_WORKER)."""

    def __init__(self, workdir: Path, name: str, *, queues: str | None = None):
        self.name, self.workdir = name, workdir
        self.log = workdir / f"worker-{name}.log"
        argv = [sys.executable, "-m", "daemon.cli", "worker", "--config", "pw.yaml", "--concurrency", "1",
                "--cache-dir", str(workdir / f"cache-{name}")]
        if queues:
            argv += ["--queues", queues]
        self.proc = subprocess.Popen(argv, cwd=workdir, env={**os.environ, "PW_WORKER": name},
                                     stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))

    def logs(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"worker {self.name} exited {self.proc.returncode}\n{self.logs()[-3000:]}"
        return " ready." in self.logs()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
