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
from daemon.alerting.evaluate import evaluate, needs_rebase, rebase, rescore
from daemon.alerting.notify import Channel, DeliveryReport, LogChannel, SendControl, deliver_due, route
from daemon.alerting.notify.grouping import wait
from daemon.alerting.notify.repost import queue_reposts
from daemon.alerting.rules import Alert, AlertMessage, OutboxItem
from daemon.config.model import Config, Project
from daemon.errors import NotFound
from daemon.queries import commit_blame
from daemon.scoring.score import score_project
from daemon.scoring.snapshot import Snapshot, rfc3339
from daemon.store import Store


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
        open_alerts = _rebased(store, project, saved, store.open_alerts(project.id),
                               rules_changed=previous is not None and previous.rules_hash != snapshot.rules_hash, now=now)
        evaluation = evaluate(
            project, saved, baseline, open_alerts,
            failing_since=store.failing_since(project.id), decimals=config.display.decimals, now=now,
            blame=commit_blame(config, project),
        )
        alerts = store.save_alerts(evaluation.alerts)
        by_fingerprint = {a.fingerprint: a.id for a in alerts}
        channels = configured_channels(config)
        items = [
            OutboxItem(
                alert_id=by_fingerprint.get(message.fingerprint),
                channel=channel,
                idempotency_key=_idempotency_key(message, channel, now),
                message=message,
                created_at=now,
                next_attempt_at=now + wait(channels.get(channel)),  # its group's wait for more alerts
            )
            for message in evaluation.messages
            for channel in channels_for(config, message)
        ]
        store.enqueue(items)
    return Recorded(snapshot=saved, alerts=alerts, messages=evaluation.messages, queued=len(items))


def _rebased(store: Store, project: Project, current: Snapshot, open_alerts: list[Alert], *,
             rules_changed: bool, now: datetime) -> list[Alert]:
    """The open alerts, those with a baseline under older rules re-scored under the current ones (and saved)."""
    stale = [a for a in open_alerts if needs_rebase(a, current.rules_hash, rules_changed=rules_changed)]
    baselines: dict[int, Snapshot] = {}
    for alert in stale:
        try:
            if alert.baseline_snapshot_id is not None:
                found: Snapshot | None = store.get(alert.baseline_snapshot_id)
            else:  # stored before baselines were kept: the snapshot before the one it fired on
                found = store.previous(store.get(alert.snapshot_id)) if alert.snapshot_id is not None else None
        except NotFound:
            found = None  # pruned: the alert keeps its baseline
        if found is not None and alert.id is not None:
            baselines[alert.id] = found
    rebased = {a.id: a for a in store.save_alerts(rebase(project, current, stale, baselines, now=now))}
    return [rebased.get(a.id, a) for a in open_alerts]


def configured_channels(config: Config) -> dict[str, Channel]:
    """The configuration's channels by id, and ``log``, which always exists."""
    channels: dict[str, Channel] = {c.id: c for c in config.channels}
    channels.setdefault("log", LogChannel(kind="log", id="log"))
    return channels


def deliver_pending(store: Store, config: Config, *, now: datetime, control: SendControl | None = None,
                    flush: bool = False) -> DeliveryReport:
    """Queue the re-posts Alertmanager channels are due, then send what is due in the outbox.

    ``control``: the daemon's, shared by its rounds, to bound a round at shutdown.
    ``flush``: send groups still within their ``group_wait`` (``collect``: its collection is over).
    """
    channels = configured_channels(config)
    queue_reposts(store, channels, now=now)
    settings = config.daemon
    return deliver_due(
        store, channels, now=now, dead_after=settings.dead_after,
        retry_initial=settings.retry_initial, retry_max=settings.retry_max, control=control, flush=flush,
    )


def channels_for(config: Config, message: AlertMessage) -> list[str]:
    """The channels a message goes to: by the routes, or every channel when none is given."""
    if config.routes:
        return route(message, config.routes)
    return [c.id for c in config.channels] or ["log"]


def _idempotency_key(message: AlertMessage, channel: str, now: datetime) -> str:
    text = f"{message.fingerprint}:{message.event}:{rfc3339(now)}:{channel}"
    return "pw_" + hashlib.sha256(text.encode()).hexdigest()[:32]
