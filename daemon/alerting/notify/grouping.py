"""Grouping: one message per channel for every alert of a group, after Alertmanager's ``group_by`` and ``group_wait``.

A collection often changes several alerts of a project at once (a pillar's
regression, its floor, the overall drop). Each becomes one outbox row per
channel; :func:`group` gathers the rows of one channel whose messages share the
values of the channel's ``group_by`` labels, so that the channel sends them as
one message. A new row is queued ``group_wait`` ahead (:func:`wait`); when the
first row of a group is due, every row of that group still waiting for its
first attempt goes with it: alerts that land within the wait, from the same
collection or the next ones, share one message.

A channel without ``group_by`` (Alertmanager, which groups by itself) gets each
row alone. Pure functions: the sender passes the rows and the clock.

The rest of this module is what every channel's rendering of a group shares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from daemon.alerting.rules import AlertMessage, OutboxItem
from daemon.changes import CriterionChange, EvidenceChange
from daemon.config.alerts import Channel

ALL_LABELS = "..."
TAGS = {"firing": "FIRING", "reminder": "FIRING", "resolved": "RESOLVED"}


def group_by(channel: Channel | None) -> list[str] | None:
    """The labels the channel groups by; None for a channel that sends each message alone."""
    return getattr(channel, "group_by", None) or None


def wait(channel: Channel | None) -> timedelta:
    """How long a new message waits for others of its group before it is sent (Alertmanager's ``group_wait``)."""
    return getattr(channel, "group_wait", None) or timedelta(0)


def horizon(channels: Iterable[Channel]) -> timedelta:
    """The longest wait of any channel: how far ahead the sender looks for rows that may join a due group."""
    return max((wait(c) for c in channels), default=timedelta(0))


def labels(message: AlertMessage) -> dict[str, str]:
    """An alert's labels, as Alertmanager would see them (the webhook and Alertmanager bodies carry the same)."""
    names = {"regression": "PillarRegression", "floor": "PillarBelowFloor", "source_failing": "SourceFailing"}
    out = {"alertname": names[message.kind], "project": message.project, "subject": message.subject}
    if message.subject.startswith("pillar:"):
        out["pillar"] = message.subject.removeprefix("pillar:")
    out["severity"] = message.severity
    return out


def group_labels(message: AlertMessage, by: Sequence[str]) -> dict[str, str]:
    """The values of the ``by`` labels that identify the message's group (every label for ``...``)."""
    mine = labels(message)
    if ALL_LABELS in by:
        return mine
    return {name: mine[name] for name in by if name in mine}


def group(items: Sequence[OutboxItem], channels: Mapping[str, Channel], *, now: datetime, dead_after: timedelta,
          flush: bool = False) -> list[tuple[OutboxItem, ...]]:
    """The rows to send now, in groups: each tuple is one message to one channel, its rows oldest first.

    A group is sent when one of its rows is due (``flush``: when one is waiting
    for its first attempt, as ``collect`` does: its collection is over). Rows
    of the group still waiting for their first attempt go with it; rows backing
    off after a failure wait for their own time. A row past ``dead_after``, or
    for a channel that does not group (or is not configured), goes alone.
    """
    groups: dict[tuple[object, ...], list[OutboxItem]] = {}
    for item in items:
        by = group_by(channels.get(item.channel))
        if by is None or now - item.created_at >= dead_after:
            key: tuple[object, ...] = ("alone", item.id, item.idempotency_key)
        else:
            key = (item.channel, tuple(sorted(group_labels(item.message, by).items())))
        groups.setdefault(key, []).append(item)
    ready = []
    for rows in groups.values():
        if not any(r.next_attempt_at <= now or (flush and r.attempts == 0) for r in rows):
            continue
        members = [r for r in rows if r.next_attempt_at <= now or r.attempts == 0]
        ready.append(tuple(sorted(members, key=lambda r: (r.created_at, r.id or 0))))
    return ready


def group_key(items: Sequence[OutboxItem]) -> str:
    """The idempotency key of a group's message: the row's own for one row, else one made of all of theirs."""
    if len(items) == 1:
        return items[0].idempotency_key
    joined = "\0".join(sorted(i.idempotency_key for i in items))
    return "pw_g" + hashlib.sha256(joined.encode()).hexdigest()[:32]


# --- what the channels' renderings share -----------------------------------------------


def as_list(messages: AlertMessage | Sequence[AlertMessage]) -> list[AlertMessage]:
    return [messages] if isinstance(messages, AlertMessage) else list(messages)


def heading(messages: Sequence[AlertMessage]) -> str:
    """One line for a group: the single message's title, or ``N alerts (2 firing, 1 resolved): first title``."""
    if len(messages) == 1:
        return messages[0].title
    firing = sum(m.event != "resolved" for m in messages)
    counts = ", ".join(part for part in (f"{firing} firing" if firing else "",
                                         f"{len(messages) - firing} resolved" if firing < len(messages) else "") if part)
    return f"{len(messages)} alerts ({counts}): {messages[0].title}"


def notes(message: AlertMessage) -> list[str]:
    """What happened, above the criteria and evidence (a message queued before notes were kept: its title)."""
    return message.notes or [message.title + "."]


def criteria(messages: Sequence[AlertMessage]) -> list[CriterionChange]:
    """The criteria that moved in any of the messages, each once."""
    seen: dict[tuple[str, str], CriterionChange] = {}
    for message in messages:
        for change in message.criteria:
            seen.setdefault((change.pillar, change.criterion), change)
    return list(seen.values())


def evidence(messages: Sequence[AlertMessage]) -> list[EvidenceChange]:
    """The evidence that changed in any of the messages, each line once."""
    seen: dict[tuple[str, str | None], EvidenceChange] = {}
    for message in messages:
        for change in message.evidence:
            seen.setdefault((change.description, change.url), change)
    return list(seen.values())


def links(messages: Sequence[AlertMessage]) -> list[str]:
    return list(dict.fromkeys(link for m in messages for link in m.links))
