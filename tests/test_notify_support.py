"""Shared pieces for the notify tests: messages, a fake clock, an independent signature check.

The verifier here is written from the Standard Webhooks specification with the
standard library only, so the webhook tests do not check the sender's signing
code against itself; it is tested against the specification's own example.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
from datetime import datetime, timedelta, timezone

from daemon.alerting.rules import AlertMessage, OutboxItem
from daemon.changes import CriterionChange, EvidenceChange

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


def message(event: str = "firing", *, project: str = "shop", subject: str = "pillar:durability",
            severity: str = "warning", kind: str = "regression", **extra: object) -> AlertMessage:
    fields: dict[str, object] = dict(
        event=event, project=project, subject=subject, kind=kind, severity=severity,
        title="Durability fell from 91% to 74%",
        summary="Durability fell from 91% to 74%.\nA drop of 17 points since 2026-03-01T08:00:00Z.",
        baseline=91.0, value=74.0, baseline_display="91%", value_display="74%",
        criteria=[CriterionChange(pillar="durability", criterion="restart", title="Survives a restart",
                                  before=1.0, after=0.0, status_before="pass", status_after="fail")],
        evidence=[EvidenceChange(source="ci", signal="workflow", description="workflow durability.yml: success → failure, run 4812",
                                 url="https://ci.example.org/runs/4812"),
                  EvidenceChange(source="repo", signal="file", description="tests/test_restart.py deleted in 3f2a1c9", commit="3f2a1c9")],
        snapshot_id=42, started_at=datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc),
        ended_at=None, fingerprint="a1b2c3d4e5f60718", links=["https://ci.example.org/runs/4812"],
    )
    fields.update(extra)
    if event == "resolved" and "ended_at" not in extra:
        fields["ended_at"] = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    return AlertMessage.model_validate(fields)


def outbox_item(channel: str, key: str, *, created_at: datetime = T0, **extra: object) -> OutboxItem:
    return OutboxItem(channel=channel, idempotency_key=key, message=message(**extra),  # type: ignore[arg-type]
                      created_at=created_at, next_attempt_at=created_at)


class Clock:
    """A fake clock the test moves by hand."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def to(self, moment: datetime) -> datetime:
        self.now = max(self.now, moment)
        return self.now


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, from the specification: HMAC-SHA256 of "id.timestamp.body"."""
    msg_id, timestamp, signatures = headers.get("webhook-id"), headers.get("webhook-timestamp"), headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return False
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for versioned in signatures.split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(signature), expected):
            return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_verifier_accepts_the_specification_example() -> None:
    # The example from the Standard Webhooks reference implementations.
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    body = b'{"test": 2432232314}'
    assert verify_standard_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, body)
    assert not verify_standard_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx", headers, body)
    assert not verify_standard_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, body + b" ")
