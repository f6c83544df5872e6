"""Re-posting firing alerts to Alertmanager before their ``endsAt`` passes.

Alertmanager ends an alert at its ``endsAt``; a firing alert is posted with
``endsAt`` = now + ``hold``. The project's reminders (``repeat_interval``)
would re-post it, but on the project's schedule, not the channel's; so before
each send round :func:`queue_reposts` queues, for every alert still firing
whose latest message to an Alertmanager channel went out ``resend_every`` ago
(default ``hold`` / 3), a copy of that message as a ``reminder``. The copy goes
through the outbox like any message: retried, recorded, at least once.

The check and the queueing happen in one write transaction, and a resolution
is queued in the transaction that resolves the alert, so a copy is never
queued after its alert's resolution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from daemon.alerting.rules import OutboxItem
from daemon.config.alerts import AlertmanagerChannel, Channel
from daemon.scoring.snapshot import rfc3339


class RepostStore(Protocol):
    """What re-posting needs of the store (:class:`daemon.store.Store` is one)."""

    def transaction(self) -> AbstractContextManager[None]: ...
    def last_firing_items(self, channel: str) -> list[OutboxItem]: ...
    def enqueue(self, items: list[OutboxItem]) -> None: ...


def reposts(last: list[OutboxItem], channel: AlertmanagerChannel, *, now: datetime) -> list[OutboxItem]:
    """The copies to queue: one per alert whose latest item went out at least ``resend_interval`` ago.

    An item still pending is left to the sender; a resolution is never re-posted.
    """
    out = []
    for item in last:
        sent = item.delivered_at if item.state == "delivered" else item.created_at
        if item.state == "pending" or item.message.event == "resolved" or sent is None:
            continue
        if now - sent < channel.resend_interval:
            continue
        key = "pw_r" + hashlib.sha256(f"{item.message.fingerprint}:{rfc3339(now)}:{channel.id}".encode()).hexdigest()[:32]
        out.append(OutboxItem(alert_id=item.alert_id, channel=channel.id, idempotency_key=key,
                              message=item.message.model_copy(update={"event": "reminder"}),
                              created_at=now, next_attempt_at=now))
    return out


def queue_reposts(store: RepostStore, channels: Mapping[str, Channel], *, now: datetime) -> int:
    """Queue the re-posts every Alertmanager channel is due; how many were queued."""
    queued = 0
    for channel in channels.values():
        if not isinstance(channel, AlertmanagerChannel):
            continue
        with store.transaction():  # one write transaction: an alert resolved meanwhile is not re-posted
            items = reposts(store.last_firing_items(channel.id), channel, now=now)
            store.enqueue(items)
        queued += len(items)
    return queued
