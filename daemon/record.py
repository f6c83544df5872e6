"""Recording a run: score, store the snapshot, evaluate alerts and queue their messages.

The snapshot, the alert state and the outbox items it causes are written in
one transaction: after a crash either all of them exist or none does, so no
alert is lost and none is queued twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel

from collectors.evidence import CollectResult

from .alerts import Alert, AlertMessage, OutboxItem
from .config import Config, Project
from .notify import Channel, DeliveryReport, LogChannel, SendControl, deliver_due, route
from .regressions import evaluate, rescore
from .scoring import score_project
from .snapshot import Snapshot, rfc3339
from .store import Store


class Recorded(BaseModel):
    snapshot: Snapshot
    alerts: list[Alert]
    messages: list[AlertMessage]
    queued: int


def record(store: Store, config: Config, project: Project, results: Sequence[CollectResult], *, now: datetime) -> Recorded:
    """Score one project from its sources' results and record everything that follows."""
    previous = store.latest(project.id)
    snapshot = score_project(project, results, previous=previous, now=now)
    # A change of rules is not a regression: compare with the previous evidence under the new rules.
    baseline = previous
    if previous is not None and previous.rules_hash != snapshot.rules_hash:
        baseline = rescore(project, previous, now=now)
    with store.transaction():
        saved = store.save_snapshot(snapshot)
        evaluation = evaluate(
            project, saved, baseline, store.open_alerts(project.id),
            failing_since=store.failing_since(project.id), decimals=config.display.decimals, now=now,
        )
        alerts = store.save_alerts(evaluation.alerts)
        by_fingerprint = {a.fingerprint: a.id for a in alerts}
        items = [
            OutboxItem(
                alert_id=by_fingerprint.get(message.fingerprint),
                channel=channel,
                idempotency_key=_idempotency_key(message, channel, now),
                message=message,
                created_at=now,
                next_attempt_at=now,
            )
            for message in evaluation.messages
            for channel in channels_for(config, message)
        ]
        store.enqueue(items)
    return Recorded(snapshot=saved, alerts=alerts, messages=evaluation.messages, queued=len(items))


def deliver_pending(store: Store, config: Config, *, now: datetime, control: SendControl | None = None) -> DeliveryReport:
    """Send what is due in the outbox through the configured channels (``log`` always exists).

    ``control``: the daemon's, shared by its rounds, to bound a round at shutdown.
    """
    channels: dict[str, Channel] = {c.id: c for c in config.channels}
    channels.setdefault("log", LogChannel(kind="log", id="log"))
    settings = config.daemon
    return deliver_due(
        store, channels, now=now, dead_after=settings.dead_after,
        retry_initial=settings.retry_initial, retry_max=settings.retry_max, control=control,
    )


def channels_for(config: Config, message: AlertMessage) -> list[str]:
    """The channels a message goes to: by the routes, or every channel when none is given."""
    if config.routes:
        return route(message, config.routes)
    return [c.id for c in config.channels] or ["log"]


def _idempotency_key(message: AlertMessage, channel: str, now: datetime) -> str:
    text = f"{message.fingerprint}:{message.event}:{rfc3339(now)}:{channel}"
    return "pw_" + hashlib.sha256(text.encode()).hexdigest()[:32]
