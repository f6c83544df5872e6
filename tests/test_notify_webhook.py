"""The webhook channel against a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from daemon.alerting.notify import WebhookChannel, webhook
from tests.support.alerts import T0, message
from tests.support.http_server import Reply, Seen
from tests.support.ports import free_port
from tests.support.webhooks import verify_standard_webhook

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _channel(server_url: str, **extra: object) -> WebhookChannel:
    return WebhookChannel.model_validate({"id": "ops-hook", "url": f"{server_url}/hook", "secret_env": "PW_HOOK_SECRET", **extra})


def test_signed_alertmanager_payload_verifies_at_the_receiver(http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_HOOK_SECRET", SECRET)
    verified: list[dict] = []

    def receiver(seen: Seen) -> Reply:
        # The receiver checks with code that shares nothing with the sender's.
        assert verify_standard_webhook(SECRET, seen.headers, seen.body)
        verified.append(Webhook(SECRET).verify(seen.body, seen.headers))
        return Reply(204)

    http_server.route("/hook", receiver)
    now = datetime.now(timezone.utc)  # the library checks the timestamp against the wall clock
    result = webhook.send(_channel(http_server.url, headers={"X-Team": "core"}), message(),
                          idempotency_key="pw_0123abcd", now=now)

    assert result.ok and result.status_code == 204 and result.error is None
    [seen] = http_server.requests
    assert seen.headers["webhook-id"] == seen.headers["idempotency-key"] == "pw_0123abcd"
    assert seen.headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert seen.headers["content-type"] == "application/json" and seen.headers["x-team"] == "core"
    [body] = verified
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "ops-hook"
    assert body["truncatedAlerts"] == 0 and body["externalURL"] == ""
    labels = {"alertname": "PillarRegression", "project": "shop", "subject": "pillar:durability",
              "pillar": "durability", "severity": "warning"}
    annotations = {"summary": "Durability fell from 91% to 74%", "description": message().summary}
    assert body["commonLabels"] == labels and body["commonAnnotations"] == annotations
    assert body["groupLabels"] == {"project": "shop"}  # the channel's group_by (default: project)
    assert body["groupKey"] == '{}:{project="shop"}'
    assert body["alerts"] == [{
        "status": "firing", "labels": labels, "annotations": annotations,
        "startsAt": "2026-03-01T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://ci.example.org/runs/4812", "fingerprint": "a1b2c3d4e5f60718",
        "pillarwatch": body["pillarwatch"],
    }]
    details = body["pillarwatch"]
    assert details["event"] == "firing" and details["baseline"] == 91.0 and details["value"] == 74.0
    assert details["criteria"][0]["criterion"] == "restart" and details["criteria"][0]["status_after"] == "fail"
    assert [e["description"] for e in details["evidence"]] == [
        "workflow durability.yml: success → failure, run 4812", "tests/test_restart.py deleted in 3f2a1c9"]


def test_a_wrong_secret_fails_verification(http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_HOOK_SECRET", "whsec_" + "A" * 32)
    http_server.route("/hook", Reply(200))
    assert webhook.send(_channel(http_server.url), message(), idempotency_key="pw_1", now=datetime.now(timezone.utc)).ok
    [seen] = http_server.requests
    assert not verify_standard_webhook(SECRET, seen.headers, seen.body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(seen.body, seen.headers)


def test_a_raw_secret_from_a_file_is_used_as_its_bytes(http_server, tmp_path) -> None:
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text("correct horse battery staple\n")
    http_server.route("/hook", Reply(200))
    channel = _channel(http_server.url, secret_env=None, secret_file=str(secret_file))
    assert webhook.send(channel, message(), idempotency_key="pw_2", now=datetime.now(timezone.utc)).ok
    [seen] = http_server.requests
    assert verify_standard_webhook("correct horse battery staple", seen.headers, seen.body)
    Webhook(b"correct horse battery staple").verify(seen.body, seen.headers)


@pytest.mark.parametrize(
    ("event", "status", "ends_at"),
    [
        ("firing", "firing", "0001-01-01T00:00:00Z"),
        ("reminder", "firing", "0001-01-01T00:00:00Z"),
        ("resolved", "resolved", "2026-03-02T08:00:00Z"),
    ],
)
def test_event_maps_to_alertmanager_status(event: str, status: str, ends_at: str) -> None:
    body = webhook.payload(WebhookChannel(id="h", url="http://x.invalid/"), message(event))
    assert body["status"] == body["alerts"][0]["status"] == status
    assert body["alerts"][0]["endsAt"] == ends_at
    assert body["pillarwatch"]["event"] == event


@pytest.mark.parametrize(
    ("kind", "subject", "alertname", "pillar"),
    [
        ("regression", "pillar:durability", "PillarRegression", "durability"),
        ("floor", "overall", "PillarBelowFloor", None),
        ("source_failing", "source:ci", "SourceFailing", None),
    ],
)
def test_labels_name_the_alert(kind: str, subject: str, alertname: str, pillar: str | None) -> None:
    labels = webhook.payload(WebhookChannel(id="h", url="http://x.invalid/"), message(kind=kind, subject=subject))["commonLabels"]
    assert labels["alertname"] == alertname and labels["subject"] == subject
    assert labels.get("pillar") == pillar


RETRY_DATE = format_datetime(T0 + timedelta(seconds=120), usegmt=True)


@pytest.mark.parametrize(
    ("reply", "ok", "retryable", "disable", "retry_after"),
    [
        (Reply(200), True, False, False, None),
        (Reply(202, "queued"), True, False, False, None),
        (Reply(301, headers={"Location": "http://elsewhere.invalid/"}), False, False, False, None),
        (Reply(400, "bad payload"), False, False, False, None),
        (Reply(401), False, False, False, None),
        (Reply(404), False, False, False, None),
        (Reply(408), False, True, False, None),
        (Reply(410, "gone"), False, False, True, None),
        (Reply(425), False, True, False, None),
        (Reply(429, headers={"Retry-After": "30"}), False, True, False, 30.0),
        (Reply(429, headers={"Retry-After": RETRY_DATE}), False, True, False, 120.0),
        (Reply(500), False, True, False, None),
        (Reply(503, headers={"Retry-After": "7"}), False, True, False, 7.0),
    ],
)
def test_status_codes_classify_the_attempt(http_server, reply: Reply, ok: bool, retryable: bool,
                                           disable: bool, retry_after: float | None) -> None:
    http_server.route("/hook", reply)
    channel = WebhookChannel(id="h", url=f"{http_server.url}/hook")
    result = webhook.send(channel, message(), idempotency_key="pw_3", now=T0)
    assert (result.ok, result.retryable, result.disable, result.retry_after) == (ok, retryable, disable, retry_after)
    assert result.status_code == reply.status
    assert len(http_server.requests) == 1  # redirects are not followed
    if not ok:
        assert result.error and result.error.startswith(f"{http_server.url}/hook: HTTP {reply.status}")


def test_an_unsigned_channel_still_sends_id_and_timestamp(http_server) -> None:
    http_server.route("/hook", Reply(200))
    assert webhook.send(WebhookChannel(id="h", url=f"{http_server.url}/hook"), message(), idempotency_key="pw_4", now=T0).ok
    [seen] = http_server.requests
    assert seen.headers["webhook-id"] == "pw_4" and seen.headers["webhook-timestamp"] == str(int(T0.timestamp()))
    assert "webhook-signature" not in seen.headers


def test_refused_connection_and_timeout_are_retryable(http_server) -> None:
    port = free_port()
    refused = webhook.send(WebhookChannel(id="h", url=f"http://127.0.0.1:{port}/hook?token=s3cr3t-token"),
                           message(), idempotency_key="pw_5", now=T0)
    assert not refused.ok and refused.retryable and refused.status_code is None
    assert refused.error.startswith(f"http://127.0.0.1:{port}/hook?token=***: ConnectError") and "s3cr3t" not in refused.error

    http_server.route("/slow", Reply(200, delay=2))
    slow = webhook.send(WebhookChannel(id="h", url=f"{http_server.url}/slow", timeout_seconds=0.3),
                        message(), idempotency_key="pw_6", now=T0)
    assert not slow.ok and slow.retryable and slow.error == f"{http_server.url}/slow: no answer within 0.3 s"


@pytest.mark.parametrize(
    ("env", "error"),
    [
        (None, "webhook ops-hook: signing secret: environment variable PW_HOOK_SECRET is not set"),
        ("whsec_!!notbase64!!", "webhook ops-hook: the whsec_ secret is not valid base64"),
    ],
)
def test_a_missing_or_broken_secret_is_retryable_and_sends_nothing(http_server, monkeypatch, env: str | None, error: str) -> None:
    if env is None:
        monkeypatch.delenv("PW_HOOK_SECRET", raising=False)
    else:
        monkeypatch.setenv("PW_HOOK_SECRET", env)
    result = webhook.send(_channel(http_server.url), message(), idempotency_key="pw_7", now=T0)
    assert (result.ok, result.retryable, result.error) == (False, True, error)
    assert http_server.requests == []


def test_body_is_the_exact_signed_json(http_server, monkeypatch) -> None:
    monkeypatch.setenv("PW_HOOK_SECRET", SECRET)
    http_server.route("/hook", Reply(200))
    webhook.send(_channel(http_server.url), message(title="Durabilité fell ≥ 10%"), idempotency_key="pw_8", now=T0)
    [seen] = http_server.requests
    assert json.loads(seen.body)["commonAnnotations"]["summary"] == "Durabilité fell ≥ 10%"
    assert verify_standard_webhook(SECRET, seen.headers, seen.body)
