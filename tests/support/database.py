"""A store file seen from outside the daemon: read-only queries, and its invariants after a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def query(db: Path, sql: str, *params: Any) -> list[tuple]:
    """Rows of ``sql`` on a read-only connection; none while the file or its tables do not exist yet."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def store_problems(db: Path, *, pillars: int, criteria: int) -> list[str]:
    """What is wrong with the store, as a restart would find it (empty: nothing).

    Opened read-write, as the next process would open it, so that a WAL left
    by a killed writer is recovered first. Checks: ``PRAGMA integrity_check``
    and foreign keys; every snapshot whole (all its pillar and criterion
    rows, every evidence row they name); every outbox row with its alert.
    """
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=10)
    try:
        problems = [f"integrity_check: {row[0]}" for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "snapshots" not in tables:
            return problems
        for sid, p, c in conn.execute(
            "SELECT id, (SELECT count(*) FROM pillar_scores WHERE snapshot_id = s.id),"
            " (SELECT count(*) FROM criterion_scores WHERE snapshot_id = s.id) FROM snapshots s"
        ):
            if (p, c) != (pillars, criteria):
                problems.append(f"snapshot {sid} is half-written: {p}/{pillars} pillar rows, {c}/{criteria} criterion rows")
        missing = conn.execute(
            "SELECT count(*) FROM criterion_scores c, json_each(c.evidence) e"
            " WHERE NOT EXISTS (SELECT 1 FROM evidence WHERE hash = e.value)"
        ).fetchone()[0]
        if missing:
            problems.append(f"{missing} evidence reference(s) without their evidence row")
        if "outbox" in tables:
            orphans = conn.execute(
                "SELECT count(*) FROM outbox o WHERE o.alert_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM alerts WHERE id = o.alert_id)"
            ).fetchone()[0]
            if orphans:
                problems.append(f"{orphans} outbox row(s) without their alert")
        return problems
    finally:
        conn.close()


def outbox_states(db: Path) -> dict[str, str]:
    """Idempotency key -> state, for every outbox row."""
    return dict(query(db, "SELECT idempotency_key, state FROM outbox"))
