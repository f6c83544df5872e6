"""Retention queries: what the plan needs to know, and deleting what it drops.

The decision is pure (:func:`daemon.config.retention.plan`); this module reads its
inputs and carries it out. :meth:`RetentionQueries.prune` does both inside one
``BEGIN IMMEDIATE`` transaction, so no other writer can add an alert or a
snapshot between the decision and the deletion.

Evidence is content-addressed and shared: a ``criterion_scores`` row lists the
hashes of its evidence (a JSON array) and many snapshots, of several projects,
may point at one ``evidence`` row. After deleting snapshots, an evidence row
goes only when no remaining criterion row lists it.

Nothing is vacuumed: the database is not in ``auto_vacuum`` mode (so
``PRAGMA incremental_vacuum`` would do nothing), the freed pages go to SQLite's
free list and are reused by the snapshots that follow, and a full ``VACUUM``
would rewrite the whole file while blocking every writer. Run ``VACUUM`` by
hand, with the daemon stopped, to shrink the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from daemon.config.retention import RetentionPlan, RetentionPolicy, plan
from daemon.errors import StoreError
from daemon.scoring.snapshot import rfc3339
from daemon.store._util import parse_time

# The tables holding rows of one snapshot (a foreign key to `snapshots`), deleted
# with it; `imported_documents` (schema 3) records where an imported snapshot came
# from. A table added later with a foreign key to `snapshots` must be added here:
# until then, deleting refuses to run rather than leave dangling rows.
SNAPSHOT_CHILDREN = frozenset({"snapshot_repeats", "pillar_scores", "criterion_scores", "imported_documents"})


@dataclass(frozen=True)
class DeletedCounts:
    """Rows removed by one deletion, per table."""

    snapshots: int = 0
    snapshot_repeats: int = 0
    pillar_scores: int = 0
    criterion_scores: int = 0
    imported_documents: int = 0
    evidence: int = 0
    source_runs: int = 0  # folded into source_run_totals (see RunQueries.fold_runs)

    def __add__(self, other: DeletedCounts) -> DeletedCounts:
        return DeletedCounts(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Pruned:
    """The outcome of pruning one project: the plan, and what was deleted (None for a dry run)."""

    project: str
    plan: RetentionPlan
    deleted: DeletedCounts | None

    def to_json(self, policy: RetentionPolicy) -> dict[str, object]:
        """The shape `pillarwatch prune --json` prints for one project."""
        spans = policy.spans()
        return {
            "project": self.project,
            "snapshots": len(self.plan.tiers),
            "kept": len(self.plan.keep),
            "removed": len(self.plan.remove),
            "tiers": {tier: {"ages": spans[tier], **counts} for tier, counts in self.plan.summary().items()},
            "pinned": sorted(self.plan.pinned),
            "deleted": self.deleted.to_json() if self.deleted is not None else None,
        }


class RetentionQueries:
    db: sqlite_utils.Database
    path: Path | None

    def snapshot_times(self, project: str) -> list[tuple[int, datetime]]:
        """Every snapshot of the project as ``(id, taken_at)``, oldest first."""
        rows = self.db.execute(
            "SELECT id, taken_at FROM snapshots WHERE project = ? ORDER BY taken_at, id", [project]
        ).fetchall()
        return [(int(sid), parse_time(taken_at)) for sid, taken_at in rows]

    def protected_snapshots(self, project: str) -> set[int]:
        """Snapshots that must stay: the latest, those open (pending or firing)
        alerts refer to (their baselines too, re-scored on a change of rules),
        and those undelivered alert messages link to."""
        rows = self.db.execute(
            """
            SELECT id FROM (SELECT id FROM snapshots WHERE project = :p ORDER BY taken_at DESC, id DESC LIMIT 1)
            UNION SELECT json_extract(body, '$.snapshot_id') FROM alerts WHERE project = :p AND state IN ('pending', 'firing')
            UNION SELECT json_extract(body, '$.baseline_snapshot_id') FROM alerts WHERE project = :p AND state IN ('pending', 'firing')
            UNION SELECT json_extract(message, '$.snapshot_id') FROM outbox
                  WHERE state = 'pending' AND json_extract(message, '$.project') = :p
            """,
            {"p": project},
        ).fetchall()
        return {int(sid) for (sid,) in rows if sid is not None}

    def snapshots_of_origin(self, project: str, origins: Iterable[str]) -> set[int]:
        """The project's snapshots of the given origins (``backfilled``, ``imported``)."""
        rows = self.db.execute(
            "SELECT id FROM snapshots WHERE project = ? AND origin IN (SELECT value FROM json_each(?))",
            [project, json.dumps(list(origins))],
        ).fetchall()
        return {int(sid) for (sid,) in rows}

    def delete_snapshots(self, ids: Iterable[int]) -> DeletedCounts:
        """Delete snapshots with all their rows, then the evidence nothing refers to any more; one transaction."""
        wanted = json.dumps(sorted(set(ids)))
        if wanted == "[]":
            return DeletedCounts()
        children = self._children()
        chosen = "SELECT value FROM json_each(?)"
        counts: dict[str, int] = {}
        with self.db.atomic():
            # Evidence the doomed snapshots use: the only rows that may become unreferenced.
            candidates = [
                h for (h,) in self.db.execute(
                    f"SELECT DISTINCT j.value FROM criterion_scores AS c, json_each(c.evidence) AS j WHERE c.snapshot_id IN ({chosen})",
                    [wanted],
                )
            ]
            # Backfill and import skip what is remembered here, as they skip what is stored.
            self.db.execute(
                "INSERT OR IGNORE INTO pruned_origins (project, origin, source, key, pruned_at)"
                " SELECT s.project, 'backfilled', json_extract(j.value, '$.id'), json_extract(j.value, '$.fingerprint'), :now"
                "   FROM snapshots AS s, json_each(s.sources) AS j"
                f"  WHERE s.id IN ({chosen.replace('?', ':ids')}) AND s.origin = 'backfilled'"
                "    AND json_extract(j.value, '$.fingerprint') IS NOT NULL"
                " UNION ALL SELECT project, 'imported', '', content_hash, :now FROM imported_documents"
                f"  WHERE snapshot_id IN ({chosen.replace('?', ':ids')})",
                {"ids": wanted, "now": rfc3339(datetime.now(timezone.utc))},
            )
            for table, column in children:
                deleted = self.db.execute(f"DELETE FROM [{table}] WHERE [{column}] IN ({chosen})", [wanted]).rowcount
                counts[table] = counts.get(table, 0) + deleted
            counts["snapshots"] = self.db.execute(f"DELETE FROM snapshots WHERE id IN ({chosen})", [wanted]).rowcount
            counts["evidence"] = self._collect_evidence(candidates)
        return DeletedCounts(**counts)

    def _collect_evidence(self, candidates: list[str]) -> int:
        """Delete the candidate evidence rows no criterion row lists any more (of any project)."""
        if not candidates:
            return 0
        listed = json.dumps(candidates)
        still_used = {
            h for (h,) in self.db.execute(
                "SELECT DISTINCT j.value FROM criterion_scores AS c, json_each(c.evidence) AS j"
                " WHERE j.value IN (SELECT value FROM json_each(?))",
                [listed],
            )
        }
        unused = json.dumps(sorted(set(candidates) - still_used))
        return int(self.db.execute("DELETE FROM evidence WHERE hash IN (SELECT value FROM json_each(?))", [unused]).rowcount)

    def _children(self) -> list[tuple[str, str]]:
        """``(table, column)`` of every foreign key to ``snapshots``; an unknown one is refused."""
        found = []
        for (table,) in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
            for row in self.db.execute(f"PRAGMA foreign_key_list([{table}])").fetchall():
                if row[2] != "snapshots":
                    continue
                if table not in SNAPSHOT_CHILDREN:
                    raise StoreError(f"{self.path}: table {table} refers to snapshots and retention does not know it; nothing was deleted")
                found.append((table, row[3]))
        return found

    def prune(self, project: str, policy: RetentionPolicy, *, now: datetime, dry_run: bool = False) -> Pruned:
        """Plan the project's retention and, unless ``dry_run``, carry it out, atomically."""
        try:
            with self._write_lock(dry_run):
                kept = self.snapshots_of_origin(project, policy.kept_origins())  # history that cannot be had again
                decided = plan(self.snapshot_times(project), now=now, policy=policy,
                               protected=self.protected_snapshots(project) | kept)
                if dry_run:
                    deleted = None
                else:
                    folded = self.fold_runs(project, before=now - policy.runs_for)  # type: ignore[attr-defined]
                    deleted = self.delete_snapshots(decided.remove) + DeletedCounts(source_runs=folded)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: pruning {project}: {exc}") from None
        return Pruned(project, decided, deleted)

    @contextmanager
    def _write_lock(self, dry_run: bool) -> Iterator[None]:
        """For a real run, take the write lock before reading, so what was read stays true."""
        conn = self.db.conn
        if dry_run:
            yield
        elif conn.in_transaction:  # join the caller's transaction
            with self.db.atomic():
                yield
        else:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.commit()
