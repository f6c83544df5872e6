"""`pillarwatch backfill` over a temporary repository with a known history."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.support.cli import pillarwatch
from tests.support.git import GitRepo

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def known_history(tmp_path: Path) -> tuple[Path, list[str]]:
    """Nine commits a day apart: tests/test_x.py added at commit 3 and removed at 7; STATUS.md declares a score."""
    repo = GitRepo(tmp_path / "repo")
    shas = []
    for n in range(1, 10):
        if n == 3:
            repo.write("tests/test_x.py", "def test_x(): pass\n")
        if n == 7:
            repo.remove("tests/test_x.py")
        repo.write("docs/STATUS.md", f"Replay compatibility: 0.{n}\n")
        shas.append(repo.commit(f"commit {n}", when=T0 + timedelta(days=n)))
    config = {
        "store": "pw.db",
        "projects": [{
            "id": "svc",
            "sources": [
                {"id": "repo", "kind": "git", "path": "repo"},
                {"id": "status", "kind": "doc", "git": "repo", "path": "docs/STATUS.md"},
                {"id": "live", "kind": "http", "url": "http://127.0.0.1:9/health"},
            ],
            "pillars": [{"id": "durability", "title": "Durability", "criteria": [
                {"id": "x", "title": "X tested", "checks": [{"source": "repo", "signal": "file_exists", "path": "tests/test_x.py"}]},
                {"id": "replay", "title": "Replay compatibility", "checks": [{"source": "status", "signal": "declared_score"}]},
                {"id": "up", "title": "Service answers", "checks": [{"source": "live", "signal": "status"}]},
            ]}],
        }],
    }
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path, shas


def test_backfill_shows_the_rise_and_the_fall_at_the_right_commit_times(known_history):
    root, shas = known_history
    proc = pillarwatch(root, "backfill", "--since", "2026-01-01", "--json")
    assert proc.returncode == 0, proc.stderr
    (report,) = json.loads(proc.stdout)
    assert (report["commits"], report["added"], report["skipped"]) == (9, 9, 0)

    db = sqlite3.connect(root / "pw.db")
    rows = db.execute("SELECT id, taken_at, origin, complete FROM snapshots ORDER BY taken_at").fetchall()
    assert [r[1] for r in rows] == [(T0 + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ") for n in range(1, 10)]
    assert {r[2] for r in rows} == {"backfilled"}
    assert all(r[3] == 1 for r in rows)  # the live endpoint cannot be asked about the past: not a missing source
    scores = {
        (sid, crit): (score, status)
        for sid, crit, score, status in db.execute("SELECT snapshot_id, criterion, score, status FROM criterion_scores")
    }
    ids = [r[0] for r in rows]
    assert [scores[(i, "x")][0] for i in ids] == [0, 0, 1, 1, 1, 1, 0, 0, 0]
    # The document inside the repository was read at each commit.
    assert [scores[(i, "replay")][0] for i in ids] == pytest.approx([n / 10 for n in range(1, 10)])
    assert {scores[(i, "up")][1] for i in ids} == {"unknown"}
    # Evidence names the commit it was read at.
    provenance = db.execute(
        "SELECT e.provenance FROM criterion_scores c, json_each(c.evidence) j JOIN evidence e ON e.hash = j.value"
        " WHERE c.snapshot_id = ? AND c.criterion = 'x'", [ids[2]]).fetchone()[0]
    assert json.loads(provenance)["commit"] == shas[2]

    history = json.loads(pillarwatch(root, "history", "--json").stdout)
    assert [p["pillars"]["durability"] for p in history["points"]] == pytest.approx(
        [(s + n / 10) / 2 * 100 for s, n in zip([0, 0, 1, 1, 1, 1, 0, 0, 0], range(1, 10))])

    again = json.loads(pillarwatch(root, "backfill", "--since", "2026-01-01", "--json").stdout)
    assert (again[0]["added"], again[0]["skipped"]) == (0, 9)
    assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 9


def test_backfill_by_commit_count_then_a_collection_stays_the_latest(known_history):
    root, _ = known_history
    (report,) = json.loads(pillarwatch(root, "backfill", "--commits", "3", "--json").stdout)
    assert (report["commits"], report["added"]) == (3, 3)
    assert pillarwatch(root, "collect").returncode == 0
    latest = json.loads(pillarwatch(root, "status", "--json").stdout)
    assert latest["origin"] == "collected"
    (report,) = json.loads(pillarwatch(root, "backfill", "--commits", "5", "--json").stdout)
    assert (report["added"], report["skipped"]) == (2, 3)


def test_backfill_needs_a_range_and_a_git_source(known_history):
    root, _ = known_history
    proc = pillarwatch(root, "backfill")
    assert proc.returncode == 2 and "--since DATE or --commits N" in proc.stderr
    proc = pillarwatch(root, "backfill", "--commits", "2", "--source", "live")
    assert proc.returncode == 2 and "no git source 'live'" in proc.stderr


MONTHLY = {"keep_all": "1d", "daily_for": "1d", "weekly_for": "1d", "backfilled": "tiers"}  # then the latest of each month


def test_backfilled_history_is_kept_by_retention_unless_told_to_thin_it(known_history):
    root, _shas = known_history
    assert json.loads(pillarwatch(root, "backfill", "--since", "2026-01-01", "--json").stdout)[0]["added"] == 9
    # Older than 90 days: the default tiers alone would keep the latest of each week.
    from daemon.service import Daemon
    from daemon.store import Store

    daemon = Daemon(root / "pw.yaml")
    daemon.store = Store.open(root / "pw.db")
    try:
        daemon._prune_job()  # the daemon's daily prune
    finally:
        daemon.store.close()
    pruned = json.loads(pillarwatch(root, "prune", "--json").stdout)["projects"][0]
    assert (pruned["kept"], pruned["removed"]) == (9, 0)
    db = sqlite3.connect(root / "pw.db")
    assert db.execute("SELECT count(*) FROM snapshots WHERE origin = 'backfilled'").fetchone()[0] == 9

    config = yaml.safe_load((root / "pw.yaml").read_text())
    (root / "pw.yaml").write_text(yaml.safe_dump({**config, "retention": {"backfilled": "tiers"}}, sort_keys=False))
    pruned = json.loads(pillarwatch(root, "prune", "--json").stdout)["projects"][0]
    # ISO weeks of January 2026: Fri 2 to Sun 4, then Mon 5 to Sat 10: the latest of each.
    assert (pruned["kept"], pruned["removed"]) == (2, 7)
    kept = [r[0] for r in db.execute("SELECT taken_at FROM snapshots ORDER BY taken_at")]
    assert kept == ["2026-01-04T09:00:00Z", "2026-01-10T09:00:00Z"]


def test_what_retention_removed_a_second_backfill_does_not_bring_back(known_history):
    root, shas = known_history
    config = yaml.safe_load((root / "pw.yaml").read_text())
    (root / "pw.yaml").write_text(yaml.safe_dump({**config, "retention": MONTHLY}, sort_keys=False))
    assert json.loads(pillarwatch(root, "backfill", "--since", "2026-01-01", "--json").stdout)[0]["added"] == 9
    pruned = json.loads(pillarwatch(root, "prune", "--json").stdout)["projects"][0]
    assert (pruned["kept"], pruned["removed"]) == (1, 8)  # January's latest

    (again,) = json.loads(pillarwatch(root, "backfill", "--since", "2026-01-01", "--json").stdout)
    assert (again["added"], again["skipped"]) == (0, 9)
    db = sqlite3.connect(root / "pw.db")
    assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1
    assert {r[0] for r in db.execute("SELECT key FROM pruned_origins WHERE source = 'repo'")} == set(shas[:8])


@pytest.mark.parametrize(("since", "found"), [("1971-05-01", 1), ("1970-01-01", 2), ("1965-01-01", 2)])
def test_backfill_since_a_date_before_1973_finds_the_commits_after_it(tmp_path: Path, since: str, found: int):
    # git reads a bare number under 100000000 (1973-03-03) as something other than seconds since 1970.
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "one\n")
    repo.commit("early", when=datetime(1971, 2, 1, tzinfo=timezone.utc))
    repo.write("README.md", "two\n")
    repo.commit("later", when=datetime(1971, 8, 1, tzinfo=timezone.utc))
    config = {"store": "pw.db", "projects": [{
        "id": "svc", "sources": [{"id": "repo", "kind": "git", "path": "repo"}],
        "pillars": [{"id": "docs", "title": "Docs", "criteria": [
            {"id": "readme", "title": "README", "checks": [{"source": "repo", "signal": "file_exists", "path": "README.md"}]}]}],
    }]}
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = pillarwatch(tmp_path, "backfill", "--since", since, "--json")
    assert proc.returncode == 0, proc.stderr
    (report,) = json.loads(proc.stdout)
    assert (report["commits"], report["added"]) == (found, found)
    db = sqlite3.connect(tmp_path / "pw.db")
    taken = [r[0] for r in db.execute("SELECT taken_at FROM snapshots ORDER BY taken_at")]
    assert taken == ["1971-02-01T00:00:00Z", "1971-08-01T00:00:00Z"][2 - found:]


def test_the_commit_before_a_date_before_1973_is_found(git_repo: GitRepo, tmp_path: Path):
    from collectors import git_history
    from collectors.git import GitSource

    early = git_repo.commit("early", when=datetime(1971, 2, 1, tzinfo=timezone.utc))
    later = git_repo.commit("later", when=datetime(1971, 8, 1, tzinfo=timezone.utc))
    source = GitSource(id="repo", path=str(git_repo.path))
    before = lambda *when: git_history.commit_before(source, datetime(*when, tzinfo=timezone.utc), cache_dir=tmp_path / "cache")  # noqa: E731
    assert before(1971, 5, 1) == early
    assert before(1971, 8, 1) == later
    assert before(1971, 1, 1) is None
    assert before(1969, 1, 1) is None
