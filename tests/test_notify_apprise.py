"""The Apprise channel, delivering through Apprise's json:// plugin to a real server on 127.0.0.1."""

from __future__ import annotations

import json
import logging

import pytest

from daemon.alerting.notify import AppriseChannel, apprise
from tests.support.alerts import T0, message, outbox_item
from tests.support.http_server import Reply
from tests.support.ports import free_port


def _apprise_url(server_url: str, path: str, query: str = "") -> str:
    return server_url.replace("http://", "json://") + path + (f"?{query}" if query else "")


def test_a_message_arrives_through_apprise(http_server, monkeypatch) -> None:
    http_server.route("/notify", Reply(200))
    monkeypatch.setenv("PW_APPRISE_URL", _apprise_url(http_server.url, "/notify"))
    result = apprise.send(AppriseChannel(id="ntfy", url_env="PW_APPRISE_URL"), message(), idempotency_key="pw_a1", now=T0)
    assert result.ok, result.error
    [seen] = http_server.requests
    body = json.loads(seen.body)
    assert body["title"] == "Durability fell from 91% to 74%"
    assert body["message"].startswith(message().summary) and body["message"].endswith("https://ci.example.org/runs/4812")
    assert body["type"] == "warning"


@pytest.mark.parametrize(("event", "severity", "notify_type"), [("resolved", "critical", "success"), ("firing", "critical", "failure"),
                                                                 ("reminder", "info", "info")])
def test_notify_type_follows_event_and_severity(http_server, event: str, severity: str, notify_type: str) -> None:
    http_server.route("/notify", Reply(200))
    channel = AppriseChannel(id="a", url=_apprise_url(http_server.url, "/notify"))
    assert apprise.send(channel, message(event, severity=severity), idempotency_key="pw_a2", now=T0).ok
    assert json.loads(http_server.requests[0].body)["type"] == notify_type


@pytest.mark.parametrize("query", ["", "retry=3", "retry=3&wait=0"])
def test_a_500_is_one_request_and_retryable(http_server, query: str) -> None:
    # Apprise would retry 3 times for ?retry=3; the outbox owns retries, so exactly one request goes out.
    http_server.route("/notify", Reply(500))
    channel = AppriseChannel(id="a", url=_apprise_url(http_server.url, "/notify", query))
    result = apprise.send(channel, message(), idempotency_key="pw_a3", now=T0)
    assert not result.ok and result.retryable
    assert len(http_server.requests) == 1
    shown = http_server.url.replace("http://", "json://") + "/***" + (f"?{query}" if query else "")
    assert result.error == f"{shown}: Failed to send JSON POST notification: Internal server error., error=500."


def test_an_unreachable_service_is_retryable() -> None:
    port = free_port()
    channel = AppriseChannel(id="a", url=f"json://127.0.0.1:{port}/notify")
    result = apprise.send(channel, message(), idempotency_key="pw_a4", now=T0)
    assert not result.ok and result.retryable and result.error.startswith(f"json://127.0.0.1:{port}/***: ")


def test_a_url_apprise_does_not_know_is_retryable() -> None:
    result = apprise.send(AppriseChannel(id="a", url="nosuchscheme://token@host/x"), message(), idempotency_key="pw_a5", now=T0)
    assert (result.ok, result.retryable, result.error) == (False, True, "nosuchscheme://***/***: not a URL Apprise can use")


def test_apprise_logs_keep_url_secrets_out(http_server, caplog) -> None:
    http_server.route("/hooks/t0ps3cr3t-path", Reply(500))
    url = http_server.url.replace("http://", "json://user:pa55w0rd-secret@") + "/hooks/t0ps3cr3t-path?token=qu3ry-s3cr3t"
    with caplog.at_level(logging.DEBUG):
        result = apprise.send(AppriseChannel(id="a", url=url), message(), idempotency_key="pw_a6", now=T0)
    assert not result.ok and len(http_server.requests) == 1
    text = caplog.text + (result.error or "")
    assert caplog.records  # Apprise did log its warning
    for secret in ("pa55w0rd-secret", "t0ps3cr3t-path", "qu3ry-s3cr3t"):
        assert secret not in text


@pytest.mark.parametrize(("status", "retryable", "disable"), [(400, False, False), (404, False, False), (410, False, True),
                                                               (429, True, False), (503, True, False)])
def test_a_permanent_4xx_is_not_retried(http_server, status: int, retryable: bool, disable: bool) -> None:
    http_server.route("/notify", Reply(status, "no"))
    channel = AppriseChannel(id="a", url=_apprise_url(http_server.url, "/notify"))
    result = apprise.send(channel, message(), idempotency_key="pw_a7", now=T0)
    assert (result.ok, result.retryable, result.disable, result.status_code) == (False, retryable, disable, status)


def test_a_400_through_apprise_goes_dead_at_once(tmp_path, http_server) -> None:
    from daemon.alerting.notify import DeliveryReport, deliver_due
    from daemon.store import Store

    http_server.route("/notify", Reply(400, "bad request"))
    channels = {"ntfy": AppriseChannel(id="ntfy", url=_apprise_url(http_server.url, "/notify"))}
    with Store.open(tmp_path / "pw.db") as store:
        store.enqueue([outbox_item("ntfy", "pw_a8")])
        assert deliver_due(store, channels, now=T0) == DeliveryReport(dead=1)
        [item] = store.outbox_items()
        assert item.state == "dead" and "error=400" in (item.last_error or "")
        assert store.attempts(item.id)[0]["status_code"] == 400
    assert len(http_server.requests) == 1
