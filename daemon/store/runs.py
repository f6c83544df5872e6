"""Schedule state: which due time of which source was collected, and each source's latest result."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlite_utils

from collectors.evidence import CollectResult

from ..snapshot import rfc3339
from ._util import parse_time


class RunQueries:
    db: sqlite_utils.Database

    def claim_run(self, project: str, source: str, due_at: datetime, *, now: datetime) -> bool:
        """Claim the collection of one due time; False when it was already done.

        A claim whose run never finished (the process died) may be taken again,
        and so may a due time that was missed or skipped and is now caught up.
        """
        with self.db.atomic():
            row = self.db.execute(
                "SELECT outcome FROM source_runs WHERE project = ? AND source = ? AND due_at = ?",
                [project, source, rfc3339(due_at)],
            ).fetchone()
            if row is not None and row[0] not in ("running", "missed", "skipped"):
                return False
            self.db.execute(
                "INSERT OR REPLACE INTO source_runs (project, source, due_at, started_at, outcome) VALUES (?, ?, ?, ?, 'running')",
                [project, source, rfc3339(due_at), rfc3339(now)],
            )
        return True

    def run_outcome(self, project: str, source: str, due_at: datetime) -> str | None:
        """How the run of one due time stands (``running``, ``ok``, ``error``, ...), None when never claimed."""
        row = self.db.execute(
            "SELECT outcome FROM source_runs WHERE project = ? AND source = ? AND due_at = ?",
            [project, source, rfc3339(due_at)],
        ).fetchone()
        return row[0] if row else None

    def record_run(
        self,
        project: str,
        source: str,
        due_at: datetime,
        *,
        outcome: str,
        now: datetime,
        result: CollectResult | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a run ended (``ok``, ``error``, ``missed``, ``skipped``), and its result.

        A run that did not happen never overwrites one that did for the same due time.
        """
        if outcome in ("missed", "skipped"):
            with self.db.atomic():
                self.db.execute(
                    "INSERT OR IGNORE INTO source_runs (project, source, due_at, started_at, finished_at, outcome, error)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [project, source, rfc3339(due_at), rfc3339(now), rfc3339(now), outcome, error],
                )
            return
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO source_runs (project, source, due_at, started_at, finished_at, outcome, error, fingerprint)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (project, source, due_at) DO UPDATE SET finished_at = excluded.finished_at,"
                " outcome = excluded.outcome, error = excluded.error, fingerprint = excluded.fingerprint",
                [project, source, rfc3339(due_at), rfc3339(now), rfc3339(now), outcome, error,
                 result.fingerprint if result else None],
            )
            if result is not None:
                self.save_result(project, result, now)

    def save_result(self, project: str, result: CollectResult, now: datetime) -> None:
        """Keep a source's latest result, and since when it has been failing."""
        previous = self.db.execute(
            "SELECT failing_since, last_success_at FROM source_results WHERE project = ? AND source = ?",
            [project, result.source],
        ).fetchone()
        failing_since, last_success = previous if previous else (None, None)
        if result.answered:
            failing_since, last_success = None, rfc3339(now)
        elif failing_since is None:
            failing_since = rfc3339(now)
        self.db.execute(
            "INSERT OR REPLACE INTO source_results (project, source, collected_at, result, failing_since, last_success_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [project, result.source, rfc3339(now), result.model_dump_json(), failing_since, last_success],
        )

    def latest_results(self, project: str) -> dict[str, CollectResult]:
        """The last result of every source of a project, by source id."""
        return {
            row["source"]: CollectResult.model_validate_json(row["result"])
            for row in self.db.query("SELECT source, result FROM source_results WHERE project = ?", [project])
        }

    def failing_since(self, project: str) -> dict[str, datetime]:
        return {
            row["source"]: parse_time(row["failing_since"])
            for row in self.db.query(
                "SELECT source, failing_since FROM source_results WHERE project = ? AND failing_since IS NOT NULL", [project]
            )
        }

    def last_due(self, project: str, source: str) -> datetime | None:
        """The latest due time claimed for a source, finished or not."""
        row = self.db.execute(
            "SELECT max(due_at) FROM source_runs WHERE project = ? AND source = ? AND outcome NOT IN ('missed', 'skipped')",
            [project, source],
        ).fetchone()
        return parse_time(row[0]) if row and row[0] else None

    def runs(self, project: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT * FROM source_runs"
        params: list[Any] = []
        if project:
            sql += " WHERE project = ?"
            params.append(project)
        sql += " ORDER BY started_at DESC LIMIT ?"
        params.append(limit)
        return list(self.db.query(sql, params))

    def last_success(self) -> datetime | None:
        """When any source last answered: what a health check reports."""
        row = self.db.execute("SELECT max(last_success_at) FROM source_results").fetchone()
        return parse_time(row[0]) if row and row[0] else None

    # --- aggregates for metrics ------------------------------------------------------

    def run_counts(self) -> list[dict[str, Any]]:
        """Finished runs by project, source and outcome (``n``); runs still going are left out."""
        return list(self.db.query(
            "SELECT project, source, outcome, count(*) AS n FROM source_runs WHERE outcome != 'running'"
            " GROUP BY project, source, outcome ORDER BY project, source, outcome"
        ))

    def run_durations(self, bounds: Sequence[float]) -> list[dict[str, Any]]:
        """How long the runs that happened (``ok`` or ``error``) took, per project and source.

        Each row has ``count``, ``sum`` (seconds, to the millisecond) and
        ``buckets``: the cumulative count of runs that took at most each bound.
        """
        seconds = "max(0.0, round((julianday(finished_at) - julianday(started_at)) * 86400.0, 3))"
        le = ", ".join(f"sum(seconds <= ?) AS le_{i}" for i in range(len(bounds)))
        rows = self.db.execute(
            f"WITH runs AS (SELECT project, source, {seconds} AS seconds FROM source_runs"
            "  WHERE finished_at IS NOT NULL AND outcome IN ('ok', 'error'))"
            f" SELECT project, source, count(*), total(seconds){', ' + le if le else ''}"
            " FROM runs GROUP BY project, source ORDER BY project, source",
            [float(b) for b in bounds],
        ).fetchall()
        return [
            {"project": r[0], "source": r[1], "count": r[2], "sum": r[3], "buckets": [int(n) for n in r[4:]]}
            for r in rows
        ]

    def source_health(self) -> list[dict[str, Any]]:
        """Every source's ``failing_since`` and ``last_success_at`` (datetimes or None)."""
        return [
            {"project": r["project"], "source": r["source"],
             "failing_since": parse_time(r["failing_since"]) if r["failing_since"] else None,
             "last_success_at": parse_time(r["last_success_at"]) if r["last_success_at"] else None}
            for r in self.db.query(
                "SELECT project, source, failing_since, last_success_at FROM source_results ORDER BY project, source"
            )
        ]
