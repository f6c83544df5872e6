"""The database schema, as numbered forward migrations (recorded in ``PRAGMA user_version``)."""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils


def _migration_1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            taken_at TEXT NOT NULL,
            rules_hash TEXT NOT NULL,
            complete INTEGER NOT NULL,
            overall REAL,
            content_hash TEXT NOT NULL,
            origin TEXT NOT NULL DEFAULT 'collected',
            sources TEXT NOT NULL
        );
        CREATE INDEX snapshots_by_project_time ON snapshots (project, taken_at);
        CREATE TABLE snapshot_repeats (
            snapshot_id INTEGER NOT NULL REFERENCES snapshots (id),
            seen_at TEXT NOT NULL,
            PRIMARY KEY (snapshot_id, seen_at)
        ) WITHOUT ROWID;
        CREATE TABLE pillar_scores (
            snapshot_id INTEGER NOT NULL REFERENCES snapshots (id),
            pillar TEXT NOT NULL,
            position INTEGER NOT NULL,
            title TEXT NOT NULL,
            weight REAL NOT NULL,
            score REAL,
            coverage REAL NOT NULL,
            PRIMARY KEY (snapshot_id, pillar)
        ) WITHOUT ROWID;
        CREATE TABLE criterion_scores (
            snapshot_id INTEGER NOT NULL REFERENCES snapshots (id),
            pillar TEXT NOT NULL,
            criterion TEXT NOT NULL,
            position INTEGER NOT NULL,
            title TEXT NOT NULL,
            weight REAL NOT NULL,
            score REAL,
            status TEXT NOT NULL,
            reason TEXT,
            scored_at TEXT,
            checks TEXT NOT NULL,
            evidence TEXT NOT NULL,
            PRIMARY KEY (snapshot_id, pillar, criterion)
        ) WITHOUT ROWID;
        CREATE TABLE evidence (
            hash TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            signal TEXT NOT NULL,
            params TEXT NOT NULL,
            value TEXT,
            error TEXT,
            provenance TEXT NOT NULL,
            observed_at TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    """Schedule state, the latest result of each source, alerts and the outbox."""
    db.executescript(
        """
        CREATE TABLE source_runs (
            project TEXT NOT NULL,
            source TEXT NOT NULL,
            due_at TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL DEFAULT 'running',
            error TEXT,
            fingerprint TEXT,
            PRIMARY KEY (project, source, due_at)
        ) WITHOUT ROWID;
        CREATE TABLE source_results (
            project TEXT NOT NULL,
            source TEXT NOT NULL,
            collected_at TEXT NOT NULL,
            result TEXT NOT NULL,
            failing_since TEXT,
            last_success_at TEXT,
            PRIMARY KEY (project, source)
        ) WITHOUT ROWID;
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL,
            subject TEXT NOT NULL,
            kind TEXT NOT NULL,
            state TEXT NOT NULL,
            body TEXT NOT NULL,
            started_at TEXT NOT NULL,
            resolved_at TEXT
        );
        CREATE UNIQUE INDEX alerts_one_open ON alerts (project, subject, kind) WHERE state != 'resolved';
        CREATE INDEX alerts_by_time ON alerts (started_at);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER REFERENCES alerts (id),
            channel TEXT NOT NULL,
            idempotency_key TEXT NOT NULL UNIQUE,
            message TEXT NOT NULL,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'pending',
            last_error TEXT,
            delivered_at TEXT
        );
        CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
        CREATE TABLE delivery_attempts (
            outbox_id INTEGER NOT NULL REFERENCES outbox (id),
            at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            status_code INTEGER,
            error TEXT
        );
        CREATE INDEX delivery_attempts_by_item ON delivery_attempts (outbox_id);
        CREATE TABLE channel_state (
            channel TEXT PRIMARY KEY,
            disabled_at TEXT NOT NULL,
            reason TEXT NOT NULL
        ) WITHOUT ROWID;
        """
    )


def _migration_3(db: sqlite_utils.Database) -> None:
    """Where imported snapshots came from, and what their verification found."""
    db.executescript(
        """
        CREATE TABLE imported_documents (
            snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots (id),
            project TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            path TEXT NOT NULL,
            git_commit TEXT,
            imported_at TEXT NOT NULL,
            verification TEXT NOT NULL,
            UNIQUE (project, content_hash)
        );
        """
    )


def _migration_4(db: sqlite_utils.Database) -> None:
    """Old runs folded into per-source totals, so the runs table stays small and the counters go on; and
    what retention removed of backfilled and imported history, so running those again does not bring it back."""
    db.executescript(
        """
        CREATE TABLE pruned_origins (
            project TEXT NOT NULL,
            origin TEXT NOT NULL,  -- backfilled: a commit of `source`; imported: a document's content hash
            source TEXT NOT NULL DEFAULT '',
            key TEXT NOT NULL,
            pruned_at TEXT NOT NULL,
            PRIMARY KEY (project, origin, source, key)
        ) WITHOUT ROWID;
        CREATE TABLE source_run_totals (
            project TEXT NOT NULL,
            source TEXT NOT NULL,
            outcome TEXT NOT NULL,
            runs INTEGER NOT NULL,
            seconds REAL NOT NULL DEFAULT 0,
            buckets TEXT NOT NULL DEFAULT '[]',  -- ok/error runs at most each of runs.DURATION_BUCKETS, cumulative
            PRIMARY KEY (project, source, outcome)
        ) WITHOUT ROWID;
        """
    )


def _migration_5(db: sqlite_utils.Database) -> None:
    """The hash of a disabled channel's configuration, so a changed channel is switched back on."""
    db.executescript("ALTER TABLE channel_state ADD COLUMN config_hash TEXT;")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_migration_1, _migration_2, _migration_3, _migration_4, _migration_5]
SCHEMA_VERSION = len(MIGRATIONS)
