"""The alertmanager channel against a real Alertmanager: a firing alert appears, a silence there mutes it,
resolving clears it; auth and TLS options, and what a person sees in the alert."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from daemon.alerting.notify import alertmanager
from daemon.config.alerts import AlertmanagerChannel
from daemon.config.loading import load_config
from daemon.errors import ConfigError
from daemon.run.record import deliver_pending
from daemon.store import Store
from tests.support.alertmanager import BINARY, running_alertmanager
from tests.support.alerts import message
from tests.support.git import durability_repo
from tests.support.processes import wait_for
from tests.support.recording import config as _config
from tests.support.recording import project, record_all

pytestmark = pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager is not installed (.ci/run installs it)")


def _channel(url: str, **extra: object) -> AlertmanagerChannel:
    return AlertmanagerChannel.model_validate({"id": "am", "kind": "alertmanager", "url": url,
                                               "dashboard_url": "https://pillarwatch.example.org", **extra})


def test_firing_appears_a_silence_mutes_it_and_resolving_clears_it(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    firing = message(started_at=now - timedelta(minutes=5))
    with running_alertmanager(tmp_path / "am") as server:
        channel = _channel(server.url)
        sent = alertmanager.send(channel, firing, idempotency_key="k1", now=now)
        assert sent.ok, sent.error
        [held] = wait_for(lambda: server.alerts(), what="the alert in Alertmanager")
        assert held["labels"] == {"alertname": "PillarRegression", "project": "shop", "subject": "pillar:durability",
                                  "pillar": "durability", "severity": "warning"}
        assert held["annotations"]["summary"] == "Durability fell from 91% to 74%"
        assert "tests/test_restart.py deleted in 3f2a1c9" in held["annotations"]["evidence"]
        assert held["generatorURL"] == "https://pillarwatch.example.org/projects/shop/dashboard"
        assert held["status"]["state"] == "active"
        ends = datetime.fromisoformat(held["endsAt"].replace("Z", "+00:00"))
        assert ends > now + timedelta(hours=24)  # kept in the future while it fires: reminders re-post it

        server.silence(project="shop")
        wait_for(lambda: server.alerts()[0]["status"]["state"] == "suppressed", what="the silence muting the alert")

        resolved = message("resolved", started_at=firing.started_at, ended_at=now + timedelta(minutes=1))
        assert alertmanager.send(channel, resolved, idempotency_key="k2", now=datetime.now(timezone.utc)).ok
        wait_for(lambda: server.alerts() == [], timeout=10, what="the resolved alert to clear", logs=lambda: str(server.alerts()))


def test_bearer_and_basic_auth_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("AM_TOKEN", "s3cret-token")
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    # Nothing listens on port 9: the request fails, and no secret appears in the error.
    result = alertmanager.send(_channel("http://127.0.0.1:9", bearer_token_env="AM_TOKEN"), message(),
                               idempotency_key="k", now=now)
    assert not result.ok and result.retryable and "s3cret" not in (result.error or "")
    missing = alertmanager.send(_channel("http://127.0.0.1:9", bearer_token_env="AM_UNSET"), message(),
                                idempotency_key="k", now=now)
    assert not missing.ok and "AM_UNSET" in (missing.error or "")
    with pytest.raises(ValueError, match="bearer token or basic auth"):
        _channel("http://x", bearer_token_env="A", username_env="U", password_env="P")
    with pytest.raises(ValueError, match="must start with http"):
        _channel("ftp://x")


def test_the_alert_body_a_person_reads(tmp_path: Path) -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    body = alertmanager.alert(_channel("http://am:9093", hold="2h"), message(), now=now)
    assert body["endsAt"] == "2026-03-02T11:00:00Z" and body["startsAt"] == "2026-03-01T08:00:00Z"
    resolved = alertmanager.alert(_channel("http://am:9093"), message("resolved"), now=now)
    assert resolved["endsAt"] == "2026-03-02T08:00:00Z"  # when it ended: Alertmanager ends it at once
    late = alertmanager.alert(_channel("http://am:9093"), message("resolved", ended_at=now + timedelta(minutes=1)), now=now)
    assert late["endsAt"] == "2026-03-02T09:00:00Z"  # never after now: a later endsAt would keep it firing there
    ca = tmp_path / "missing-ca.pem"
    failed = alertmanager.send(_channel("https://127.0.0.1:9", ca_file=str(ca)), message(), idempotency_key="k", now=now)
    assert not failed.ok and "alertmanager am" in (failed.error or "")


def test_resend_every_must_be_shorter_than_hold(tmp_path: Path) -> None:
    text = ("version: 1\nchannels:\n  - {id: am, kind: alertmanager, url: 'http://127.0.0.1:9093', hold: 12h, resend_every: 12h}\n"
            "projects:\n  - id: shop\n    sources: [{id: repo, kind: git, path: .}]\n    alerts: {repeat_interval: 24h}\n"
            "    pillars:\n      - id: p\n        title: P\n        criteria:\n"
            "          - {id: c, title: C, not_applicable: later}\n")
    (tmp_path / "pw.yaml").write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "pw.yaml")
    assert "resend_every must be above 0 and shorter than hold" in refused.value.problems[0]
    assert ":3: channels[0]" in refused.value.problems[0]
    # A hold shorter than the project's repeat_interval is fine: re-posting has its own schedule.
    (tmp_path / "pw.yaml").write_text(text.replace(", resend_every: 12h", ""))
    channel = load_config(tmp_path / "pw.yaml").channels[0]
    assert channel.resend_interval == timedelta(hours=4)  # hold / 3


def test_a_firing_alert_is_reposted_before_its_hold_passes_and_ends_when_it_resolves(tmp_path: Path) -> None:
    repo = durability_repo(tmp_path / "repo")
    with running_alertmanager(tmp_path / "am") as server:
        channel = {"id": "am", "kind": "alertmanager", "url": server.url, "hold": "3s", "resend_every": "1s"}
        config = _config(tmp_path, [channel], [project(repo)])
        store = Store.open(config.store_path)
        record_all(store, config, _now())
        repo.remove("tests/test_restart.py")
        repo.commit("drop the restart test")
        record_all(store, config, _now())
        fired = _now()
        deliver_pending(store, config, now=fired)
        held = wait_for(lambda: server.alerts(), what="the alerts in Alertmanager")
        assert {a["labels"]["subject"] for a in held} == {"pillar:durability", "overall"}  # each with its own labels
        # Three holds later, with nothing but the send rounds running, both are still active.
        while _now() < fired + timedelta(seconds=9):
            deliver_pending(store, config, now=_now())
            assert {a["status"]["state"] for a in server.alerts()} == {"active"}
            assert len(server.alerts()) == 2
            time.sleep(0.25)
        reposts = [i for i in store.outbox_items(state="delivered") if i.message.event == "reminder"]
        assert len(reposts) >= 2 * 6, len(reposts)  # about one a second for each alert

        repo.write("tests/test_restart.py", "def test_restart():\n    pass\n")
        repo.commit("the restart test is back")
        record_all(store, config, _now())
        deliver_pending(store, config, now=_now())
        wait_for(lambda: server.alerts() == [], timeout=10, what="the resolved alerts to clear")
        deliver_pending(store, config, now=_now() + timedelta(seconds=5))  # resolved: nothing more is re-posted
        assert not [i for i in store.outbox_items(state="pending")]
        store.close()


def _now() -> datetime:
    return datetime.now(timezone.utc)
