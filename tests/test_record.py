"""Recording a run: snapshot, alerts and outbox in one transaction; routing; delivery through the log channel.

Real things throughout: a git repository with real commits, a configuration
file loaded as the daemon loads it, collection through the runner, and an
SQLite file. The one injected fault is ``store.enqueue`` raising, to show the
transaction holds.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config.loading import load_config
from daemon.config.model import Config
from daemon.run.record import channels_for, deliver_pending, record
from daemon.run.runner import collect_sources
from daemon.store import Store
from tests.support.git import GitRepo

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
RESTART = "tests/test_restart.py"
RETRY = "tests/test_retry.py"


# --- a repository, a configuration, a store --------------------------------------------------


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write(RESTART, "def test_restart(): pass\n")
    git_repo.write(RETRY, "def test_retry(): pass\n")
    git_repo.commit("tests for durability", when=T0 - timedelta(days=1))
    return git_repo


def project_body(repo: GitRepo, project_id: str = "svc", *, severity: str = "warning", retry_weight: float = 1,
                 restart_path: str = RESTART) -> dict[str, Any]:
    return {
        "id": project_id,
        "alerts": {"threshold": 5, "for": 1, "repeat_interval": "24h", "severity": severity},
        "sources": [{"id": "repo", "kind": "git", "path": str(repo.path)}],
        "pillars": [
            {"id": "durability", "title": "Durability", "criteria": [
                {"id": "restart", "title": "Survive restart", "checks": [
                    {"source": "repo", "signal": "file_exists", "path": restart_path}]},
                {"id": "retry", "title": "Retry covered", "weight": retry_weight, "checks": [
                    {"source": "repo", "signal": "file_exists", "path": RETRY}]},
            ]},
        ],
    }


def load(tmp_path: Path, projects: list[dict[str, Any]], name: str = "pw.yaml", **top: Any) -> Config:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"version": 1, "store": "pw.db", **top, "projects": projects}, sort_keys=False))
    return load_config(path)


def record_all(store: Store, config: Config, now: datetime) -> dict[str, Any]:
    """Collect every project of the configuration for real, and record each."""
    collected = collect_sources(config, config.projects, now=now)
    return {p.id: record(store, config, p, collected[p.id], now=now) for p in config.projects}


def count(store: Store, table: str) -> int:
    """Rows as another connection sees them: only what was committed."""
    with sqlite3.connect(store.path) as other:
        return int(other.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def log_channel(channel_id: str) -> dict[str, str]:
    return {"kind": "log", "id": channel_id}


# --- recording ---------------------------------------------------------------------------------


def test_the_first_record_stores_a_snapshot_and_no_alert(tmp_path: Path, repo: GitRepo, store: Store):
    config = load(tmp_path, [project_body(repo)])
    recorded = record_all(store, config, T0)["svc"]
    assert recorded.snapshot.id is not None
    assert recorded.snapshot.overall == 100.0
    assert (recorded.alerts, recorded.messages, recorded.queued) == ([], [], 0)
    assert store.latest("svc").id == recorded.snapshot.id
    assert (count(store, "snapshots"), count(store, "alerts"), count(store, "outbox")) == (1, 0, 0)


def test_a_deleted_file_fires_a_regression_and_queues_one_item_per_message_and_channel(tmp_path: Path, repo: GitRepo, store: Store):
    config = load(tmp_path, [project_body(repo)], channels=[log_channel("ops"), log_channel("audit")])
    record_all(store, config, T0)
    repo.remove(RETRY)
    sha = repo.commit("drop the retry test", when=T0 + timedelta(minutes=30))

    recorded = record_all(store, config, T1)["svc"]

    assert recorded.snapshot.overall == 50.0
    assert {(a.subject, a.kind, a.state, a.baseline, a.value) for a in recorded.alerts} == {
        ("pillar:durability", "regression", "firing", 100.0, 50.0),
        ("overall", "regression", "firing", 100.0, 50.0),
    }
    assert [(m.event, m.subject) for m in recorded.messages] == [("firing", "pillar:durability"), ("firing", "overall")]
    pillar_message = recorded.messages[0]
    assert pillar_message.title == "Durability fell from 100% to 50%"
    assert any(e.path == RETRY and e.commit and sha.startswith(e.commit) for e in pillar_message.evidence), pillar_message.evidence

    items = store.outbox_items()
    assert recorded.queued == len(items) == 4 == count(store, "outbox")
    assert sorted((i.message.subject, i.channel) for i in items) == [
        ("overall", "audit"), ("overall", "ops"), ("pillar:durability", "audit"), ("pillar:durability", "ops")]
    keys = [i.idempotency_key for i in items]
    assert len(set(keys)) == 4
    assert all(k.startswith("pw_") and len(k) == 3 + 32 for k in keys)
    alert_ids = {a.fingerprint: a.id for a in recorded.alerts}
    assert all(i.alert_id == alert_ids[i.message.fingerprint] for i in items)
    # Each waits its channel's group_wait (30 s by default) for more alerts of its group.
    assert {(i.state, i.attempts, i.created_at, i.next_attempt_at) for i in items} == {("pending", 0, T1, T1 + timedelta(seconds=30))}
    assert (count(store, "snapshots"), count(store, "alerts")) == (2, 2)


def test_the_same_drop_recorded_again_queues_nothing_new(tmp_path: Path, repo: GitRepo, store: Store):
    config = load(tmp_path, [project_body(repo)])
    record_all(store, config, T0)
    repo.remove(RETRY)
    repo.commit("drop the retry test", when=T0 + timedelta(minutes=30))
    record_all(store, config, T1)
    again = record_all(store, config, T1 + timedelta(minutes=15))["svc"]
    assert (again.messages, again.queued) == ([], 0)
    assert (count(store, "snapshots"), count(store, "alerts"), count(store, "outbox")) == (2, 2, 2)


def test_without_channels_messages_go_to_the_log_channel_and_are_delivered_there(tmp_path: Path, repo: GitRepo, store: Store, caplog):
    config = load(tmp_path, [project_body(repo)])
    assert config.channels == [] and config.routes == []
    record_all(store, config, T0)
    repo.remove(RETRY)
    repo.commit("drop the retry test", when=T0 + timedelta(minutes=30))
    recorded = record_all(store, config, T1)["svc"]

    assert [channels_for(config, m) for m in recorded.messages] == [["log"], ["log"]]
    assert {i.channel for i in store.outbox_items()} == {"log"}
    with caplog.at_level(logging.WARNING, logger="pillarwatch.alerts"):
        report = deliver_pending(store, config, now=T1, flush=True)  # as collect does: the collection is over
    assert report.counts() == {"delivered": 2, "to retry": 0, "dead": 0, "disabled": 0}
    [line] = [r.getMessage() for r in caplog.records if r.name == "pillarwatch.alerts"]  # one group, one line
    assert line.startswith("group of 2: firing svc pillar:durability") and "; firing svc overall" in line


def test_routes_send_each_message_only_to_the_routed_channels(tmp_path: Path, repo: GitRepo, store: Store):
    config = load(
        tmp_path,
        [project_body(repo, "svc", severity="critical"), project_body(repo, "web", severity="warning")],
        channels=[log_channel("pager"), log_channel("chat"), {"kind": "webhook", "id": "hook", "url": "http://127.0.0.1:9/never"}],
        routes=[
            {"channels": ["pager"], "severities": ["critical"]},
            {"channels": ["chat"], "severities": ["warning"]},
            {"channels": ["hook"], "projects": ["web"], "events": ["resolved"]},
        ],
    )
    record_all(store, config, T0)
    repo.remove(RETRY)
    repo.commit("drop the retry test", when=T0 + timedelta(minutes=30))
    record_all(store, config, T1)

    firing = store.outbox_items()
    assert {(i.message.project, i.message.event, i.channel) for i in firing} == {("svc", "firing", "pager"), ("web", "firing", "chat")}
    assert len(firing) == 4  # two messages per project, each to one channel
    assert len({i.idempotency_key for i in firing}) == 4

    # The file comes back: the alerts resolve, and web's resolution also goes to the hook.
    repo.write(RETRY, "def test_retry(): pass\n")
    repo.commit("restore the retry test", when=T1 + timedelta(minutes=30))
    recorded = record_all(store, config, T2)
    assert {m.event for r in recorded.values() for m in r.messages} == {"resolved"}
    resolved = [i for i in store.outbox_items() if i.message.event == "resolved"]
    assert sorted((i.message.project, i.message.subject, i.channel) for i in resolved) == [
        ("svc", "overall", "pager"), ("svc", "pillar:durability", "pager"),
        ("web", "overall", "chat"), ("web", "overall", "hook"),
        ("web", "pillar:durability", "chat"), ("web", "pillar:durability", "hook"),
    ]
    assert len({i.idempotency_key for i in store.outbox_items()}) == 10


def test_a_message_no_route_matches_is_queued_nowhere_but_its_alert_is_kept(tmp_path: Path, repo: GitRepo, store: Store):
    config = load(tmp_path, [project_body(repo, severity="info")], channels=[log_channel("pager")],
                  routes=[{"channels": ["pager"], "severities": ["critical"]}])
    record_all(store, config, T0)
    repo.remove(RETRY)
    repo.commit("drop the retry test", when=T0 + timedelta(minutes=30))
    recorded = record_all(store, config, T1)["svc"]
    assert len(recorded.messages) == 2
    assert [channels_for(config, m) for m in recorded.messages] == [[], []]
    assert recorded.queued == 0 == count(store, "outbox")
    assert count(store, "alerts") == 2


def test_a_change_of_weights_moves_the_figure_but_is_not_a_regression(tmp_path: Path, repo: GitRepo, store: Store):
    repo.remove(RETRY)
    repo.commit("no retry test yet", when=T0 - timedelta(hours=1))
    before = load(tmp_path, [project_body(repo, retry_weight=1)], name="before.yaml")
    first = record_all(store, before, T0)["svc"]
    assert first.snapshot.overall == 50.0

    # The missing criterion now weighs three times as much: 50% -> 25% on the same evidence.
    after = load(tmp_path, [project_body(repo, retry_weight=3)], name="after.yaml")
    assert after.projects[0].rules_hash() != before.projects[0].rules_hash()
    second = record_all(store, after, T1)["svc"]
    assert second.snapshot.overall == 25.0
    assert second.snapshot.id != first.snapshot.id
    assert second.snapshot.rules_hash == after.projects[0].rules_hash()
    assert (second.alerts, second.messages, second.queued) == ([], [], 0)
    assert (count(store, "snapshots"), count(store, "alerts"), count(store, "outbox")) == (2, 0, 0)

    # A real drop under the new rules still fires, from the new figure.
    repo.remove(RESTART)
    repo.commit("drop the restart test", when=T1 + timedelta(minutes=30))
    third = record_all(store, after, T2)["svc"]
    assert {(a.subject, a.state, a.baseline, a.value) for a in third.alerts} == {
        ("pillar:durability", "firing", 25.0, 0.0), ("overall", "firing", 25.0, 0.0)}


def test_a_firing_alert_is_rebased_when_the_rules_change_and_then_resolves(tmp_path: Path, repo: GitRepo, store: Store):
    before = load(tmp_path, [project_body(repo)], name="before.yaml")
    record_all(store, before, T0)  # 100%
    repo.remove(RESTART)
    repo.commit("drop the restart test", when=T0 + timedelta(minutes=30))
    fired = record_all(store, before, T1)["svc"]
    assert {(a.subject, a.state, a.baseline, a.value) for a in fired.alerts} == {
        ("pillar:durability", "firing", 100.0, 50.0), ("overall", "firing", 100.0, 50.0)}

    # The rule now asks for a file that never existed: under it, the baseline's own evidence scores 50%, as today.
    after = load(tmp_path, [project_body(repo, restart_path="tests/test_restart_v2.py")], name="after.yaml")
    assert after.projects[0].rules_hash() != before.projects[0].rules_hash()
    rebased = record_all(store, after, T2)["svc"]
    assert rebased.snapshot.overall == 50.0
    assert store.open_alerts("svc") == []
    assert sorted((m.subject, m.event) for m in rebased.messages) == [("overall", "resolved"), ("pillar:durability", "resolved")]
    # Nothing is left firing, so nothing is reminded later either.
    later = record_all(store, after, T2 + timedelta(days=2))["svc"]
    assert later.messages == [] and store.open_alerts("svc") == []


def test_a_firing_alert_keeps_firing_from_its_rescored_baseline(tmp_path: Path, repo: GitRepo, store: Store):
    before = load(tmp_path, [project_body(repo)], name="before.yaml")
    record_all(store, before, T0)
    repo.remove(RESTART)
    repo.commit("drop the restart test", when=T0 + timedelta(minutes=30))
    record_all(store, before, T1)  # 100% -> 50%
    after = load(tmp_path, [project_body(repo, retry_weight=3)], name="after.yaml")
    third = record_all(store, after, T2)["svc"]
    assert third.messages == []
    # Under the new weights the baseline's evidence is still 100%, today's 75%.
    assert {(a.subject, a.state, a.baseline, a.value) for a in store.open_alerts("svc")} == {
        ("pillar:durability", "firing", 100.0, 75.0), ("overall", "firing", 100.0, 75.0)}
    assert {a.baseline_rules_hash for a in store.open_alerts("svc")} == {after.projects[0].rules_hash()}


# --- one transaction ---------------------------------------------------------------------------


def test_snapshot_alerts_and_outbox_are_written_together_or_not_at_all(tmp_path: Path, repo: GitRepo, store: Store, monkeypatch):
    config = load(tmp_path, [project_body(repo)])
    first = record_all(store, config, T0)["svc"]
    repo.remove(RETRY)
    repo.commit("drop the retry test", when=T0 + timedelta(minutes=30))
    collected = collect_sources(config, config.projects, now=T1)

    def enqueue_fails(items: list[Any]) -> None:
        raise RuntimeError("disk full while queueing")

    monkeypatch.setattr(store, "enqueue", enqueue_fails)
    with pytest.raises(RuntimeError, match="disk full"):
        record(store, config, config.projects[0], collected["svc"], now=T1)

    assert not store.db.conn.in_transaction
    assert (count(store, "snapshots"), count(store, "alerts"), count(store, "outbox")) == (1, 0, 0)
    assert store.latest("svc").id == first.snapshot.id
    assert store.open_alerts("svc") == []

    # Once queueing works again, the same run records everything: no alert was lost.
    monkeypatch.undo()
    recorded = record(store, config, config.projects[0], collected["svc"], now=T1)
    assert {a.state for a in recorded.alerts} == {"firing"} and recorded.queued == 2
    assert (count(store, "snapshots"), count(store, "alerts"), count(store, "outbox")) == (2, 2, 2)


# --- delivery ----------------------------------------------------------------------------------


def test_deliver_pending_sends_everything_once_through_a_log_channel(tmp_path: Path, repo: GitRepo, store: Store, caplog):
    config = load(tmp_path, [project_body(repo)], channels=[{"kind": "log", "id": "ops", "level": "error"}])
    record_all(store, config, T0)
    repo.remove(RETRY)
    repo.commit("drop the retry test", when=T0 + timedelta(minutes=30))
    record_all(store, config, T1)
    assert {(i.channel, i.state) for i in store.outbox_items()} == {("ops", "pending")}

    assert deliver_pending(store, config, now=T1).total == 0  # within the group's wait
    sent_at = T1 + timedelta(seconds=30)
    with caplog.at_level(logging.ERROR, logger="pillarwatch.alerts"):
        first = deliver_pending(store, config, now=sent_at)
    assert (first.delivered, first.retry, first.dead, first.disabled) == (2, 0, 0, 0)
    items = store.outbox_items()
    assert {(i.state, i.attempts, i.delivered_at, i.last_error) for i in items} == {("delivered", 1, sent_at, None)}
    assert [store.attempts(i.id)[0]["outcome"] for i in items] == ["delivered", "delivered"]
    [sent] = [r for r in caplog.records if r.name == "pillarwatch.alerts"]  # both alerts in one line
    assert sent.levelno == logging.ERROR
    assert "pillar:durability" in sent.getMessage() and "svc overall" in sent.getMessage()

    second = deliver_pending(store, config, now=T1 + timedelta(minutes=5))
    assert second.total == 0
    assert store.outbox_backlog() == {"delivered": 2}
    assert [len(store.attempts(i.id)) for i in store.outbox_items()] == [1, 1]


def test_a_late_error_for_an_earlier_due_time_leaves_the_snapshot_complete(tmp_path: Path, repo: GitRepo, store: Store):
    """Issue 17: a job due at 08:42 that times out after the 08:46:40 one answered does not make the snapshot partial."""
    config = load(tmp_path, [project_body(repo)])
    project = config.project("svc")
    newer, older = T0.replace(minute=46, second=40), T0.replace(minute=42)
    (fresh,) = collect_sources(config, [project], now=newer)["svc"]
    store.record_run("svc", "repo", newer, outcome="ok", now=newer, result=fresh)
    # The same source, read when its repository was away: an error result.
    away = load(tmp_path, [{**project_body(repo), "sources": [{"id": "repo", "kind": "git", "path": str(tmp_path / "gone")}]}],
                name="away.yaml")
    (late,) = collect_sources(away, away.projects, now=older)["svc"]
    assert late.error is not None
    store.record_run("svc", "repo", older, outcome="error", now=newer + timedelta(seconds=13), result=late,
                     error=late.error.message)
    results = store.latest_results("svc")
    recorded = record(store, config, project, [results[s.id] for s in project.sources if s.id in results],
                      now=newer + timedelta(seconds=15))
    assert recorded.snapshot.complete and recorded.snapshot.overall == 100.0
    assert {c.status for p in recorded.snapshot.pillars for c in p.criteria} == {"ok"}
