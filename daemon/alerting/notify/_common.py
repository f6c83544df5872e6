"""What every channel shares: the send result, Retry-After, and the guard on the senders' logs.

Secrets (webhook keys, SMTP passwords, Slack and Apprise URLs) are read from
the environment or a file at send time (:mod:`collectors.secrets`), so they are
never in the database; every error text a channel returns passes through
:func:`~collectors.secrets.scrub` first, so they are never in an attempt row or
a log line either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from collectors.secrets import scrub

# How long the one-line error of an attempt may be (an attempt row, a log line).
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class SendResult:
    """One attempt's outcome: Alertmanager's ``(retryable, error)`` plus what HTTP adds."""

    ok: bool
    retryable: bool
    error: str | None = None
    status_code: int | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait
    disable: bool = False  # the receiver is gone for good (HTTP 410)


def retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def failed(error: str, *, retryable: bool = True, status_code: int | None = None) -> SendResult:
    return SendResult(ok=False, retryable=retryable, error=error, status_code=status_code)


class _LogGuard(logging.Filter):
    """Masks secret URL fragments in the log lines of the libraries that send for us."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def hide(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        text = record.getMessage()
        masked = scrub(text, secrets)
        if masked != text:
            record.msg, record.args = masked, None
        return True


# httpx logs each request's full URL at INFO; Apprise and urllib3 (which Apprise
# uses) log URLs and payloads at DEBUG. A logger's filter sees only records made
# on that very logger, so each one that writes URLs is named here.
_GUARD = _LogGuard()
for _name in ("httpx", "apprise", "urllib3.connectionpool"):
    logging.getLogger(_name).addFilter(_GUARD)


def hide_in_logs(secrets: Iterable[str]) -> None:
    """Mask these strings wherever the sending libraries log them, from now on."""
    _GUARD.hide(secrets)
