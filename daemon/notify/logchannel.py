"""The log channel: one line per message on ``pillarwatch.alerts``; it cannot fail."""

from __future__ import annotations

import logging
from datetime import datetime

from ..alerts import AlertMessage
from ._common import SendResult, one_line
from .channels import LogChannel

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
