"""Delivering the outbox: a chain of small stages, Alertmanager-style.

The due items are first gathered into groups (:func:`~daemon.alerting.notify.grouping.group`:
one message per channel and group of alerts); each group then passes through the same stages in order::

    group -> due -> check_dead -> check_disabled -> send -> retry -> record

Every stage has the one signature ``(Attempt, Run) -> Attempt``: it may decide
the attempt's outcome (``delivered``, ``retry``, ``dead``, ``disabled``) and the
stages after it respect that decision. Only :func:`record` writes to the store,
and only after the send stage has run, so a crash mid-send leaves the item
pending and it is sent again: at least once, never lost. The retry loop is the
outbox itself: a failed item gets a later ``next_attempt_at`` and the next call
of :func:`deliver_due`, in this process or after a restart, picks it up.

Channels are independent: each channel's items pass ``due`` to ``send`` in
order on a worker thread of their own (a few at once), so a receiver that
hangs until its timeout delays only its own channel; ``retry`` and ``record``
run on the caller's thread as the results come in. A :class:`SendControl`
bounds a round in time (shutdown) and remembers what is still being sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import queue
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol

from collectors.secrets import SecretMissing, one_line, require_secret
from daemon.alerting.notify import alertmanager, apprise, email, grouping, logchannel, slack, webhook
from daemon.alerting.notify._common import MESSAGE_LIMIT, SendResult
from daemon.alerting.rules import AlertMessage, OutboxItem
from daemon.config.alerts import (
    AlertmanagerChannel,
    AppriseChannel,
    Channel,
    EmailChannel,
    LogChannel,
    SlackChannel,
    WebhookChannel,
)

logger = logging.getLogger("pillarwatch.notify")

Outcome = Literal["delivered", "retry", "dead", "disabled"]

# Exponential backoff with full jitter (AWS Architecture Blog, "Exponential
# Backoff And Jitter"): the delay is uniform in [0, min(cap, base * factor**n)].
# It needs only the attempt count, which the outbox keeps, not the previous delay.
BACKOFF_BASE = 5.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP = 30 * 60.0


class Outbox(Protocol):
    """What delivery needs of the store (:class:`daemon.store.Store` is one): the outbox and the
    channels switched off. Named here so that alerting does not depend on the store."""

    def transaction(self) -> AbstractContextManager[None]: ...
    def due_outbox(self, now: datetime, *, limit: int = 50) -> list[OutboxItem]: ...
    def record_attempt(self, item_id: int, *, at: datetime, outcome: str, status_code: int | None = None,
                       error: str | None = None, next_attempt_at: datetime | None = None) -> None: ...
    def disable_channel(self, channel: str, *, reason: str, at: datetime, config_hash: str | None = None) -> None: ...
    def enable_channel(self, channel: str) -> bool: ...
    def disabled_channel_states(self) -> list[dict[str, Any]]: ...


@dataclass
class Run:
    """What every stage of one :func:`deliver_due` call shares."""

    store: Outbox
    channels: Mapping[str, Channel]
    now: datetime
    rng: random.Random
    dead_after: timedelta = timedelta(days=3)
    disabled: dict[str, str] = field(default_factory=dict)  # channel id -> why; grows on an HTTP 410
    retry_initial: float = BACKOFF_BASE
    retry_max: float = BACKOFF_CAP
    flush: bool = False  # send groups still in their group_wait (collect: its collection is over)


@dataclass(frozen=True)
class Attempt:
    """One outbox item (with the rest of its group, if any) on its way through the stages."""

    item: OutboxItem
    group: tuple[OutboxItem, ...] = ()  # the other items sent in the same message
    skipped: bool = False  # not due: nothing is sent or recorded
    result: SendResult | None = None
    outcome: Outcome | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def decided(self) -> bool:
        return self.skipped or self.outcome is not None

    @property
    def items(self) -> tuple[OutboxItem, ...]:
        return (self.item, *self.group)


Stage = Callable[[Attempt, Run], Attempt]


@dataclass(frozen=True)
class DeliveryReport:
    """How many items of one :func:`deliver_due` call ended in each outcome."""

    delivered: int = 0
    retry: int = 0
    dead: int = 0
    disabled: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.retry + self.dead + self.disabled

    def counts(self) -> dict[str, int]:
        return {"delivered": self.delivered, "to retry": self.retry, "dead": self.dead, "disabled": self.disabled}


# --- the stages ------------------------------------------------------------------------


def due(attempt: Attempt, run: Run) -> Attempt:
    """Skip a group none of whose items is due (``flush``: none is waiting for its first attempt)."""
    if attempt.decided or any(i.next_attempt_at <= run.now or (run.flush and i.attempts == 0) for i in attempt.items):
        return attempt
    return replace(attempt, skipped=True)


def check_dead(attempt: Attempt, run: Run) -> Attempt:
    """Give up, without sending, on an item that has waited longer than ``dead_after``."""
    if attempt.decided or run.now - attempt.item.created_at < run.dead_after:
        return attempt
    error = f"undelivered after {run.dead_after}"
    if attempt.item.last_error:
        error += f"; last error: {attempt.item.last_error}"
    return replace(attempt, outcome="dead", error=error)


def check_disabled(attempt: Attempt, run: Run) -> Attempt:
    """Do not send to a channel that was switched off (its endpoint answered 410)."""
    reason = run.disabled.get(attempt.item.channel)
    if attempt.decided or reason is None:
        return attempt
    return replace(attempt, outcome="disabled", error=f"channel {attempt.item.channel} is disabled: {reason}")


def send(attempt: Attempt, run: Run) -> Attempt:
    """Call the item's channel; a channel no longer configured is a retryable fault."""
    if attempt.decided:
        return attempt
    item = attempt.item
    channel = run.channels.get(item.channel)
    if channel is None:
        # The configuration may get the channel back; dead_after bounds the wait.
        result = SendResult(ok=False, retryable=True, error=f"channel {item.channel} is not configured")
    else:
        result = notify(channel, [i.message for i in attempt.items], idempotency_key=grouping.group_key(attempt.items),
                        now=run.now)
    return replace(attempt, result=result)


def retry(attempt: Attempt, run: Run) -> Attempt:
    """Turn the send result into an outcome; a retryable fault is due again after a backoff."""
    result = attempt.result
    if attempt.decided or result is None:
        return attempt
    if result.ok:
        return replace(attempt, outcome="delivered", error=result.error)
    if result.disable:
        return replace(attempt, outcome="disabled", error=result.error)
    if not result.retryable:
        return replace(attempt, outcome="dead", error=result.error)
    delay = max(backoff(max(i.attempts for i in attempt.items), run.rng, base=run.retry_initial, cap=run.retry_max), result.retry_after or 0.0)
    return replace(attempt, outcome="retry", error=result.error, next_attempt_at=run.now + timedelta(seconds=delay))


def record(attempt: Attempt, run: Run) -> Attempt:
    """Write the attempt; a 410 also switches its channel off for every later item."""
    item, result = attempt.item, attempt.result
    if attempt.skipped or attempt.outcome is None or item.id is None:
        return attempt
    status = result.status_code if result else None
    with run.store.transaction():
        if result is not None and result.disable:
            reason = attempt.error or "the receiver answered 410 Gone"
            channel = run.channels.get(item.channel)
            run.store.disable_channel(item.channel, reason=reason, at=run.now,
                                      config_hash=config_hash(channel) if channel is not None else None)
            run.disabled[item.channel] = reason
        for one in attempt.items:  # the group's message went (or failed) for each of its items
            run.store.record_attempt(
                one.id, at=run.now, outcome=attempt.outcome, status_code=status,  # type: ignore[arg-type]
                error=attempt.error, next_attempt_at=attempt.next_attempt_at,
            )
    level = logging.INFO if attempt.outcome == "delivered" else logging.WARNING
    logger.log(level, "outbox %s to %s: %s%s", ",".join(str(i.id) for i in attempt.items), item.channel, attempt.outcome,
               f" ({attempt.error})" if attempt.error else "")
    return attempt


STAGES: tuple[Stage, ...] = (due, check_dead, check_disabled, send, retry, record)
_ON_WORKER, _ON_CALLER = STAGES[:4], STAGES[4:]  # up to the send per channel; the outcome and its record here


# --- the loop --------------------------------------------------------------------------


# Channels served at once in one round: a hanging receiver holds up only its own channel.
MAX_PARALLEL_CHANNELS = 4


@dataclass
class SendControl:
    """Shared by the rounds of one process: when to stop waiting, and what is still being sent.

    ``deadline`` (``time.monotonic()``) may be set from another thread, as at
    shutdown: a round then starts no new send and returns by it. A send still
    running then is abandoned, its item stays pending and in ``in_flight``, so
    no later round of this process sends it again; the next start does.
    """

    deadline: float = math.inf
    in_flight: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def deliver_due(
    store: Outbox,
    channels: Mapping[str, Channel],
    *,
    now: datetime,
    rng: random.Random | None = None,
    dead_after: timedelta = timedelta(days=3),
    retry_initial: timedelta = timedelta(seconds=BACKOFF_BASE),
    retry_max: timedelta = timedelta(seconds=BACKOFF_CAP),
    limit: int = 50,
    control: SendControl | None = None,
    flush: bool = False,
) -> DeliveryReport:
    """Pass every due outbox item (at most ``limit``), gathered in groups, through the stages once.

    ``flush``: send the groups still within their ``group_wait`` too.

    Each channel's items go in order on a worker of their own (at most
    :data:`MAX_PARALLEL_CHANNELS` at once), through the stages up to ``send``;
    ``retry`` and ``record`` run here, on the caller's thread, which alone
    uses ``store``.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    control = control or SendControl()
    run = Run(
        store, channels, now, rng or random.Random(), dead_after, reenable_changed(store, channels),
        retry_initial=retry_initial.total_seconds(), retry_max=retry_max.total_seconds(), flush=flush,
    )
    with control.lock:  # rows waiting within a group_wait may join a group that is due
        ahead = now + grouping.horizon(channels.values())
        items = [i for i in store.due_outbox(ahead, limit=limit) if i.id not in control.in_flight]
    by_channel: dict[str, list[tuple[OutboxItem, ...]]] = {}
    for batch in grouping.group(items, channels, now=now, dead_after=dead_after, flush=flush):
        by_channel.setdefault(batch[0].channel, []).append(batch)
    todo: queue.SimpleQueue[list[tuple[OutboxItem, ...]]] = queue.SimpleQueue()
    for group in by_channel.values():
        todo.put(group)
    done: queue.SimpleQueue[Attempt | None] = queue.SimpleQueue()  # None: a worker has finished

    def worker() -> None:
        while control.remaining() > 0:
            try:
                group = todo.get_nowait()
            except queue.Empty:
                break
            for batch in group:
                if control.remaining() <= 0:
                    break
                item = batch[0]
                with control.lock:
                    control.in_flight.update(i.id for i in batch)  # type: ignore[misc]
                attempt = Attempt(item, group=batch[1:])
                for stage in _ON_WORKER:
                    attempt = stage(attempt, run)
                if attempt.result is not None and attempt.result.disable:
                    run.disabled.setdefault(item.channel, attempt.result.error or "HTTP 410")  # later items: not sent
                done.put(attempt)
        done.put(None)

    # Daemon threads: one blocked on a receiver never holds up the process's exit.
    workers = [threading.Thread(target=worker, name=f"pillarwatch-send-{n}", daemon=True)
               for n in range(min(MAX_PARALLEL_CHANNELS, len(by_channel)))]
    for thread in workers:
        thread.start()
    counts = dict.fromkeys(("delivered", "retry", "dead", "disabled"), 0)
    finished = 0
    while finished < len(workers):
        wait = control.remaining()
        if wait <= 0:
            logger.warning("delivery round cut at its deadline; %d item(s) still being sent stay pending",
                           len(control.in_flight))
            break
        try:
            attempt = done.get(timeout=min(wait, 1.0))
        except queue.Empty:
            continue
        if attempt is None:
            finished += 1
            continue
        for stage in _ON_CALLER:
            attempt = stage(attempt, run)
        with control.lock:
            control.in_flight.difference_update(i.id for i in attempt.items)
        if attempt.outcome is not None:
            counts[attempt.outcome] += len(attempt.items)
    return DeliveryReport(**counts)


def config_hash(channel: Channel) -> str:
    """A digest of what a channel sends to: its configuration, and the URL a secret names.

    A 410 refuses one configuration; once the channel points elsewhere (a new
    URL in the file or in the environment variable it names) it deserves a try.
    Only the digest is stored, never a secret.
    """
    identity = channel.model_dump(mode="json")
    names = {k: identity[k] for k in ("url_env", "url_file") if identity.get(k)}
    if names:
        try:
            identity["url"] = require_secret("channel URL", env=identity.get("url_env"), file=identity.get("url_file"))
        except SecretMissing:
            pass  # unreadable now: the names alone identify it
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def reenable_changed(store: Outbox, channels: Mapping[str, Channel]) -> dict[str, str]:
    """Switch back on each disabled channel whose configuration changed; the rest stay off (id -> why)."""
    disabled: dict[str, str] = {}
    for row in store.disabled_channel_states():
        channel = channels.get(row["channel"])
        # A row from before hashes were kept (None) cannot tell: give the channel its one more try.
        if channel is not None and row["config_hash"] != config_hash(channel):
            store.enable_channel(row["channel"])
            logger.info("channel %s enabled again: its configuration changed since it was disabled", row["channel"])
        else:
            disabled[row["channel"]] = row["reason"]
    return disabled


def backoff(attempts: int, rng: random.Random, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait after the ``attempts + 1``-th failure: full jitter under a growing ceiling."""
    ceiling = min(cap, base * BACKOFF_FACTOR ** min(attempts, 32))
    return rng.uniform(0.0, ceiling)


def notify(channel: Channel, message: AlertMessage | Sequence[AlertMessage], *, idempotency_key: str,
           now: datetime) -> SendResult:
    """Send one message (or a group's, several) through the channel's kind; a bug in a channel becomes a
    retryable result, not a crash."""
    try:
        match channel:
            case WebhookChannel():
                return webhook.send(channel, message, idempotency_key=idempotency_key, now=now)
            case AlertmanagerChannel():
                return alertmanager.send(channel, message, idempotency_key=idempotency_key, now=now)
            case SlackChannel():
                return slack.send(channel, message, idempotency_key=idempotency_key, now=now)
            case EmailChannel():
                return email.send(channel, message, idempotency_key=idempotency_key, now=now)
            case AppriseChannel():
                return apprise.send(channel, message, idempotency_key=idempotency_key, now=now)
            case LogChannel():
                return logchannel.send(channel, message, idempotency_key=idempotency_key, now=now)
    except Exception as exc:
        # The exception's text may quote a URL or a header, so only its type and
        # where it was raised are logged and kept.
        where = "; ".join(f"{frame.filename}:{frame.lineno}" for frame in traceback.extract_tb(exc.__traceback__)[-3:])
        logger.error("channel %s raised %s at %s", channel.id, type(exc).__name__, where)
        return SendResult(ok=False, retryable=True, error=one_line(f"internal error in the {channel.kind} channel: {type(exc).__name__}", MESSAGE_LIMIT))
    raise TypeError(f"unknown channel kind {channel!r}")
