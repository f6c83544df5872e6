"""Stored snapshots made without collecting: many projects for the index, months of history for the charts.

A real configuration file and a real SQLite database written through the
real :class:`~daemon.store.Store`; only the collection is skipped, because
the dashboard reads what is stored, whatever made it.

``build_fleet`` configures ``count`` projects ``p000``… (every tenth titled
"Payments …", the others "Service …"), each with two pillars; every project
but the last has five snapshots an hour apart. Project *i*:

- latest overall ``overall_of(i)``; the snapshots before it climb to it;
- latest snapshot partial when ``i % 7 == 0``;
- two stale criteria when ``i % 5 == 0``, one unknown when ``i % 9 == 0``;
- a firing alert when ``i % 11 == 0``, a pending one when ``i % 13 == 0``;
- last collected ``i`` minutes before ``NOW``.

``build_long_history`` gives one project, ``long``, a snapshot a day (08:00)
for ``days`` days, backfilled, then one every 15 minutes today from 00:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from daemon.alerting.rules import Alert
from daemon.config.loading import load_config
from daemon.config.model import Config
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot
from daemon.store import Store

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=timezone.utc)
TODAY = NOW.replace(hour=0, minute=0)
PILLARS = (("durability", "Durability"), ("dx", "Developer experience"))


@dataclass
class Fleet:
    config_path: Path
    config: Config

    @property
    def db(self) -> Path:
        return self.config.store_path


def project_id(i: int) -> str:
    return f"p{i:03d}"


def title_of(i: int) -> str:
    return f"Payments {i:03d}" if i % 10 == 0 else f"Service {i:03d}"


def overall_of(i: int) -> float:
    return float((i * 37) % 101)


def _config(tmp_path: Path, projects: list[tuple[str, str]]) -> Fleet:
    raw = {"version": 1, "store": "fleet.db", "projects": [{
        "id": pid, "title": title,
        "sources": [{"id": "repo", "kind": "git", "path": str(tmp_path / "none")}],
        "pillars": [{"id": p, "title": t, "criteria": [
            {"id": f"c{n}", "title": f"{t} {n}", "checks": [{"source": "repo", "signal": "file_exists", "path": f"f{n}"}]}
            for n in range(2)]} for p, t in PILLARS],
    } for pid, title in projects]}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return Fleet(config_path=path, config=load_config(path))


def snapshot(project: str, at: datetime, overall: float, *, complete: bool = True, stale: int = 0, unknown: int = 0,
             origin: str = "collected") -> Snapshot:
    """Two pillars at ``overall`` ± 10 (their mean is ``overall``); the first criteria stale or unknown as asked."""
    statuses = ["stale"] * stale + ["unknown"] * unknown
    pillars = []
    for n, ((pid, title), score) in enumerate(zip(PILLARS, (overall - 10, overall + 10))):
        criteria = [CriterionScore(id=f"c{k}", title=f"{title} {k}", score=score / 100,
                                   status=statuses[n * 2 + k] if n * 2 + k < len(statuses) else "ok")
                    for k in range(2)]
        pillars.append(PillarScore(id=pid, title=title, score=score, coverage=1.0, criteria=criteria))
    return Snapshot(project=project, taken_at=at, rules_hash="fleet", complete=complete, overall=overall,
                    pillars=pillars, origin=origin)  # type: ignore[arg-type]


def build_fleet(tmp_path: Path, count: int = 120) -> Fleet:
    fleet = _config(tmp_path, [(project_id(i), title_of(i)) for i in range(count)])
    with Store.open(fleet.db) as store:
        for i in range(count - 1):
            pid, latest = project_id(i), NOW - timedelta(minutes=i)
            for back in range(4, -1, -1):
                at = latest - timedelta(hours=back)
                figure = max(0.0, overall_of(i) - 5 * back)
                if back:
                    store.save_snapshot(snapshot(pid, at, figure + 0.001 * back))  # never equal: no repeat
                else:
                    store.save_snapshot(snapshot(pid, at, figure, complete=i % 7 != 0, stale=2 * (i % 5 == 0),
                                                 unknown=int(i % 9 == 0)))
            alerts = [("firing", "pillar:durability")] * (i % 11 == 0) + [("pending", "overall")] * (i % 13 == 0)
            store.save_alerts([Alert(project=pid, subject=subject, kind="regression", state=state, baseline=90.0,
                                     value=overall_of(i), started_at=latest) for state, subject in alerts])
    return fleet


def build_long_history(tmp_path: Path, *, days: int = 120, today: int = 60) -> Fleet:
    """A daily backfill over ``days`` days, then ``today`` collections 15 minutes apart from midnight."""
    fleet = _config(tmp_path, [("long", "Long history")])
    with Store.open(fleet.db) as store:
        for day in range(days, 0, -1):
            at = TODAY - timedelta(days=day) + timedelta(hours=8)
            store.save_snapshot(snapshot("long", at, 20 + 40 * (days - day) / days, origin="backfilled"))
        for n in range(today):
            store.save_snapshot(snapshot("long", TODAY + timedelta(minutes=15 * n), 60 + (n % 8) * 4))
    return fleet
