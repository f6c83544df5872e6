"""The log channel: one line per message on ``pillarwatch.alerts``; it cannot fail."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from collectors.secrets import one_line
from daemon.alerting.notify import grouping
from daemon.alerting.notify._common import SendResult
from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import LogChannel

logger = logging.getLogger("pillarwatch.alerts")


def send(channel: LogChannel, message: AlertMessage | Sequence[AlertMessage], *, idempotency_key: str,
         now: datetime) -> SendResult:
    """Write the message as one line at the channel's level; a group's alerts share the line, ``; `` apart."""
    messages = grouping.as_list(message)
    alerts = "; ".join(f"{m.event} {m.project} {m.subject} [{m.severity}] {one_line(m.title, 500)} "
                       f"({m.baseline_display} -> {m.value_display})" for m in messages)
    group = f"group of {len(messages)}: " if len(messages) > 1 else ""
    logger.log(logging.getLevelName(channel.level.upper()), "%s%s key=%s", group, alerts, idempotency_key)
    return SendResult(ok=True, retryable=False)
