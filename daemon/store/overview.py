"""The dashboard's reads: every project's latest state at once, and a project's series of figures.

The index shows a hundred projects or more; reading each one's latest
snapshot with its criteria (``Store.latest``) would be a few queries per
project. :meth:`OverviewQueries.overview` answers for all of them in five
queries, whatever their number; :meth:`OverviewQueries.series` reads a
project's figures (overall and per pillar, no criteria) over a time range in
three, whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlite_utils

from daemon.scoring.snapshot import rfc3339
from daemon.store._util import dumps as _dumps
from daemon.store._util import parse_time as _time


@dataclass
class LatestState:
    """A project's latest snapshot in figures, and the overall figure of its recent snapshots."""

    project: str
    snapshot: int
    taken_at: datetime
    last_seen_at: datetime | None
    complete: bool
    overall: float | None
    recent: list[float | None]  # overall of the latest snapshots, oldest first (this one last)
    pillars: list[tuple[str, str, float | None]] = field(default_factory=list)  # (id, title, score)
    stale: int = 0  # criteria scored from evidence that could not be collected again
    unknown: int = 0  # criteria whose evidence is too old to score
    firing: int = 0  # open alerts
    pending: int = 0

    @property
    def seen_at(self) -> datetime:
        return self.last_seen_at or self.taken_at


@dataclass(frozen=True)
class SeriesPoint:
    """One snapshot of a series: its time, the last time it was seen again, and its figures."""

    id: int
    taken_at: datetime
    last_seen_at: datetime | None
    complete: bool
    overall: float | None
    pillars: dict[str, float | None]


class OverviewQueries:
    db: sqlite_utils.Database

    def overview(self, projects: Sequence[str], *, recent: int = 30) -> dict[str, LatestState]:
        """The latest state of each of ``projects`` that has a snapshot, with the overall figure of
        its ``recent`` latest snapshots; open alerts are counted for every project."""
        ids = _dumps(list(projects))
        # One index search per project (a correlated subquery with LIMIT), not a scan of every snapshot.
        rows = self.db.execute(
            "SELECT s.id, s.project, s.taken_at, s.complete, s.overall FROM json_each(?) AS p"
            " JOIN snapshots AS s ON s.id IN (SELECT id FROM snapshots WHERE project = p.value"
            " ORDER BY taken_at DESC, id DESC LIMIT ?)"
            " ORDER BY s.project, s.taken_at, s.id", [ids, max(1, recent)]).fetchall()
        states: dict[str, LatestState] = {}
        for sid, project, taken_at, complete, overall in rows:
            known = states.get(project)
            figures = (known.recent if known else []) + [overall]
            states[project] = LatestState(project=project, snapshot=sid, taken_at=_time(taken_at), last_seen_at=None,
                                          complete=bool(complete), overall=overall, recent=figures)
        by_id = {s.snapshot: s for s in states.values()}
        latest = _dumps(list(by_id))
        for sid, pillar, title, score in self.db.execute(
                "SELECT snapshot_id, pillar, title, score FROM pillar_scores"
                " WHERE snapshot_id IN (SELECT value FROM json_each(?)) ORDER BY snapshot_id, position", [latest]):
            by_id[sid].pillars.append((pillar, title, score))
        for sid, stale, unknown in self.db.execute(
                "SELECT snapshot_id, sum(status = 'stale'), sum(status = 'unknown') FROM criterion_scores"
                " WHERE snapshot_id IN (SELECT value FROM json_each(?)) GROUP BY snapshot_id", [latest]):
            by_id[sid].stale, by_id[sid].unknown = int(stale or 0), int(unknown or 0)
        for sid, seen in self.db.execute(
                "SELECT snapshot_id, max(seen_at) FROM snapshot_repeats"
                " WHERE snapshot_id IN (SELECT value FROM json_each(?)) GROUP BY snapshot_id", [latest]):
            by_id[sid].last_seen_at = _time(seen)
        for project, state, count in self.db.execute(
                "SELECT project, state, count(*) FROM alerts WHERE state != 'resolved'"
                " AND project IN (SELECT value FROM json_each(?)) GROUP BY project, state", [ids]):
            if project in states and state in ("firing", "pending"):
                setattr(states[project], state, int(count))
        return states

    def series(self, project: str, *, since: datetime | None = None) -> list[SeriesPoint]:
        """A project's snapshots from ``since`` (all without it), oldest first, with their figures."""
        where, params = "s.project = ?", [project]
        if since is not None:
            where += " AND s.taken_at >= ?"
            params.append(rfc3339(since))
        pillars: dict[int, dict[str, float | None]] = {}
        for sid, pillar, score in self.db.execute(
                f"SELECT p.snapshot_id, p.pillar, p.score FROM snapshots AS s JOIN pillar_scores AS p"
                f" ON p.snapshot_id = s.id WHERE {where} ORDER BY p.snapshot_id, p.position", params):
            pillars.setdefault(sid, {})[pillar] = score
        seen = dict(self.db.execute(
            f"SELECT r.snapshot_id, max(r.seen_at) FROM snapshots AS s JOIN snapshot_repeats AS r"
            f" ON r.snapshot_id = s.id WHERE {where} GROUP BY r.snapshot_id", params).fetchall())
        return [
            SeriesPoint(id=sid, taken_at=_time(taken_at), last_seen_at=_time(seen[sid]) if sid in seen else None,
                        complete=bool(complete), overall=overall, pillars=pillars.get(sid, {}))
            for sid, taken_at, complete, overall in self.db.execute(
                f"SELECT s.id, s.taken_at, s.complete, s.overall FROM snapshots AS s WHERE {where}"
                " ORDER BY s.taken_at, s.id", params)
        ]
