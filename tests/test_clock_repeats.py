"""Ages read from the clock change every second; an unchanged state is still a repeat, with its ages refreshed."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from daemon.config.loading import load_config
from daemon.run.runner import run_projects
from daemon.store import Store
from tests.support.cli import pillarwatch
from tests.support.git import GitRepo

COMMITTED = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


def project(tmp_path: Path, transform: object = None) -> Path:
    """A repository whose CHANGELOG.md was last changed at COMMITTED, and a file_age check on it."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("CHANGELOG.md", "# changes\n")
    repo.commit("changelog", when=COMMITTED)
    check = {"source": "repo", "signal": "file_age", "path": "CHANGELOG.md", "field": "exists", "transform": "bool"}
    if transform is not None:
        check = {**check, "field": "days", "transform": transform}
    config = {"store": "pw.db", "projects": [{
        "id": "svc", "sources": [{"id": "repo", "kind": "git", "path": "repo"}],
        "pillars": [{"id": "docs", "title": "Docs", "criteria": [
            {"id": "changelog", "title": "Changelog kept", "checks": [check]}]}],
    }]}
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path


def days_shown(root: Path) -> float:
    status = json.loads(pillarwatch(root, "status", "--json").stdout)
    (criterion,) = status["pillars"][0]["criteria"]
    (evidence,) = criterion["evidence"]
    assert criterion["checks"][0]["signal"] == "file_age"
    return float(evidence["value"]["days"])


def test_two_collections_seconds_apart_store_one_snapshot_and_a_repeat_with_fresh_ages(tmp_path: Path):
    root = project(tmp_path)
    assert pillarwatch(root, "collect").returncode == 0
    first = days_shown(root)
    time.sleep(1.5)
    proc = pillarwatch(root, "collect")
    assert proc.returncode == 0, proc.stderr
    db = sqlite3.connect(root / "pw.db")
    assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM snapshot_repeats").fetchone()[0] == 1
    # The latest snapshot shows the age as of the repeat, not as of its first collection.
    now_days = (datetime.now(timezone.utc) - COMMITTED).total_seconds() / 86400
    assert days_shown(root) - first >= 1.4 / 86400
    assert days_shown(root) == pytest.approx(now_days, abs=30 / 86400)
    # Refreshing the age leaves no evidence row behind that nothing uses.
    assert db.execute("SELECT count(*) FROM evidence WHERE signal = 'file_age'").fetchone()[0] == 1


def test_an_age_that_changes_the_score_is_a_new_snapshot(tmp_path: Path):
    root = project(tmp_path, transform={"fresh_within_days": [0, 400]})
    config = load_config(root / "pw.yaml")
    start = COMMITTED + timedelta(days=30)
    with Store.open(config.store_path) as store:
        first = run_projects(config, config.projects, store=store, now=start)[0]
        second = run_projects(config, config.projects, store=store, now=start + timedelta(seconds=5))[0]
        third = run_projects(config, config.projects, store=store, now=start + timedelta(days=1))[0]
    assert first.overall != second.overall != third.overall
    assert len({first.id, second.id, third.id}) == 3


def test_an_unchanged_score_over_a_day_is_still_a_repeat(tmp_path: Path):
    root = project(tmp_path, transform={"fresh_within_days": [90, 400]})  # 30 and 31 days old: both fully fresh
    config = load_config(root / "pw.yaml")
    start = COMMITTED + timedelta(days=30)
    with Store.open(config.store_path) as store:
        first = run_projects(config, config.projects, store=store, now=start)[0]
        again = run_projects(config, config.projects, store=store, now=start + timedelta(days=1))[0]
        latest = store.latest("svc")
    assert again.id == first.id and latest is not None and latest.last_seen_at == start + timedelta(days=1)
    (check,) = latest.pillars[0].criteria[0].checks
    assert check.value == pytest.approx(31.0)
    assert latest.pillars[0].criteria[0].evidence[0].value["days"] == pytest.approx(31.0)
