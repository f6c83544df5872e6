"""Alertmanager as a channel: alerts pushed to its API, ``POST /api/v2/alerts``.

Alertmanager then owns them: its silences, inhibitions, grouping and receivers
apply, as to an alert from Prometheus. A firing alert (and each reminder) is
posted with ``endsAt`` ``hold`` ahead, so it stays active while pillarwatch
keeps re-posting it (every ``resend_every``, :mod:`daemon.alerting.notify.repost`)
and ends by itself if pillarwatch stops; a resolution is posted with ``endsAt`` = now,
which ends it at once. The channel does not group: each alert keeps its own labels.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote

from collectors.secrets import SecretMissing, read_secret, require_secret
from daemon.alerting.notify._common import SendResult, failed
from daemon.alerting.notify._http import post
from daemon.alerting.notify.grouping import as_list, labels
from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import AlertmanagerChannel
from daemon.scoring.snapshot import rfc3339

_EVIDENCE_LINES = 20  # evidence lines in the annotation; the rest is counted


def send(channel: AlertmanagerChannel, message: AlertMessage | Sequence[AlertMessage], *, idempotency_key: str,
         now: datetime) -> SendResult:
    """POST each message as an alert with its own labels (Alertmanager groups them itself)."""
    where = f"alertmanager {channel.id}"
    try:
        headers, secrets = _auth(channel)
        verify = _tls(channel.ca_file) if channel.ca_file else None
    except (SecretMissing, OSError, ssl.SSLError) as exc:
        return failed(f"{where}: {exc}")
    body = json.dumps([alert(channel, m, now=now) for m in as_list(message)], ensure_ascii=False, separators=(",", ":"))
    headers = {**headers, "Content-Type": "application/json", "Idempotency-Key": idempotency_key}
    return post(f"{channel.url}/api/v2/alerts", body.encode(), headers, timeout=channel.timeout_seconds, now=now,
                secrets=secrets, verify=verify)


def alert(channel: AlertmanagerChannel, message: AlertMessage, *, now: datetime) -> dict[str, Any]:
    """The alert as Alertmanager's API takes it (``postableAlert``)."""
    resolved = message.event == "resolved"
    # Alertmanager takes a resolution only when its endsAt has passed by its own clock: never later than now.
    ends = min(message.ended_at or now, now) if resolved else now + channel.hold
    lines = [e.description + (f" <{e.url}>" if e.url else "") for e in message.evidence]
    evidence = "\n".join(lines[:_EVIDENCE_LINES] + ([f"… and {len(lines) - _EVIDENCE_LINES} more"]
                                                    if len(lines) > _EVIDENCE_LINES else []))
    annotations = {"summary": message.title, "description": message.summary}
    if evidence:
        annotations["evidence"] = evidence
    body: dict[str, Any] = {
        "labels": labels(message),
        "annotations": annotations,
        "startsAt": rfc3339(message.started_at),
        "endsAt": rfc3339(max(ends, message.started_at)),
    }
    if channel.dashboard_url:
        body["generatorURL"] = f"{channel.dashboard_url}/projects/{quote(message.project, safe='')}/dashboard"
    return body


def _auth(channel: AlertmanagerChannel) -> tuple[dict[str, str], list[str | None]]:
    if channel.bearer_token_env or channel.bearer_token_file:
        token = require_secret("bearer token", env=channel.bearer_token_env, file=channel.bearer_token_file)
        return {"Authorization": f"Bearer {token}"}, [token]
    if channel.username_env:
        user = require_secret("basic-auth user", env=channel.username_env)
        password = read_secret(env=channel.password_env) or ""
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {encoded}"}, [password, encoded]
    return {}, []


@cache
def _tls(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)
