"""Schedule state: which due time of which source was collected, and each source's latest result."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlite_utils

from collectors.evidence import CollectResult
from daemon.scoring.snapshot import rfc3339
from daemon.store._util import parse_time

# Upper bounds (seconds) of the run duration histogram: a local read takes a
# fraction of a second, a fetch or a CI API walk seconds, a collector timeout a
# minute. Folded runs keep their counts per bound (see fold_runs).
DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_SECONDS = "max(0.0, round((julianday(finished_at) - julianday(started_at)) * 86400.0, 3))"


class RunQueries:
    db: sqlite_utils.Database

    def claim_run(self, project: str, source: str, due_at: datetime, *, now: datetime) -> bool:
        """Claim the collection of one due time; False when it was already done.

        A claim whose run never finished (the process died) may be taken again,
        and so may a due time that was missed, skipped or interrupted and is now
        caught up. An interrupted run is counted in the totals first, so the
        runs counter keeps it once the row is taken again.
        """
        with self.db.atomic():
            row = self.db.execute(
                "SELECT outcome FROM source_runs WHERE project = ? AND source = ? AND due_at = ?",
                [project, source, rfc3339(due_at)],
            ).fetchone()
            if row is not None and row[0] not in ("running", "missed", "skipped", "interrupted"):
                return False
            if row is not None and row[0] == "interrupted":
                self.db.execute(
                    "INSERT INTO source_run_totals (project, source, outcome, runs, seconds, buckets) VALUES (?, ?, 'interrupted', 1, 0, ?)"
                    " ON CONFLICT (project, source, outcome) DO UPDATE SET runs = runs + 1",
                    [project, source, json.dumps([0] * len(DURATION_BUCKETS))],
                )
            self.db.execute(
                "INSERT OR REPLACE INTO source_runs (project, source, due_at, started_at, outcome) VALUES (?, ?, ?, ?, 'running')",
                [project, source, rfc3339(due_at), rfc3339(now)],
            )
        return True

    def interrupt_runs(self, *, now: datetime) -> list[tuple[str, str, datetime]]:
        """Mark every run still ``running`` as ``interrupted``; returns their ``(project, source, due_at)``.

        Call at the daemon's start, holding its lock: a run still going then
        belongs to a daemon that died (or stopped without waiting for it).
        Its due time no longer counts as claimed (see :meth:`last_due`), so it
        is collected again at once.
        """
        with self.db.atomic():  # no RETURNING: it needs SQLite 3.35
            rows = self.db.execute("SELECT project, source, due_at FROM source_runs WHERE outcome = 'running'").fetchall()
            self.db.execute(
                "UPDATE source_runs SET outcome = 'interrupted', finished_at = ?,"
                " error = 'the daemon stopped during the run' WHERE outcome = 'running'",
                [rfc3339(now)],
            )
        return sorted((p, s, parse_time(d)) for p, s, d in rows)

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

        (``interrupted`` is set by :meth:`interrupt_runs` only.)

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
                self.save_result(project, result, now, due_at=due_at)

    def record_not_run(self, project: str, source: str, dues: list[datetime], *, outcome: str, now: datetime, error: str) -> None:
        """Record due times that were not run (``missed`` or ``skipped``) at once; one already recorded keeps its row."""
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT OR IGNORE INTO source_runs (project, source, due_at, started_at, finished_at, outcome, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[project, source, rfc3339(due), rfc3339(now), rfc3339(now), outcome, error] for due in dues],
            )

    def save_result(self, project: str, result: CollectResult, now: datetime, *, due_at: datetime | None = None) -> bool:
        """Keep a source's latest result, and since when it has been failing; False when it was not kept.

        ``due_at`` is when the collection was due (default ``now``: a collection
        started now), stored as ``collected_at``. The latest result is the one
        of the latest collection, not the last to arrive: a result due before the
        stored one (a slow job, or a task delivered late) never replaces it.
        """
        due = rfc3339(due_at or now)
        previous = self.db.execute(
            "SELECT failing_since, last_success_at, collected_at FROM source_results WHERE project = ? AND source = ?",
            [project, result.source],
        ).fetchone()
        if previous is not None and parse_time(previous[2]) > parse_time(due):
            return False
        failing_since, last_success = previous[:2] if previous else (None, None)
        if result.answered:
            failing_since, last_success = None, rfc3339(now)
        elif failing_since is None:
            failing_since = rfc3339(now)
        self.db.execute(
            "INSERT OR REPLACE INTO source_results (project, source, collected_at, result, failing_since, last_success_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [project, result.source, due, result.model_dump_json(), failing_since, last_success],
        )
        return True

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
        """The latest due time claimed for a source, finished or not (an interrupted run does not count)."""
        row = self.db.execute(
            "SELECT max(due_at) FROM source_runs WHERE project = ? AND source = ?"
            " AND outcome NOT IN ('missed', 'skipped', 'interrupted')",
            [project, source],
        ).fetchone()
        return parse_time(row[0]) if row and row[0] else None

    def last_recorded_due(self, project: str, source: str) -> datetime | None:
        """The latest due time with a row of any outcome: the due times after it have none yet."""
        row = self.db.execute("SELECT max(due_at) FROM source_runs WHERE project = ? AND source = ?", [project, source]).fetchone()
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
        """Finished runs by project, source and outcome (``n``), folded ones included; runs still going are left out."""
        return list(self.db.query(
            "SELECT project, source, outcome, sum(n) AS n FROM ("
            "  SELECT project, source, outcome, count(*) AS n FROM source_runs WHERE outcome != 'running'"
            "  GROUP BY project, source, outcome"
            "  UNION ALL SELECT project, source, outcome, runs FROM source_run_totals)"
            " GROUP BY project, source, outcome ORDER BY project, source, outcome"
        ))

    def run_durations(self) -> list[dict[str, Any]]:
        """How long the runs that happened (``ok`` or ``error``) took, per project and source, folded ones included.

        Each row has ``count``, ``sum`` (seconds, to the millisecond) and
        ``buckets``: the cumulative count of runs that took at most each of
        :data:`DURATION_BUCKETS`.
        """
        by_source: dict[tuple[str, str], list[float]] = {}
        live = self._durations("SELECT project, source, outcome, started_at, finished_at FROM source_runs", {})
        folded = self.db.execute(
            "SELECT project, source, runs, seconds, buckets FROM source_run_totals WHERE outcome IN ('ok', 'error')"
        ).fetchall()
        for project, source, count, seconds, buckets in [*live, *((*r[:4], json.loads(r[4])) for r in folded)]:
            row = by_source.setdefault((project, source), [0, 0.0, *(0 for _ in DURATION_BUCKETS)])
            for i, value in enumerate((count, seconds, *buckets)):
                row[i] += value
        return [
            {"project": p, "source": s, "count": int(r[0]), "sum": round(r[1], 3), "buckets": [int(n) for n in r[2:]]}
            for (p, s), r in sorted(by_source.items())
        ]

    def _durations(self, runs: str, args: dict[str, Any], by: str = "project, source") -> list[tuple[Any, ...]]:
        """Per ``by``: the count, total seconds and cumulative counts per bound of the finished ok/error ``runs``."""
        le = ", ".join(f"sum(seconds <= {float(b)!r})" for b in DURATION_BUCKETS)
        rows = self.db.execute(
            f"WITH took AS (SELECT *, {_SECONDS} AS seconds FROM ({runs})"
            "  WHERE finished_at IS NOT NULL AND outcome IN ('ok', 'error'))"
            f" SELECT {by}, count(*), total(seconds), {le} FROM took GROUP BY {by}",
            args,
        ).fetchall()
        width = len(by.split(","))
        return [(*r[:width], r[width], r[width + 1], [int(n) for n in r[width + 2:]]) for r in rows]

    def fold_runs(self, project: str, *, before: datetime) -> int:
        """Fold the project's finished runs due before ``before`` into per-source totals; returns how many.

        Each source's latest claimed run stays (the daemon's catch-up reads
        it); counts and the duration histogram (at :data:`DURATION_BUCKETS`)
        carry on from the totals, so the metrics' counters do not go back.
        Call inside a transaction.
        """
        latest = ("SELECT source, max(due_at) AS due_at FROM source_runs WHERE project = :p"
                  " AND outcome NOT IN ('missed', 'skipped', 'interrupted') GROUP BY source")
        doomed = (f"SELECT r.* FROM source_runs AS r LEFT JOIN ({latest}) AS l ON l.source = r.source AND l.due_at = r.due_at"
                  " WHERE r.project = :p AND r.due_at < :before AND r.outcome != 'running' AND l.source IS NULL")
        args = {"p": project, "before": rfc3339(before)}
        counts = self.db.execute(f"SELECT source, outcome, count(*) FROM ({doomed}) GROUP BY source, outcome", args).fetchall()
        if not counts:
            return 0
        took = {(source, outcome): (seconds, buckets)
                for source, outcome, _, seconds, buckets in self._durations(doomed, args, "source, outcome")}
        folded = 0
        for source, outcome, count in counts:
            row = self.db.execute(
                "SELECT runs, seconds, buckets FROM source_run_totals WHERE project = ? AND source = ? AND outcome = ?",
                [project, source, outcome],
            ).fetchone()
            runs, total, buckets = (int(row[0]), float(row[1]), json.loads(row[2])) if row else (0, 0.0, [0] * len(DURATION_BUCKETS))
            seconds, more = took.get((source, outcome), (0.0, [0] * len(DURATION_BUCKETS)))
            self.db.execute(
                "INSERT OR REPLACE INTO source_run_totals (project, source, outcome, runs, seconds, buckets) VALUES (?, ?, ?, ?, ?, ?)",
                [project, source, outcome, runs + count, round(total + seconds, 3), json.dumps([a + b for a, b in zip(buckets, more)])],
            )
            folded += count
        self.db.execute(
            f"DELETE FROM source_runs WHERE (project, source, due_at) IN (SELECT project, source, due_at FROM ({doomed}))", args,
        )
        return folded

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
