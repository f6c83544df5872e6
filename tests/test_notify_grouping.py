"""Grouped messages: the group stage alone with a fake clock, then real commits, a real webhook receiver and a
real SMTP server getting one message per channel and group; and the resolved message's low point and recovery."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from daemon.alerting.notify import notify
from daemon.alerting.notify.grouping import group, group_key
from daemon.config.alerts import AlertmanagerChannel, AppriseChannel, LogChannel, SlackChannel, WebhookChannel
from daemon.run.record import deliver_pending
from daemon.store import Store
from tests.support.alerts import T0, message, outbox_item
from tests.support.git import GitRepo
from tests.support.http_server import HttpServer, Reply
from tests.support.ports import free_port
from tests.support.recording import RESTART, RETRY, config, project, record_all
from tests.support.smtp import Inbox
from tests.support.webhooks import SECRET, Receiver

T1 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
DAY = timedelta(days=3)


# --- the group stage alone ---------------------------------------------------------------


def _rows(*specs: tuple[str, str, int, int, int]) -> list:
    """(channel, project, id, seconds until due, attempts) -> outbox rows created at T0."""
    return [outbox_item(channel, f"pw_{n}", project=proj).model_copy(update={
        "id": n, "next_attempt_at": T0 + timedelta(seconds=due_in), "attempts": attempts})
        for channel, proj, n, due_in, attempts in specs]


HOOK = {"hook": WebhookChannel(id="hook", url="http://127.0.0.1:9/h"),
        "by-subject": WebhookChannel(id="by-subject", url="http://127.0.0.1:9/h", group_by=["project", "subject"]),
        "am": AlertmanagerChannel(id="am", url="http://127.0.0.1:9"),
        "alone": WebhookChannel(id="alone", url="http://127.0.0.1:9/h", group_by=[])}


@pytest.mark.parametrize(("rows", "flush", "expected"), [
    # One project's rows due together: one group.
    (_rows(("hook", "shop", 1, 0, 0), ("hook", "shop", 2, 0, 0)), False, [[1, 2]]),
    # Two projects: two groups.
    (_rows(("hook", "shop", 1, 0, 0), ("hook", "web", 2, 0, 0)), False, [[1], [2]]),
    # Within the group's wait: nothing yet; flushed (collect), at once.
    (_rows(("hook", "shop", 1, 30, 0), ("hook", "shop", 2, 30, 0)), False, []),
    (_rows(("hook", "shop", 1, 30, 0), ("hook", "shop", 2, 30, 0)), True, [[1, 2]]),
    # A row still waiting joins its group's due row; one backing off after a failure does not.
    (_rows(("hook", "shop", 1, 0, 0), ("hook", "shop", 2, 20, 0), ("hook", "shop", 3, 20, 2)), False, [[1, 2]]),
    # Alertmanager groups by itself: each row alone.
    (_rows(("am", "shop", 1, 0, 0), ("am", "shop", 2, 0, 0)), False, [[1], [2]]),
    # `group_by: []`: no grouping, each row alone.
    (_rows(("alone", "shop", 1, 0, 0), ("alone", "shop", 2, 0, 0)), False, [[1], [2]]),
    # A channel no longer configured: alone, so the send stage reports it per row.
    (_rows(("gone", "shop", 1, 0, 0), ("gone", "shop", 2, 0, 0)), False, [[1], [2]]),
    # Channels apart: one group each.
    (_rows(("hook", "shop", 1, 0, 0), ("by-subject", "shop", 2, 0, 0)), False, [[1], [2]]),
])
def test_group(rows: list, flush: bool, expected: list[list[int]]) -> None:
    groups = group(rows, HOOK, now=T0, dead_after=DAY, flush=flush)
    assert [[r.id for r in g] for g in groups] == expected


def test_group_by_subject_and_dead_rows_alone() -> None:
    rows = [outbox_item("by-subject", f"pw_{n}", subject=subject).model_copy(update={"id": n})
            for n, subject in ((1, "overall"), (2, "pillar:a"), (3, "overall"))]
    assert [[r.id for r in g] for g in group(rows, HOOK, now=T0, dead_after=DAY)] == [[1, 3], [2]]
    old = rows[0].model_copy(update={"created_at": T0 - DAY})
    assert [[r.id for r in g] for g in group([old, rows[2]], HOOK, now=T0, dead_after=DAY)] == [[1], [3]]


def test_group_key_is_the_rows_own_for_one_row_and_stable_for_several() -> None:
    one, two = outbox_item("hook", "pw_a"), outbox_item("hook", "pw_b")
    assert group_key([one]) == "pw_a"
    assert group_key([one, two]) == group_key([two, one]) != group_key([one])
    assert group_key([one, two]).startswith("pw_g")


# --- real commits, a real receiver and a real SMTP server --------------------------------


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write(RESTART, "def test_restart(): pass\n")
    git_repo.write(RETRY, "def test_retry(): pass\n")
    git_repo.commit("tests for durability", when=T1 - timedelta(days=1))
    return git_repo


def _channels(http_server: HttpServer, port: int, **grouping: object) -> list[dict[str, object]]:
    return [{"id": "hook", "kind": "webhook", "url": f"{http_server.url}/hook", "secret_env": "PW_GROUP_SECRET", **grouping},
            {"id": "mail", "kind": "email", "host": "127.0.0.1", "port": port, "starttls": False,
             "sender": "pillarwatch@example.org", "to": ["team@example.org"], **grouping}]


def test_one_commit_sends_one_message_per_channel_listing_every_alert(
        tmp_path: Path, repo: GitRepo, http_server: HttpServer, smtp, monkeypatch) -> None:
    monkeypatch.setenv("PW_GROUP_SECRET", SECRET)
    inbox, port = smtp
    receiver = Receiver(http_server)
    cfg = config(tmp_path, _channels(http_server, port), [project(repo, below=80)])
    with Store.open(cfg.store_path) as store:
        record_all(store, cfg, T1)
        repo.remove(RESTART)
        repo.commit("drop the restart test", when=T1)
        recorded = record_all(store, cfg, T1 + timedelta(minutes=1))["svc"]
        # The pillar's regression, its floor and the overall drop: three alerts.
        assert sorted((m.subject, m.kind) for m in recorded.messages) == [
            ("overall", "regression"), ("pillar:durability", "floor"), ("pillar:durability", "regression")]
        assert deliver_pending(store, cfg, now=T1 + timedelta(minutes=1)).total == 0  # waiting for its group
        report = deliver_pending(store, cfg, now=T1 + timedelta(minutes=1, seconds=30))
        assert report.delivered == 6  # three rows per channel, one message each

    [body] = receiver.accepted
    assert body["groupLabels"] == {"project": "svc"} and body["status"] == "firing"
    assert sorted((a["labels"]["alertname"], a["labels"]["subject"]) for a in body["alerts"]) == [
        ("PillarBelowFloor", "pillar:durability"), ("PillarRegression", "overall"), ("PillarRegression", "pillar:durability")]
    assert body["commonLabels"] == {"project": "svc", "severity": "warning"}
    assert all(a["pillarwatch"]["fingerprint"] == a["fingerprint"] for a in body["alerts"])

    [(_, _, mail)] = inbox.received
    assert str(mail["Subject"]).strip() == "[pillarwatch] svc: 3 alerts (3 firing): Durability fell from 100% to 50%"
    text = mail.get_content()
    assert "[FIRING] Durability fell from 100% to 50%." in text
    assert "[FIRING] Durability is below its floor of 80%: 50%." in text
    assert "[FIRING] Overall fell from 100% to 50%." in text
    assert text.count("Evidence that changed:") == 1 and text.count(f"{RESTART} deleted in") == 1  # said once


def test_two_projects_send_two_messages(tmp_path: Path, repo: GitRepo, http_server: HttpServer, smtp, monkeypatch) -> None:
    monkeypatch.setenv("PW_GROUP_SECRET", SECRET)
    inbox, port = smtp
    receiver = Receiver(http_server)
    cfg = config(tmp_path, _channels(http_server, port), [project(repo, "svc"), project(repo, "web")])
    with Store.open(cfg.store_path) as store:
        record_all(store, cfg, T1)
        repo.remove(RESTART)
        repo.commit("drop the restart test", when=T1)
        record_all(store, cfg, T1 + timedelta(minutes=1))
        assert deliver_pending(store, cfg, now=T1 + timedelta(minutes=2)).delivered == 8
    assert sorted((b["groupLabels"]["project"], len(b["alerts"])) for b in receiver.accepted) == [("svc", 2), ("web", 2)]
    assert sorted(str(m["Subject"]).strip().split(":")[0] for _, _, m in inbox.received) == ["[pillarwatch] svc", "[pillarwatch] web"]


def test_group_wait_gathers_the_alerts_of_two_collections(
        tmp_path: Path, repo: GitRepo, http_server: HttpServer, smtp, monkeypatch) -> None:
    monkeypatch.setenv("PW_GROUP_SECRET", SECRET)
    inbox, port = smtp
    receiver = Receiver(http_server)
    cfg = config(tmp_path, _channels(http_server, port, group_wait="1m"), [project(repo, below=40)])
    with Store.open(cfg.store_path) as store:
        record_all(store, cfg, T1)
        repo.remove(RETRY)
        repo.commit("drop the retry test", when=T1)
        first = record_all(store, cfg, T1 + timedelta(seconds=10))["svc"]  # the pillar and overall fall to 50%
        assert deliver_pending(store, cfg, now=T1 + timedelta(seconds=20)).total == 0
        repo.remove(RESTART)
        repo.commit("drop the restart test", when=T1)
        second = record_all(store, cfg, T1 + timedelta(seconds=40))["svc"]  # and under the floor of 40%
        assert [m.kind for m in first.messages] == ["regression", "regression"]
        assert [m.kind for m in second.messages] == ["floor"]
        assert deliver_pending(store, cfg, now=T1 + timedelta(seconds=60)).total == 0  # the group's first wait: 70 s
        assert deliver_pending(store, cfg, now=T1 + timedelta(seconds=70)).delivered == 6
    [body] = receiver.accepted
    assert len(body["alerts"]) == 3
    [(_, _, mail)] = inbox.received
    assert "3 alerts (3 firing)" in str(mail["Subject"])


def test_a_resolved_message_gives_the_low_point_and_the_recovery(
        tmp_path: Path, repo: GitRepo, http_server: HttpServer, smtp, monkeypatch) -> None:
    monkeypatch.setenv("PW_GROUP_SECRET", SECRET)
    inbox, port = smtp
    receiver = Receiver(http_server)
    cfg = config(tmp_path, _channels(http_server, port, group_by=["project", "subject"]), [project(repo)])
    low_at = T1 + timedelta(hours=2)
    with Store.open(cfg.store_path) as store:
        record_all(store, cfg, T1)
        for when, change in ((T1 + timedelta(hours=1), lambda: repo.remove(RETRY)),  # 50%
                             (low_at, lambda: repo.remove(RESTART)),  # 0%: the low point
                             (T1 + timedelta(hours=3), lambda: (repo.write(RESTART, "x\n"), repo.write(RETRY, "x\n")))):
            change()
            repo.commit("move", when=when)
            record_all(store, cfg, when)
            deliver_pending(store, cfg, now=when, flush=True)
    resolved = [b for b in receiver.accepted if b["status"] == "resolved"]
    assert len(resolved) == 2  # the pillar's and the overall's, one message each (grouped by subject)
    details = next(b for b in resolved if b["groupLabels"]["subject"] == "pillar:durability")["alerts"][0]["pillarwatch"]
    assert (details["low"], details["low_at"], details["value"]) == (0.0, "2026-11-25T14:00:00Z", 100.0)
    assert "It fell as low as 0% on 2026-11-25T14:00:00Z and recovered to 100%." in details["summary"]

    mail = next(m for _, _, m in inbox.received if m["X-Pillarwatch-Event"] == "resolved" and "Durability" in str(m["Subject"]))
    assert str(mail["Subject"]).strip() == "[pillarwatch] svc: Durability is back at 100%"
    text = mail.get_content()
    assert "It fell as low as 0% on 2026-11-25T14:00:00Z and recovered to 100%." in text
    assert "Low point: 0% on 2026-11-25T14:00:00Z    Recovered to: 100%" in text


# --- every channel kind sends a group as one message -------------------------------------


def _group() -> list:
    return [message(), message("resolved", subject="overall", kind="regression", title="Overall is back at 90%",
                               notes=["Overall is back at 90%.", "It fell as low as 70% and recovered to 90%."],
                               fingerprint="ffff000011112222"),
            message(kind="floor", title="Durability is below its floor of 80%: 74%", fingerprint="0000aaaabbbbcccc")]


def test_slack_apprise_and_log_send_a_group_as_one_message(http_server: HttpServer, caplog) -> None:
    http_server.route("/slack", Reply(200, "ok", headers={"Content-Type": "text/plain"}))
    http_server.route("/apprise", Reply(200))
    group_ = _group()
    channels = [SlackChannel(id="s", url=f"{http_server.url}/slack"),
                AppriseChannel(id="a", url=http_server.url.replace("http://", "json://") + "/apprise"),
                LogChannel(id="l")]
    with caplog.at_level(logging.WARNING, logger="pillarwatch.alerts"):
        for channel in channels:
            assert notify(channel, group_, idempotency_key="pw_g1", now=T0).ok
    slack, appr = http_server.requests
    blocks = json.loads(slack.body)["blocks"]
    assert blocks[0]["text"]["text"] == "shop: 3 alerts (2 firing, 1 resolved): Durability fell from 91% to 74%"
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(sections) == 4 and "*Overall is back at 90%*" in sections[1] and "as low as 70%" in sections[1]
    assert sections[3].count("tests/test_restart.py deleted in 3f2a1c9") == 1  # the evidence once for the group
    body = json.loads(appr.body)
    assert body["title"] == "shop: 3 alerts (2 firing, 1 resolved): Durability fell from 91% to 74%"
    assert body["message"].count("[FIRING]") == 2 and body["message"].count("[RESOLVED]") == 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "pillarwatch.alerts"]
    assert line.startswith("group of 3: firing shop pillar:durability") and line.endswith("key=pw_g1")
    assert "resolved shop overall" in line
