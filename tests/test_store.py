"""The store on a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from collectors.evidence import Evidence
from daemon.errors import NotFound, StoreError
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot, SourceState
from daemon.store import SCHEMA_VERSION, Store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


def make_snapshot(score: float = 0.5, at: datetime = T0, project: str = "p") -> Snapshot:
    ev = Evidence(
        source="repo", signal="file_exists", params={"path": "README.md"},
        value={"exists": score > 0}, provenance={"commit": "a" * 40, "path": "README.md"}, observed_at=at,
    )
    crit = CriterionScore(id="c", title="C", score=score, status="ok", evidence=[ev],
                          checks=[{"source": "repo", "signal": "file_exists", "params": {"path": "README.md"}, "field": "exists", "transform": "bool", "score": score}])
    return Snapshot(
        project=project, taken_at=at, rules_hash="r1", complete=True, overall=score * 100,
        pillars=[PillarScore(id="a", title="A", score=score * 100, coverage=1.0, criteria=[crit])],
        sources=[SourceState(id="repo", kind="git", answered=True, fingerprint="a" * 40)],
    )


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "db" / "pw.db") as s:
        yield s


def test_round_trip_keeps_full_precision_and_evidence(store):
    saved = store.save_snapshot(make_snapshot(score=2 / 3))
    loaded = store.latest("p")
    assert loaded.id == saved.id
    assert loaded.overall == 2 / 3 * 100
    assert loaded.pillars[0].criteria[0].score == 2 / 3
    ev = loaded.pillars[0].criteria[0].evidence[0]
    assert ev.provenance.commit == "a" * 40 and ev.value == {"exists": True}
    assert loaded.taken_at == T0


def test_equal_snapshot_is_a_cheap_repeat(store):
    first = store.save_snapshot(make_snapshot())
    again = store.save_snapshot(make_snapshot(at=T0 + timedelta(minutes=15)))
    assert again.id == first.id
    assert again.last_seen_at == T0 + timedelta(minutes=15)
    rows = store.db.execute("SELECT count(*) FROM snapshots").fetchone()[0]
    assert rows == 1
    assert store.db.execute("SELECT count(*) FROM snapshot_repeats").fetchone()[0] == 1
    latest = store.latest("p")
    assert latest.taken_at == T0 and latest.last_seen_at == T0 + timedelta(minutes=15)


def test_changed_snapshot_is_a_new_row_and_evidence_is_shared(store):
    store.save_snapshot(make_snapshot(0.5))
    store.save_snapshot(make_snapshot(0.5, at=T0 + timedelta(hours=1)))
    changed = store.save_snapshot(make_snapshot(0.0, at=T0 + timedelta(hours=2)))
    assert store.latest("p").id == changed.id
    assert [s.overall for s in store.history("p")] == [50.0, 0.0]
    assert store.previous(changed).overall == 50.0
    # Two distinct facts (exists true / false), however often they were observed.
    assert store.db.execute("SELECT count(*) FROM evidence").fetchone()[0] == 2


def test_history_since_and_projects(store):
    for i in range(4):
        store.save_snapshot(make_snapshot(i / 4, at=T0 + timedelta(days=i)))
    store.save_snapshot(make_snapshot(1.0, project="q"))
    assert store.projects() == ["p", "q"]
    since = store.history("p", since=T0 + timedelta(days=2))
    assert [s.overall for s in since] == [50.0, 75.0]
    assert since[0].pillars[0].criteria == []  # history carries pillar figures only


def test_migrations_recorded_and_reopen_is_idempotent(tmp_path):
    path = tmp_path / "pw.db"
    Store.open(path).close()
    with Store.open(path) as again:
        assert again.version == SCHEMA_VERSION
        assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused_with_one_line(tmp_path):
    path = tmp_path / "pw.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this pillarwatch"):
        Store.open(path)


def test_corrupt_database_is_a_store_error(tmp_path):
    path = tmp_path / "pw.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        Store.open(path)


def test_readonly_store_sees_data_and_unknown_id_is_not_found(tmp_path):
    path = tmp_path / "pw.db"
    with Store.open(path) as s:
        saved = s.save_snapshot(make_snapshot())
    with Store.open(path, readonly=True) as ro:
        assert ro.get(saved.id).overall == 50.0
        with pytest.raises(NotFound):
            ro.get(999)
        with pytest.raises(sqlite3.OperationalError):
            ro.db.execute("DELETE FROM snapshots")


def test_failed_write_leaves_nothing_half_written(store):
    bad = make_snapshot()
    bad.pillars.append(bad.pillars[0])  # duplicate pillar id violates the primary key mid-write
    with pytest.raises(sqlite3.IntegrityError):
        store.save_snapshot(bad)
    assert store.db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0
    assert store.db.execute("SELECT count(*) FROM criterion_scores").fetchone()[0] == 0


def test_a_due_time_is_claimed_once_unless_its_run_never_finished(store):
    due = T0
    assert store.claim_run("p", "repo", due, now=T0)
    # The process died mid-run: the claim may be taken again.
    assert store.claim_run("p", "repo", due, now=T0 + timedelta(minutes=1))
    store.record_run("p", "repo", due, outcome="ok", now=T0 + timedelta(minutes=2))
    assert not store.claim_run("p", "repo", due, now=T0 + timedelta(minutes=3))
    assert store.last_due("p", "repo") == due


def test_a_run_left_running_is_interrupted_no_longer_claimed_and_stays_counted(store):
    store.claim_run("p", "repo", T0, now=T0)
    store.record_run("p", "repo", T0, outcome="ok", now=T0)
    later = T0 + timedelta(minutes=10)
    store.claim_run("p", "repo", later, now=later)  # then the daemon dies
    assert store.last_due("p", "repo") == later
    assert store.interrupt_runs(now=later + timedelta(minutes=1)) == [("p", "repo", later)]
    assert store.interrupt_runs(now=later + timedelta(minutes=1)) == []
    assert store.last_due("p", "repo") == T0  # the daemon's start collects `later` again
    assert {(r["project"], r["outcome"], r["n"]) for r in store.run_counts()} == {("p", "ok", 1), ("p", "interrupted", 1)}
    assert store.claim_run("p", "repo", later, now=later + timedelta(minutes=2))
    store.record_run("p", "repo", later, outcome="ok", now=later + timedelta(minutes=3))
    assert {(r["outcome"], r["n"]) for r in store.run_counts()} == {("ok", 2), ("interrupted", 1)}


def test_a_skipped_or_missed_run_is_recorded_but_never_hides_a_real_one(store):
    store.claim_run("p", "repo", T0, now=T0)
    store.record_run("p", "repo", T0, outcome="ok", now=T0)
    later = T0 + timedelta(minutes=15)
    store.record_run("p", "repo", T0, outcome="skipped", now=later)  # does not overwrite the run that happened
    store.record_run("p", "repo", later, outcome="missed", now=later)
    assert [(r["due_at"], r["outcome"]) for r in store.runs("p")] == [
        ("2026-11-20T08:15:00Z", "missed"), ("2026-11-20T08:00:00Z", "ok")]
    # A missed due time does not count as collected, and can still be caught up.
    assert store.last_due("p", "repo") == T0
    assert store.claim_run("p", "repo", later, now=later)


def test_failing_since_starts_at_the_first_failure_and_clears_on_success(store):
    from collectors.evidence import CollectResult, EvidenceError

    failed = CollectResult(source="repo", kind="git", error=EvidenceError(kind="unreachable", message="gone"))
    store.save_result("p", failed, T0)
    store.save_result("p", failed, T0 + timedelta(hours=1))
    assert store.failing_since("p") == {"repo": T0}
    store.save_result("p", CollectResult(source="repo", kind="git", fingerprint="a" * 40), T0 + timedelta(hours=2))
    assert store.failing_since("p") == {}
    assert store.last_success() == T0 + timedelta(hours=2)


def test_a_late_result_for_an_earlier_due_time_never_replaces_a_newer_one(store):
    from collectors.evidence import CollectResult, EvidenceError

    newer, older = T0.replace(minute=46, second=40), T0.replace(minute=42)
    fresh = CollectResult(source="doc", kind="doc", fingerprint="b" * 40)
    store.record_run("p", "doc", newer, outcome="ok", now=newer + timedelta(seconds=1), result=fresh)
    # The job due at 08:42 timed out and reports at 08:46:53, after the 08:46:40 result.
    late = CollectResult(source="doc", kind="doc", error=EvidenceError(kind="timeout", message="git source timed out"))
    store.record_run("p", "doc", older, outcome="error", now=newer + timedelta(seconds=13), result=late,
                     error="git source timed out")
    assert store.latest_results("p") == {"doc": fresh}
    assert store.failing_since("p") == {}
    # The late run itself is recorded, with its outcome.
    assert store.run_outcome("p", "doc", older) == "error"
    assert store.save_result("p", late, newer + timedelta(seconds=20), due_at=older) is False
    # A result due later (or for the same due time) does replace it.
    assert store.save_result("p", late, newer + timedelta(minutes=5), due_at=newer + timedelta(minutes=5)) is True
    assert store.latest_results("p") == {"doc": late}
