"""The generic webhook: Alertmanager's webhook payload (version 4), signed per Standard Webhooks.

A receiver written for Alertmanager reads the usual fields; pillarwatch's own
details (baseline and value, criteria, evidence) travel under ``pillarwatch`` in
each alert (and, for receivers written for one alert per body, the first
alert's under ``pillarwatch`` at the top). One body lists every alert of a group.
The signature follows https://www.standardwebhooks.com: ``webhook-id`` is the
idempotency key, so a receiver can drop a retried copy it already took.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from standardwebhooks.webhooks import Webhook

from collectors.secrets import SecretMissing, require_secret
from daemon.alerting.notify._common import SendResult, failed
from daemon.alerting.notify._http import post
from daemon.alerting.notify.grouping import as_list, group_labels, labels
from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import WebhookChannel
from daemon.scoring.snapshot import rfc3339

# Alertmanager writes the zero time as endsAt while an alert fires.
_ZERO_TIME = "0001-01-01T00:00:00Z"
_SECRET_PREFIX = "whsec_"


def send(channel: WebhookChannel, message: AlertMessage | Sequence[AlertMessage], *, idempotency_key: str,
         now: datetime) -> SendResult:
    """POST the message (a group's alerts, in one body) as signed JSON."""
    try:
        named = channel.secret_env or channel.secret_file  # a webhook may go unsigned
        secret = require_secret("signing secret", env=channel.secret_env, file=channel.secret_file) if named else None
        key = _signing_key(secret) if secret else None
    except (SecretMissing, ValueError) as exc:
        return failed(f"webhook {channel.id}: {exc}")
    body = json.dumps(payload(channel, message), ensure_ascii=False, separators=(",", ":"))
    headers = {
        **channel.headers,
        "Content-Type": "application/json",
        "Idempotency-Key": idempotency_key,
        **signature_headers(key, idempotency_key, now, body),
    }
    return post(channel.url, body.encode(), headers, timeout=channel.timeout_seconds, now=now, secrets=[secret])


def payload(channel: WebhookChannel, message: AlertMessage | Sequence[AlertMessage]) -> dict[str, Any]:
    """The JSON body: Alertmanager's webhook fields, one alert per message of the group, plus ``pillarwatch``."""
    messages = as_list(message)
    alerts = [_alert(m) for m in messages]
    common_labels = _common([a["labels"] for a in alerts])
    group = group_labels(messages[0], channel.group_by)
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": "{}:{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": channel.id,
        "groupLabels": group,
        "commonLabels": common_labels,
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": "",
        "alerts": alerts,
        "pillarwatch": alerts[0]["pillarwatch"],
    }


def _alert(message: AlertMessage) -> dict[str, Any]:
    status = "resolved" if message.event == "resolved" else "firing"  # a reminder is still firing
    return {
        "status": status,
        "labels": labels(message),
        "annotations": {"summary": message.title, "description": message.summary},
        "startsAt": rfc3339(message.started_at),
        "endsAt": rfc3339(message.ended_at) if status == "resolved" and message.ended_at else _ZERO_TIME,
        "generatorURL": message.links[0] if message.links else "",
        "fingerprint": message.fingerprint,
        "pillarwatch": message.model_dump(mode="json"),
    }


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The pairs every map has (Alertmanager's commonLabels and commonAnnotations)."""
    return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}


def signature_headers(key: bytes | None, msg_id: str, now: datetime, body: str) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and, with a key, ``webhook-signature``."""
    timestamp = int(now.timestamp())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if key is not None:
        # The library reads the time as UTC wall-clock fields, so give it exactly that.
        moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
        headers["webhook-signature"] = Webhook(key).sign(msg_id, moment, body)
    return headers


def _signing_key(secret: str) -> bytes:
    """A "whsec_" secret is base64 after its prefix; any other secret is used as its bytes."""
    if not secret.startswith(_SECRET_PREFIX):
        return secret.encode()
    encoded = secret[len(_SECRET_PREFIX):]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("the whsec_ secret is not valid base64") from None
    if not key:
        raise ValueError("the whsec_ secret is empty")
    return key
