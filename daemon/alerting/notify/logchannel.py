"""The log channel: one line per message on ``pillarwatch.alerts``; it cannot fail."""

from __future__ import annotations

import logging
from datetime import datetime

from collectors.secrets import one_line
from daemon.alerting.notify._common import SendResult
from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import LogChannel

logger = logging.getLogger("pillarwatch.alerts")


def send(channel: LogChannel, message: AlertMessage, *, idempotency_key: str, now: datetime) -> SendResult:
    """Write the message as one line at the channel's level."""
    logger.log(
        logging.getLevelName(channel.level.upper()),
        "%s %s %s [%s] %s (%s -> %s) key=%s",
        message.event, message.project, message.subject, message.severity, one_line(message.title, 500),
        message.baseline_display, message.value_display, idempotency_key,
    )
    return SendResult(ok=True, retryable=False)
