"""Snapshot queries: save (or record a cheap repeat), latest, one, history."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlite_utils

from collectors.evidence import Evidence, canonical_json
from daemon.errors import NotFound
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot, SourceState, clock_derived, rfc3339
from daemon.store._util import dumps as _dumps
from daemon.store._util import parse_time as _time


class SnapshotQueries:
    db: sqlite_utils.Database

    # --- writing ---------------------------------------------------------------------

    def save_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """Store a snapshot atomically; returns it with its ``id``.

        When it equals the project's latest snapshot, only the time it was seen
        again is recorded, and the latest snapshot is returned with that time.
        """
        content_hash = snapshot.content_hash()
        seen_at = rfc3339(snapshot.taken_at)
        with self.db.atomic():
            row = self._latest_row(snapshot.project)
            if row is not None and row["content_hash"] == content_hash and row["taken_at"] <= seen_at:
                self.db.execute(
                    "INSERT OR IGNORE INTO snapshot_repeats (snapshot_id, seen_at) VALUES (?, ?)", [row["id"], seen_at]
                )
                self._refresh_clock_values(int(row["id"]), snapshot)
                return snapshot.model_copy(update={"id": row["id"], "taken_at": _time(row["taken_at"]), "last_seen_at": snapshot.taken_at})
            snapshot_id = self._insert(snapshot, content_hash)
        return snapshot.model_copy(update={"id": snapshot_id})

    def _insert(self, snapshot: Snapshot, content_hash: str) -> int:
        cursor = self.db.execute(
            "INSERT INTO snapshots (project, taken_at, rules_hash, complete, overall, content_hash, origin, sources)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                snapshot.project,
                rfc3339(snapshot.taken_at),
                snapshot.rules_hash,
                int(snapshot.complete),
                snapshot.overall,
                content_hash,
                snapshot.origin,
                _dumps([s.model_dump(mode="json") for s in snapshot.sources]),
            ],
        )
        snapshot_id = int(cursor.lastrowid or 0)
        self.db.conn.executemany(
            "INSERT INTO pillar_scores VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[snapshot_id, p.id, position, p.title, p.weight, p.score, p.coverage]
             for position, p in enumerate(snapshot.pillars)])
        saved: dict[int, str] = {}  # id(evidence) -> its hash: a fact several criteria read is written once
        rows = []
        for pillar in snapshot.pillars:
            for cpos, c in enumerate(pillar.criteria):
                hashes = [saved.get(id(e)) or saved.setdefault(id(e), self._save_evidence(e)) for e in c.evidence]
                rows.append([
                    snapshot_id, pillar.id, c.id, cpos, c.title, c.weight, c.score, c.status, c.reason,
                    rfc3339(c.scored_at) if c.scored_at else None,
                    _dumps([k.model_dump(mode="json") for k in c.checks]),
                    _dumps(hashes),
                ])
        self.db.conn.executemany("INSERT INTO criterion_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return snapshot_id

    def _refresh_clock_values(self, snapshot_id: int, seen: Snapshot) -> None:
        """Bring the latest snapshot's clock-derived values (ages) to those of a repeat of it.

        The state is the same (equal content hashes), so only the criteria that
        read such values change: their checks and evidence are replaced, and the
        evidence rows they no longer list go when nothing else lists them.
        """
        replaced: list[str] = []
        for pillar in seen.pillars:
            for c in pillar.criteria:
                if not clock_derived(c):
                    continue
                stored = self.db.execute(
                    "SELECT evidence FROM criterion_scores WHERE snapshot_id = ? AND pillar = ? AND criterion = ?",
                    [snapshot_id, pillar.id, c.id],
                ).fetchone()
                hashes = [self._save_evidence(e) for e in c.evidence]
                if stored is None or json.loads(stored[0]) == hashes:
                    continue
                replaced += json.loads(stored[0])
                self.db.execute(
                    "UPDATE criterion_scores SET checks = ?, evidence = ? WHERE snapshot_id = ? AND pillar = ? AND criterion = ?",
                    [_dumps([k.model_dump(mode="json") for k in c.checks]), _dumps(hashes), snapshot_id, pillar.id, c.id],
                )
        if replaced:
            self._collect_evidence(sorted(set(replaced)))  # type: ignore[attr-defined]

    def _save_evidence(self, evidence: Evidence) -> str:
        body = evidence.model_dump(mode="json")
        # Evidence.content_hash(), from the one dump: the body without the time it was observed.
        digest = hashlib.sha256(canonical_json({k: v for k, v in body.items() if k != "observed_at"}).encode()).hexdigest()[:32]
        self.db.execute(
            "INSERT OR IGNORE INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                digest, evidence.source, evidence.signal, _dumps(body["params"]),
                _dumps(body["value"]) if body["value"] is not None else None,
                _dumps(body["error"]) if body["error"] is not None else None,
                _dumps(body["provenance"]), body["observed_at"],
            ],
        )
        return digest

    # --- reading ---------------------------------------------------------------------

    def projects(self) -> list[str]:
        return [r["project"] for r in self.db.query("SELECT DISTINCT project FROM snapshots ORDER BY project")]

    def latest(self, project: str) -> Snapshot | None:
        row = self._latest_row(project)
        return self._load(row) if row else None

    def get(self, snapshot_id: int) -> Snapshot:
        rows = list(self.db.query("SELECT * FROM snapshots WHERE id = ?", [snapshot_id]))
        if not rows:
            raise NotFound(f"no snapshot {snapshot_id}")
        return self._load(rows[0])

    def previous(self, snapshot: Snapshot) -> Snapshot | None:
        """The snapshot of the same project stored just before this one."""
        rows = list(
            self.db.query(
                "SELECT * FROM snapshots WHERE project = ? AND (taken_at, id) < (?, ?) ORDER BY taken_at DESC, id DESC LIMIT 1",
                [snapshot.project, rfc3339(snapshot.taken_at), snapshot.id],
            )
        )
        return self._load(rows[0]) if rows else None

    def history(
        self,
        project: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Snapshot]:
        """Snapshots of a project, oldest first, with pillar scores but without criteria.

        ``limit`` and ``offset`` page from the newest: ``limit=10`` is the last ten.
        """
        where, params = self._history_filter(project, since, until)
        sql = f"SELECT * FROM snapshots WHERE {where} ORDER BY taken_at DESC, id DESC"
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [limit if limit is not None else -1, offset]
        rows = list(self.db.query(sql, params))
        return [self._load(row, with_criteria=False) for row in reversed(rows)]

    def count_history(self, project: str, *, since: datetime | None = None, until: datetime | None = None) -> int:
        where, params = self._history_filter(project, since, until)
        return int(self.db.execute(f"SELECT count(*) FROM snapshots WHERE {where}", params).fetchone()[0])

    @staticmethod
    def _history_filter(project: str, since: datetime | None, until: datetime | None) -> tuple[str, list[Any]]:
        where, params = "project = ?", [project]
        if since is not None:
            where += " AND taken_at >= ?"
            params.append(rfc3339(since))
        if until is not None:
            where += " AND taken_at <= ?"
            params.append(rfc3339(until))
        return where, params

    def save_imported(self, snapshot: Snapshot, *, content_hash: str, path: str, commit: str | None,
                      verification: dict[str, Any], now: datetime) -> Snapshot | None:
        """Store an imported snapshot with where it came from; None when that document was imported before."""
        with self.db.atomic():
            known = self.db.execute(
                "SELECT 1 FROM imported_documents WHERE project = :p AND content_hash = :h"
                " UNION ALL SELECT 1 FROM pruned_origins WHERE project = :p AND origin = 'imported' AND key = :h",
                {"p": snapshot.project, "h": content_hash},
            ).fetchone()
            if known:
                return None
            snapshot_id = self._insert(snapshot, snapshot.content_hash())
            self.db.execute(
                "INSERT INTO imported_documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                [snapshot_id, snapshot.project, content_hash, path, commit, rfc3339(now), _dumps(verification)],
            )
        return snapshot.model_copy(update={"id": snapshot_id})

    def imported_documents(self, project: str) -> list[dict[str, Any]]:
        """Every imported document of a project, oldest snapshot first, with its verification."""
        rows = self.db.query(
            "SELECT d.*, s.taken_at FROM imported_documents d JOIN snapshots s ON s.id = d.snapshot_id"
            " WHERE d.project = ? ORDER BY s.taken_at, d.snapshot_id", [project])
        return [{**row, "verification": json.loads(row["verification"])} for row in rows]

    def criterion_points(self, project: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Every stored criterion score of a project, oldest snapshot first, beside its snapshot's time,
        origin, rules hash and sources, and the document an imported one came from.

        With ``limit``, only the latest ``limit`` snapshots, and every imported one.
        """
        where, params = "s.project = :p", {"p": project, "n": limit}
        if limit is not None:
            where += (" AND (s.origin = 'imported' OR s.id IN"
                      " (SELECT id FROM snapshots WHERE project = :p ORDER BY taken_at DESC, id DESC LIMIT :n))")
        rows = self.db.query(
            "SELECT s.id AS snapshot, s.taken_at, s.origin, s.rules_hash, s.sources, c.pillar, c.criterion, c.score,"
            " c.status, c.checks, d.path AS document, d.git_commit AS document_commit"
            " FROM snapshots s JOIN criterion_scores c ON c.snapshot_id = s.id"
            " LEFT JOIN imported_documents d ON d.snapshot_id = s.id"
            f" WHERE {where} ORDER BY s.taken_at, s.id, c.pillar, c.position", params)
        # A snapshot's time and sources are the same on each of its rows: parsed once per snapshot.
        shared: dict[int, tuple[datetime, Any]] = {}
        points = []
        for row in rows:
            taken_at, sources = shared.get(row["snapshot"]) or shared.setdefault(
                row["snapshot"], (_time(row["taken_at"]), json.loads(row["sources"])))
            points.append({**row, "taken_at": taken_at, "sources": sources, "checks": json.loads(row["checks"])})
        return points

    def backfilled_commits(self, project: str, source: str) -> set[str]:
        """The commits of a git source that backfilled snapshots of a project were scored at (kept or pruned)."""
        rows = self.db.query(
            "SELECT json_extract(value, '$.fingerprint') AS sha FROM snapshots, json_each(snapshots.sources)"
            " WHERE project = :p AND origin = 'backfilled' AND json_extract(value, '$.id') = :s"
            " UNION SELECT key FROM pruned_origins WHERE project = :p AND origin = 'backfilled' AND source = :s",
            {"p": project, "s": source},
        )
        return {row["sha"] for row in rows if row["sha"]}

    def _latest_row(self, project: str) -> dict[str, Any] | None:
        rows = list(
            self.db.query(
                "SELECT * FROM snapshots WHERE project = ? ORDER BY taken_at DESC, id DESC LIMIT 1", [project]
            )
        )
        return rows[0] if rows else None

    def _load(self, row: dict[str, Any], *, with_criteria: bool = True) -> Snapshot:
        sid = row["id"]
        last_seen = self.db.execute("SELECT max(seen_at) FROM snapshot_repeats WHERE snapshot_id = ?", [sid]).fetchone()[0]
        criteria: dict[str, list[CriterionScore]] = {}
        if with_criteria:
            rows = self.db.execute(
                "SELECT pillar, criterion, title, weight, score, status, reason, scored_at, checks, evidence"
                " FROM criterion_scores WHERE snapshot_id = ? ORDER BY pillar, position", [sid]).fetchall()
            evidence = self._snapshot_evidence(sid)
            for pillar, criterion, title, weight, score, status, reason, scored_at, checks, hashes in rows:
                criteria.setdefault(pillar, []).append(
                    CriterionScore(
                        id=criterion, title=title, weight=weight, score=score, status=status, reason=reason,
                        scored_at=_time(scored_at) if scored_at else None, checks=json.loads(checks),
                        evidence=[evidence[h] for h in json.loads(hashes) if h in evidence],
                    )
                )
        pillars = [
            PillarScore(
                id=p["pillar"], title=p["title"], weight=p["weight"], score=p["score"], coverage=p["coverage"],
                criteria=criteria.get(p["pillar"], []),
            )
            for p in self.db.query("SELECT * FROM pillar_scores WHERE snapshot_id = ? ORDER BY position", [sid])
        ]
        return Snapshot(
            id=sid,
            project=row["project"],
            taken_at=_time(row["taken_at"]),
            last_seen_at=_time(last_seen) if last_seen else None,
            rules_hash=row["rules_hash"],
            complete=bool(row["complete"]),
            overall=row["overall"],
            pillars=pillars,
            sources=[SourceState.model_validate(s) for s in json.loads(row["sources"])],
            origin=row["origin"],
        )

    def _snapshot_evidence(self, snapshot_id: int) -> dict[str, Evidence]:
        """Every fact the snapshot's criteria name, by hash: one query, however many criteria."""
        found: dict[str, Evidence] = {}
        for digest, source, signal, params, value, error, provenance, observed_at in self.db.execute(
            "SELECT hash, source, signal, params, value, error, provenance, observed_at FROM evidence"
            " WHERE hash IN (SELECT j.value FROM criterion_scores AS c, json_each(c.evidence) AS j"
            " WHERE c.snapshot_id = ?)", [snapshot_id]):
            found[digest] = Evidence(
                source=source, signal=signal, params=json.loads(params),
                value=json.loads(value) if value else None,
                error=json.loads(error) if error else None,
                provenance=json.loads(provenance), observed_at=_time(observed_at),
            )
        return found

