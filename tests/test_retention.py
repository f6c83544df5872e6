"""Retention: the pure plan as tables, the store's deletion, and a year of snapshots pruned by the real CLI."""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.evidence import Evidence
from daemon.alerting.rules import Alert, AlertMessage, OutboxItem
from daemon.config.loading import load_config
from daemon.config.retention import RetentionPolicy, plan
from daemon.errors import ConfigError, StoreError
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot, SourceState
from daemon.store import Store

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday
POLICY = RetentionPolicy(keep_all="2d", daily_for="10d", weekly_for="40d", monthly_for="120d")
# keep_all:  after 11-18T12:00   daily: after 11-10T12:00   weekly: after 10-11T12:00
# monthly:   after 07-23T12:00   expired: at or before 07-23T12:00
LATEST = 100


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the plan, pure ------------------------------------------------------------------------

CASES: list[tuple[str, dict[int, str], set[int], set[int]]] = [
    # (name, {id: taken_at}, protected, kept besides the latest #100 at 11-20T11:00)
    ("keep_all keeps everything", {1: "2026-11-19T01:00", 2: "2026-11-19T01:00:01", 3: "2026-11-18T13:00"}, set(), {1, 2, 3}),
    ("daily: the latest of each UTC day", {1: "2026-11-15T01:00", 2: "2026-11-15T23:59", 3: "2026-11-16T00:00", 4: "2026-11-16T05:00"},
     set(), {2, 4}),
    ("a day straddling keep_all is kept by its latest", {1: "2026-11-18T11:00", 2: "2026-11-18T13:00"}, set(), {2}),
    ("an age of exactly keep_all is in the daily tier", {1: "2026-11-18T12:00", 2: "2026-11-18T12:30"}, set(), {2}),
    ("weekly: the latest of each ISO week", {d: f"2026-11-{d + 1:02d}T12:00" for d in range(1, 8)}, set(), {7}),
    ("a week straddling the daily tier is kept by its latest", {8: "2026-11-09T12:00", 9: "2026-11-11T12:00"}, set(), {9}),
    ("a week spanning two months is two periods", {1: "2026-10-30T12:00", 2: "2026-10-31T12:00", 3: "2026-11-01T12:00"},
     set(), {2, 3}),
    ("monthly: the latest of each month", {1: "2026-08-05T00:00", 2: "2026-08-31T23:00", 3: "2026-09-10T00:00", 4: "2026-09-20T00:00"},
     set(), {2, 4}),
    ("a month straddling the weekly tier is kept by its latest", {5: "2026-10-05T00:00", 6: "2026-10-20T00:00"}, set(), {6}),
    ("older than monthly_for goes", {1: "2026-07-01T00:00", 2: "2026-07-23T12:00", 3: "2026-07-23T12:01"}, set(), {3}),
    ("protected stays in any tier", {1: "2026-07-01T00:00", 2: "2026-11-15T01:00", 3: "2026-11-15T02:00"}, {1, 2, 999}, {1, 2, 3}),
    ("equal times: the higher id is the later", {1: "2026-11-15T05:00", 2: "2026-11-15T05:00"}, set(), {2}),
    ("backfilled before the kept one changes nothing", {1: "2026-11-14T20:00", 2: "2026-11-14T08:00"}, set(), {1}),
]


@pytest.mark.parametrize("name, times, protected, kept", CASES, ids=[c[0] for c in CASES])
def test_plan_table(name, times, protected, kept):
    snapshots = [(sid, at(t)) for sid, t in times.items()] + [(LATEST, at("2026-11-20T11:00"))]
    result = plan(snapshots, now=NOW, policy=POLICY, protected=protected)
    assert result.keep == kept | {LATEST}
    assert result.remove == set(times) - kept
    assert result.keep | result.remove == {sid for sid, _ in snapshots} and not result.keep & result.remove


def test_the_latest_is_kept_however_old_and_nothing_is_empty():
    assert plan([], now=NOW, policy=POLICY).keep == set()
    old = plan([(1, at("2020-01-01T00:00")), (2, at("2019-06-01T00:00"))], now=NOW, policy=POLICY)
    assert old.keep == {1} and old.remove == {2}
    assert old.tiers == {1: "expired", 2: "expired"} and old.pinned == {1}


def test_a_snapshot_from_the_future_and_naive_times():
    result = plan([(1, at("2026-12-01T00:00")), (2, datetime(2026, 11, 15, 1)), (3, datetime(2026, 11, 15, 2))], now=NOW, policy=POLICY)
    assert result.tiers[1] == "keep_all"
    assert result.keep == {1, 3}  # naive times are UTC: 2 and 3 share a day


def test_monthly_forever_by_default_and_summary_counts():
    forever = RetentionPolicy(keep_all="2d", daily_for="10d", weekly_for="40d")
    snapshots = [(i, at("2020-01-01T00:00") + timedelta(days=i)) for i in range(100)] + [(LATEST, at("2026-11-20T11:00"))]
    result = plan(snapshots, now=NOW, policy=forever)
    assert set(result.tiers.values()) == {"monthly", "keep_all"}
    assert len(result.keep) == 4 + 1  # January to April 2020 (days 0-99), and the latest
    assert result.summary()["monthly"] == {"kept": 4, "removed": 96}
    assert result.summary()["keep_all"] == {"kept": 1, "removed": 0}


def test_the_plan_does_not_depend_on_input_order():
    rng = random.Random(7)
    snapshots = [(i, NOW - timedelta(minutes=rng.randrange(0, 300 * 24 * 60))) for i in range(2000)]
    snapshots += [(2000 + i, snapshots[i][1]) for i in range(0, 2000, 50)]  # equal times
    first = plan(snapshots, now=NOW, policy=POLICY, protected={5, 6})
    for _ in range(3):
        rng.shuffle(snapshots)
        again = plan(snapshots, now=NOW, policy=POLICY, protected={6, 5})
        assert (again.keep, again.remove, dict(again.tiers)) == (first.keep, first.remove, dict(first.tiers))


policies = st.sampled_from([
    POLICY,
    RetentionPolicy(keep_all="0s", daily_for="3d", weekly_for="20d", monthly_for="70d"),
    RetentionPolicy(keep_all="1d", daily_for="1d", weekly_for="50d"),  # no daily tier, monthly forever
    RetentionPolicy(keep_all="36h", daily_for="9d", weekly_for="9d", monthly_for="9d"),  # only days, then nothing
])


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.lists(st.integers(min_value=-600, max_value=200 * 24 * 60), min_size=1, max_size=80),
    later=st.integers(min_value=0, max_value=90 * 24 * 60),
    policy=policies,
    protected=st.sets(st.integers(min_value=0, max_value=79), max_size=3),
)
def test_pruning_again_removes_nothing_and_pruning_often_equals_pruning_once(minutes, later, policy, protected):
    snapshots = [(i, NOW - timedelta(minutes=m)) for i, m in enumerate(minutes)]
    first = plan(snapshots, now=NOW, policy=policy, protected=protected)
    kept = [s for s in snapshots if s[0] in first.keep]
    assert plan(kept, now=NOW, policy=policy, protected=protected).remove == set()
    # Pruning now and again later keeps what pruning only later keeps.
    t2 = NOW + timedelta(minutes=later)
    assert plan(kept, now=t2, policy=policy).keep == plan(snapshots, now=t2, policy=policy).keep


def test_policy_validation_through_the_configuration(tmp_path):
    body = project_config(tmp_path / "pw.db")
    body["retention"] = {"keep_all": "30d", "daily_for": "7d"}
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match="daily_for \\(7d\\) must not be shorter than keep_all \\(30d\\)"):
        load_config(path)
    body["retention"] = {"keep_all": "3 days"}
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match="invalid duration"):
        load_config(path)
    body["retention"] = {"keep_all": "1w", "monthly_for": None, "weekly": "1d"}
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match="retention.weekly: unknown key"):
        load_config(path)
    body["retention"] = {"keep_all": "1w", "daily_for": 3600 * 24 * 14, "monthly_for": None}
    path.write_text(yaml.safe_dump(body))
    policy = load_config(path).retention
    assert (policy.keep_all, policy.daily_for, policy.monthly_for) == (timedelta(days=7), timedelta(days=14), None)


# --- the store -----------------------------------------------------------------------------


def evidence(value: Any, *, commit: str = "a", path: str = "README.md", at: datetime = NOW) -> Evidence:
    return Evidence(source="repo", signal="file_exists", params={"path": path}, value={"v": value},
                    provenance={"commit": commit * 40, "path": path}, observed_at=at)


def make_snapshot(k: int, taken_at: datetime, *, project: str = "svc", origin: str = "collected",
                  shared: Iterable[Evidence] = ()) -> Snapshot:
    """Scores that differ from one k to the next (no cheap repeats); evidence partly shared across snapshots."""
    pillars = []
    for p in ("a", "b"):
        criteria = []
        for c in ("x", "y"):
            score = ((k * 7 + ord(p) + ord(c)) % 101) / 100
            items = [*shared, evidence(k // 8, commit="b", path=f"{p}{c}.md", at=taken_at),  # the same for two days
                     evidence(k, commit="c", path=f"{p}{c}.md", at=taken_at)]  # this snapshot's own
            criteria.append(CriterionScore(id=c, title=c.upper(), score=score, status="ok", evidence=items))
        pillars.append(PillarScore(id=p, title=p.upper(), score=sum(c.score for c in criteria) * 50, coverage=1.0, criteria=criteria))
    return Snapshot(project=project, taken_at=taken_at, rules_hash="r1", complete=True, origin=origin,
                    overall=sum(p.score for p in pillars) / 2, pillars=pillars,
                    sources=[SourceState(id="repo", kind="git", answered=True, fingerprint=f"{k:040x}")])


def alert(snapshot_id: int, *, state: str, project: str = "svc", subject: str = "overall") -> Alert:
    return Alert(project=project, subject=subject, kind="regression", state=state, started_at=NOW, snapshot_id=snapshot_id,
                 resolved_at=NOW if state == "resolved" else None)


def orphan_evidence(db: sqlite3.Connection | Any) -> int:
    return db.execute(
        "SELECT count(*) FROM evidence WHERE hash NOT IN (SELECT j.value FROM criterion_scores AS c, json_each(c.evidence) AS j)"
    ).fetchone()[0]


def test_protected_snapshots_are_the_latest_open_alerts_and_undelivered_messages(store):
    ids = [store.save_snapshot(make_snapshot(k, NOW - timedelta(days=10 - k))).id for k in range(6)]
    store.save_alerts([alert(ids[0], state="firing"), alert(ids[1], state="pending", subject="pillar:a"),
                       alert(ids[2], state="resolved"), alert(ids[2], state="firing", project="other")])
    message = AlertMessage(event="resolved", project="svc", subject="overall", kind="regression", severity="warning",
                           title="t", summary="s", baseline=None, value=None, baseline_display="", value_display="",
                           snapshot_id=ids[3], started_at=NOW, fingerprint="f")
    store.enqueue([OutboxItem(channel="log", idempotency_key="k1", message=message, created_at=NOW, next_attempt_at=NOW),
                   OutboxItem(channel="log", idempotency_key="k2", message=message.model_copy(update={"snapshot_id": ids[4]}),
                              created_at=NOW, next_attempt_at=NOW)])
    delivered = store.due_outbox(NOW)[1]
    store.record_attempt(delivered.id, at=NOW, outcome="delivered")
    assert store.protected_snapshots("svc") == {ids[0], ids[1], ids[3], ids[5]}
    assert store.snapshot_times("svc") == [(i, NOW - timedelta(days=10 - k)) for k, i in enumerate(ids)]


def test_delete_removes_every_row_of_a_snapshot_and_only_evidence_nothing_uses(store):
    shared = [evidence("shared")]
    first = store.save_snapshot(make_snapshot(0, NOW - timedelta(days=3), shared=shared))
    store.save_snapshot(make_snapshot(0, NOW - timedelta(days=3, hours=-1), shared=shared))  # a cheap repeat of first
    second = store.save_snapshot(make_snapshot(1, NOW - timedelta(days=2), shared=shared))
    store.save_snapshot(make_snapshot(2, NOW - timedelta(days=1), shared=shared))
    other = store.save_snapshot(make_snapshot(0, NOW, project="other"))  # the same evidence as first, but the shared item
    deleted = store.delete_snapshots([first.id, second.id])
    assert (deleted.snapshots, deleted.snapshot_repeats, deleted.pillar_scores, deleted.criterion_scores) == (2, 1, 4, 8)
    # first's items are used by `other` (and the two-day ones by the third); only second's own four go.
    assert deleted.evidence == 4
    assert orphan_evidence(store.db) == 0
    assert store.get(other.id).pillars[0].criteria[0].evidence[1].value == {"v": 0}
    assert store.delete_snapshots([other.id]).evidence == 4  # now k=0's own items go; the two-day ones stay
    assert orphan_evidence(store.db) == 0
    assert store.db.execute("SELECT count(*) FROM evidence").fetchone()[0] == 1 + 4 + 4  # shared, k//8 = 0, k=2's own
    assert list(store.db.execute("PRAGMA foreign_key_check")) == []
    assert store.delete_snapshots([]).snapshots == 0


def test_an_unknown_table_referring_to_snapshots_stops_the_deletion(store):
    saved = store.save_snapshot(make_snapshot(0, NOW - timedelta(days=400)))
    store.save_snapshot(make_snapshot(1, NOW))
    store.db.execute("CREATE TABLE annotations (snapshot_id INTEGER REFERENCES snapshots (id), note TEXT)")
    with pytest.raises(StoreError, match="table annotations refers to snapshots"):
        store.prune("svc", POLICY, now=NOW)
    assert store.get(saved.id).id == saved.id


def test_an_import_record_goes_with_its_snapshot(store):
    if not hasattr(store, "save_imported"):
        pytest.skip("no imported documents in this schema")
    imported = store.save_imported(make_snapshot(0, NOW - timedelta(days=400), origin="imported"), content_hash="h",
                                   path="STATUS.md", commit=None, verification={}, now=NOW)
    store.save_snapshot(make_snapshot(1, NOW))
    assert store.prune("svc", POLICY, now=NOW, dry_run=True).plan.remove == set()  # imported history is kept by default
    pruned = store.prune("svc", POLICY.model_copy(update={"imported": "tiers"}), now=NOW)
    assert pruned.plan.remove == {imported.id} and pruned.deleted.imported_documents == 1
    assert list(store.db.execute("PRAGMA foreign_key_check")) == []


def test_a_dry_run_reads_a_read_only_store(tmp_path):
    with Store.open(tmp_path / "pw.db") as s:
        s.save_snapshot(make_snapshot(0, NOW - timedelta(days=400)))
        s.save_snapshot(make_snapshot(1, NOW))
    with Store.open(tmp_path / "pw.db", readonly=True) as ro:
        pruned = ro.prune("svc", POLICY, now=NOW, dry_run=True)
        assert len(pruned.plan.remove) == 1 and pruned.deleted is None
        assert len(ro.snapshot_times("svc")) == 2


def test_the_daemon_job_prunes_and_logs_one_line(tmp_path, caplog):
    from daemon.service import Daemon

    db = tmp_path / "pw.db"
    body = project_config(db)
    body["retention"] = {"keep_all": "1d", "daily_for": "1d", "weekly_for": "1d", "monthly_for": "1d"}
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(body))
    now = datetime.now(UTC)
    with Store.open(db) as s:
        for k in range(3):
            s.save_snapshot(make_snapshot(k, now - timedelta(days=10 - k)))
    daemon = Daemon(tmp_path / "pw.yaml")
    daemon.store = Store.open(db)
    try:
        with caplog.at_level(logging.INFO, logger="pillarwatch.daemon"):
            daemon._prune_job()
    finally:
        daemon.store.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retention:")]
    assert len(lines) == 1 and lines[0].startswith("retention: removed 2 snapshot(s) (svc 2, other 0) and ")


# --- a year of snapshots through the real CLI ----------------------------------------------

YEAR_POLICY = {"keep_all": "14d", "daily_for": "60d", "weekly_for": "180d", "monthly_for": "300d"}


def project_config(db: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "store": str(db),
        "projects": [{
            "id": pid,
            "sources": [{"id": "repo", "kind": "git", "path": str(db.parent / "repo")}],
            "pillars": [{"id": "a", "title": "A", "criteria": [
                {"id": "x", "title": "X", "checks": [{"source": "repo", "signal": "file_exists", "path": "README.md"}]}]}],
        } for pid in ("svc", "other")],
    }


def expected_keep(times: dict[int, datetime], now: datetime, protected: set[int]) -> set[int]:
    """The tiers of docs/CONFIGURATION.md, computed here from scratch."""
    days = {k: timedelta(days=int(v[:-1])) for k, v in YEAR_POLICY.items()}
    latest_of: dict[tuple[Any, ...], tuple[datetime, int]] = {}
    for sid, t in times.items():
        for key in (("day", t.date()), ("week", t.year, t.month, *t.isocalendar()[:2]), ("month", t.year, t.month)):
            latest_of[key] = max(latest_of.get(key, (t, sid)), (t, sid))
    keep = set(protected) | {max(times, key=lambda sid: (times[sid], sid))}
    for sid, t in times.items():
        age = now - t
        if age < days["keep_all"]:
            keep.add(sid)
            continue
        if age < days["daily_for"]:
            key: tuple[Any, ...] = ("day", t.date())
        elif age < days["weekly_for"]:
            key = ("week", t.year, t.month, *t.isocalendar()[:2])
        elif age < days["monthly_for"]:
            key = ("month", t.year, t.month)
        else:
            continue
        if latest_of[key][1] == sid:
            keep.add(sid)
    return keep


def prune(config: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", "prune", "--config", str(config), "--json", *args],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_a_year_of_snapshots_is_thinned_to_exactly_the_tiers(tmp_path):
    db = tmp_path / "pw.db"
    body = project_config(db)
    body["retention"] = {**YEAR_POLICY, "backfilled": "tiers"}  # thinned like the rest (kept by default)
    config = tmp_path / "pw.yaml"
    config.write_text(yaml.safe_dump(body))

    # Every 6 hours for a year, ages 3h + 6h*k: no snapshot within hours of a tier boundary,
    # so the CLI's clock, a little later than ours, puts each in the same tier.
    now = datetime.now(UTC).replace(microsecond=0)
    shared = [evidence("always")]
    with Store.open(db) as store, store.transaction():
        collected = [store.save_snapshot(make_snapshot(k, now - timedelta(hours=3 + 6 * k), shared=shared))
                     for k in reversed(range(365 * 4))]
        # Backfilled afterwards, between collected ones (some become the latest of their day).
        backfilled = [store.save_snapshot(make_snapshot(10_000 + k, now - timedelta(hours=3 + 6 * k, minutes=-90),
                                                        origin="backfilled", shared=shared))
                      for k in range(50, 365 * 4, 37)]
        # Another project sharing evidence with the oldest snapshots.
        other = [store.save_snapshot(make_snapshot(k, now - timedelta(hours=h), project="other")) for k, h in ((365 * 4 - 1, 2), (365 * 4 - 2, 1))]
        old = collected[30]  # about 357 days old: past monthly_for
        store.save_alerts([alert(old.id, state="firing"), alert(collected[40].id, state="resolved", subject="pillar:a")])
    assert len({s.id for s in collected + backfilled}) == len(collected) + len(backfilled)  # no cheap repeats
    times = {s.id: s.taken_at for s in collected + backfilled}
    expected = expected_keep(times, now, protected={old.id})
    assert old.id in expected and collected[-1].id in expected and collected[40].id not in expected
    assert any(s.id in expected for s in backfilled) and any(s.id not in expected for s in backfilled)

    with Store.open(db) as store:
        before = {sid: store.get(sid).to_json() for sid in expected | {s.id for s in other}}
        rows_before = store.db.execute("SELECT (SELECT count(*) FROM snapshots), (SELECT count(*) FROM evidence)").fetchone()

    dry = prune(config, "--dry-run")
    assert dry["dry_run"] is True
    svc = dry["projects"][0]
    assert (svc["project"], svc["snapshots"], svc["kept"], svc["removed"]) == ("svc", len(times), len(expected), len(times) - len(expected))
    assert svc["pinned"] == [old.id] and svc["deleted"] is None
    assert set(svc["tiers"]) == {"keep_all", "daily", "weekly", "monthly", "expired"}
    assert svc["tiers"]["expired"]["kept"] == 1 and svc["tiers"]["keep_all"]["removed"] == 0
    with Store.open(db, readonly=True) as store:
        assert store.db.execute("SELECT (SELECT count(*) FROM snapshots), (SELECT count(*) FROM evidence)").fetchone() == rows_before

    done = prune(config, "--project", "svc")
    assert [p["project"] for p in done["projects"]] == ["svc"]
    assert done["projects"][0]["deleted"]["snapshots"] == len(times) - len(expected)
    assert done["projects"][0]["deleted"]["evidence"] > 0

    with Store.open(db, readonly=True) as store:
        assert {sid for sid, _ in store.snapshot_times("svc")} == expected
        assert store.db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert orphan_evidence(store.db) == 0
        assert store.latest("svc").id == collected[-1].id
        for sid in expected:
            assert store.get(sid).to_json() == before[sid]
        assert {s.id for s in store.history("other")} == {s.id for s in other}
        for s in other:  # its evidence, shared with removed svc snapshots, is all there
            assert store.get(s.id).to_json() == before[s.id]

    # Again, as a person would: nothing more goes.
    again = subprocess.run([sys.executable, "-m", "daemon.cli", "prune", "--config", str(config)],
                           check=False, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert f"svc: {len(expected)} snapshots: {len(expected)} kept, 0 removed" in lines
    assert "other: 2 snapshots: 2 kept, 0 removed" in lines
    assert f"  kept although their tier would drop them (the latest, or an open alert refers to them): #{old.id}" in lines
    tier_lines = [line for line in lines if line.startswith("  ") and "kept" in line and "although" not in line]
    assert len(tier_lines) == 6 and all(line.endswith(" 0 removed") for line in tier_lines)  # svc's five tiers, other's one
    assert not any("deleted" in line for line in lines)
    with Store.open(db, readonly=True) as store:
        assert {sid for sid, _ in store.snapshot_times("svc")} == expected


def test_prune_without_a_database_is_one_line(tmp_path):
    config = tmp_path / "pw.yaml"
    config.write_text(yaml.safe_dump(project_config(tmp_path / "pw.db")))
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", "prune", "--config", str(config)],
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no database yet" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "pw.db").exists()


def test_old_runs_fold_into_totals_and_the_counters_never_go_back(store):
    """The runs table keeps `runs_for`; what is folded still counts, in the counters and the histogram."""
    outcomes = ["ok", "ok", "error", "missed", "ok", "skipped"]
    for source in ("repo", "ci"):
        for k in range(24 * 60):  # one run an hour for 60 days, the last one still running
            due = NOW - timedelta(days=60) + timedelta(hours=k)
            outcome = "running" if k == 24 * 60 - 1 else outcomes[k % len(outcomes)]
            if outcome in ("missed", "skipped"):
                store.record_run("svc", source, due, outcome=outcome, now=due)
            elif outcome == "running":
                store.claim_run("svc", source, due, now=due)
            else:
                store.claim_run("svc", source, due, now=due)
                store.record_run("svc", source, due, outcome=outcome, now=due + timedelta(seconds=k % 7 * 0.2))
    store.record_run("other", "repo", NOW - timedelta(days=50), outcome="ok", now=NOW - timedelta(days=50))
    counts, durations = store.run_counts(), store.run_durations()
    catch_up = {s: store.last_due("svc", s) for s in ("repo", "ci")}
    store.save_snapshot(make_snapshot(0, NOW))

    pruned = store.prune("svc", POLICY, now=NOW)

    left = store.db.execute("SELECT count(*), min(due_at) FROM source_runs WHERE project = 'svc'").fetchone()
    assert pruned.deleted.source_runs == 2 * 30 * 24 and left[0] == 2 * 30 * 24  # the newest 30 days of each source stay
    assert left[1] == "2026-10-21T12:00:00Z"
    assert store.run_counts() == counts and store.run_durations() == durations
    assert {s: store.last_due("svc", s) for s in ("repo", "ci")} == catch_up
    assert store.db.execute("SELECT count(*) FROM source_runs WHERE project = 'other'").fetchone()[0] == 1  # another project's

    later = NOW + timedelta(days=45)  # everything but the running claim and each source's latest is old now
    assert store.prune("svc", POLICY, now=later).deleted.source_runs == 2 * (30 * 24 - 1)
    assert store.run_counts() == counts and store.run_durations() == durations
    assert {s: store.last_due("svc", s) for s in ("repo", "ci")} == catch_up
    assert store.prune("svc", POLICY, now=later).deleted.source_runs == 0


def test_runs_for_is_a_duration_not_below_zero():
    assert RetentionPolicy(runs_for="12w").runs_for == timedelta(weeks=12)
    with pytest.raises(ValueError, match="runs_for must not be negative"):
        RetentionPolicy(runs_for=timedelta(days=-1))
