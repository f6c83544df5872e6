"""A database of several snapshots built by real collections over the commits of a real git repository.

Two projects share one repository: ``shop`` (pillars ``durability`` and ``dx``,
five criteria, one declared in a status document) and ``billing`` (one pillar).
Five collections, a day apart (08:00 UTC from 2026-11-01), give ``shop``:

    day           0      1      2          3      4
    durability   40.0   83.3   (repeat)   50.0   96.7
    dx            0.0   50.0   (repeat)   50.0  100.0
    overall      20.0   66.7   (repeat)   50.0   98.3

Day 2 changes nothing, so it is a cheap repeat of day 1 (four snapshot rows;
day 1's row has ``last_seen_at`` day 2). Day 3 deletes tests/test_restart.py.
``billing`` goes 0 → 100 on day 1 and stays (a row per new commit: four).
Compare figures with pytest.approx.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from daemon.config.loading import load_config
from daemon.config.model import Config
from daemon.run.runner import run_projects
from daemon.store import Store
from tests.support.git import GitRepo

DAY0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)
SHOP_OVERALL = [20.0, 200 / 3, 50.0, 59 / 0.6]  # per stored row, oldest first


@dataclass
class History:
    config_path: Path
    config: Config
    repo: GitRepo
    shas: list[str]  # the commit each collection saw, day by day

    @property
    def db(self) -> Path:
        return self.config.store_path


def _config(repo: Path) -> dict:
    def exists(path: str) -> dict:
        return {"source": "repo", "signal": "file_exists", "path": path}

    return {
        "version": 1,
        "store": "history.db",
        "display": {"decimals": 1},
        "projects": [
            {
                "id": "shop",
                "title": "Shop service",
                "sources": [
                    {"id": "repo", "kind": "git", "path": str(repo)},
                    {"id": "status", "kind": "doc", "git": "repo", "path": "docs/STATUS.md"},
                ],
                "pillars": [
                    {"id": "durability", "title": "Durability", "below": 60, "criteria": [
                        {"id": "restart", "title": "Survive restart", "checks": [exists("tests/test_restart.py")]},
                        {"id": "retry", "title": "Retry covered", "checks": [exists("tests/test_retry.py")]},
                        {"id": "replay", "title": "Replay compatibility", "checks": [{"source": "status", "signal": "declared_score"}]},
                    ]},
                    {"id": "dx", "title": "Developer experience", "criteria": [
                        {"id": "readme", "title": "README", "checks": [exists("README.md")]},
                        {"id": "ci", "title": "CI script", "checks": [exists(".ci/run")]},
                    ]},
                ],
            },
            {
                "id": "billing",
                "sources": [{"id": "repo", "kind": "git", "path": str(repo)}],
                "pillars": [{"id": "ledger", "title": "Ledger", "criteria": [
                    {"id": "ledger-tests", "title": "Ledger tests", "checks": [exists("tests/test_ledger.py")]},
                ]}],
            },
        ],
    }


def build_history(tmp_path: Path) -> History:
    """Collect five times over five commits; returns where everything is."""
    repo = GitRepo(tmp_path / "repo")
    config_path = tmp_path / "pillarwatch.yaml"
    config_path.write_text(yaml.safe_dump(_config(repo.path), sort_keys=False))
    config = load_config(config_path)
    steps = [
        {"tests/test_restart.py": "def test_restart(): pass\n", "docs/STATUS.md": "Replay compatibility: 0.2\n"},
        {"tests/test_retry.py": "def test_retry(): pass\n", "README.md": "# shop\n", "tests/test_ledger.py": "x\n",
         "docs/STATUS.md": "Replay compatibility: 0.5\n"},
        {},  # nothing changes: a cheap repeat
        {"-tests/test_restart.py": "", "docs/STATUS.md": "Replay compatibility: 0.5\n"},
        {"tests/test_restart.py": "def test_restart(): pass\n", ".ci/run": "#!/bin/sh\npytest\n",
         "docs/STATUS.md": "Replay compatibility: 0.9\n"},
    ]
    shas = []
    with Store.open(config.store_path) as store:
        for day, changes in enumerate(steps):
            when = DAY0 + timedelta(days=day)
            for path, text in changes.items():
                if path.startswith("-"):
                    repo.remove(path[1:])
                else:
                    repo.write(path, text)
            if changes:
                shas.append(repo.commit(f"day {day}", when=when - timedelta(hours=1)))
            else:
                shas.append(shas[-1])
            run_projects(config, config.projects, store=store, now=when)
    return History(config_path=config_path, config=config, repo=repo, shas=shas)
