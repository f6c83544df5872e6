"""The store: the one place that speaks SQL.

One SQLite file (WAL mode) holds evidence, snapshots and their pillar and
criterion scores, the schedule state of every source, alerts and the
delivery outbox. Schema changes are numbered forward migrations
(:mod:`daemon.store.schema`). There is one writer (the daemon, or one
command); readers such as the HTTP API open the file read-only.

The queries are grouped by concept in mixins: :mod:`.snapshots`,
:mod:`.overview` (the dashboard's reads), :mod:`.runs`, :mod:`.outbox`
and :mod:`.pruning`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from daemon.errors import StoreError
from daemon.store.outbox import AlertQueries
from daemon.store.overview import LatestState, OverviewQueries, SeriesPoint
from daemon.store.pruning import RetentionQueries
from daemon.store.runs import RunQueries
from daemon.store.schema import MIGRATIONS, SCHEMA_VERSION
from daemon.store.snapshots import SnapshotQueries

# A database that fails while in use (a full disk, a corrupt page): callers catch it by this
# name, so that only the store speaks SQL.
DatabaseError = sqlite3.Error

__all__ = ["SCHEMA_VERSION", "DatabaseError", "LatestState", "SeriesPoint", "Store"]


class _WriterDatabase(sqlite_utils.Database):
    """A database whose outermost transaction takes the write lock at ``BEGIN IMMEDIATE``.

    The daemon writes through two connections (scoring, delivery). SQLite
    does not call the busy handler when a transaction that has already read
    tries to write: a deferred ``BEGIN`` that reads first (claiming a run,
    saving a snapshot) fails at once with "database is locked" if the other
    connection holds the write lock or committed since, whatever the busy
    timeout. Taking the lock first makes the timeout apply. Nested calls
    are savepoints, as in sqlite-utils.
    """

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        if self.conn.in_transaction:
            with super().atomic():
                yield self
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.rollback()
            raise


class Store(SnapshotQueries, OverviewQueries, RunQueries, AlertQueries, RetentionQueries):
    """Everything pillarwatch keeps, in one SQLite file."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None = None):
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path | str, *, readonly: bool = False) -> Store:
        """Open (and, unless read-only, create and migrate) the database at ``path``."""
        path = Path(path)
        try:
            if readonly:
                if not path.exists():
                    raise StoreError(f"{path}: no database yet (run `pillarwatch collect` first)")
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
                store = cls(sqlite_utils.Database(conn), path)
                store._check_version()
                return store
            path.parent.mkdir(parents=True, exist_ok=True)
            # Callers that share one connection across threads (the daemon) serialise it themselves.
            db = _WriterDatabase(sqlite3.connect(path, check_same_thread=False, timeout=5))
            db.execute("PRAGMA busy_timeout = 5000")
            db.enable_wal()
            # Alert state and the outbox must survive a power cut once committed;
            # the write rate is a few transactions a minute, so FULL costs nothing.
            db.execute("PRAGMA synchronous = FULL")
            store = cls(db, path)
            store._migrate()
            return store
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open database: {exc}") from None
        except OSError as exc:
            raise StoreError(f"{path}: cannot create database: {exc.strerror or exc}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self) -> None:
        if self.version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema {self.version} is newer than this pillarwatch understands ({SCHEMA_VERSION}); upgrade pillarwatch"
            )

    def _migrate(self) -> None:
        self._check_version()
        for number in range(self.version + 1, SCHEMA_VERSION + 1):
            with self.db.atomic():
                MIGRATIONS[number - 1](self.db)
                self.db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write; nested calls join the outer transaction."""
        with self.db.atomic():
            yield
