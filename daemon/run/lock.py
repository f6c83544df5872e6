"""One daemon per database: an exclusive lock on a file beside it, naming its holder."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from daemon.errors import PillarwatchError, StoreError


class AlreadyRunning(PillarwatchError):
    """Another daemon holds the database."""


class DaemonLock:
    """``with DaemonLock(db_path):`` — held for the life of the process.

    An flock is released by the kernel when the process dies, even by
    ``kill -9``, so a stale lock file never blocks a restart.
    """

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # a parent that is a file, a read-only filesystem: one line, as Store.open says it
            raise StoreError(f"{self.db_path}: cannot create database: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(f"another pillarwatch daemon (pid {holder}) holds {self.path.parent / self.path.stem}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
