"""What every channel shares: the send result, secrets, and redaction.

Secrets (webhook keys, SMTP passwords, Slack and Apprise URLs) are read from
the environment or a file at send time, so they are never in the database;
every error text a channel returns passes through :func:`scrub` first, so they
are never in an attempt row or a log line either.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

_MASK = "***"


@dataclass(frozen=True)
class SendResult:
    """One attempt's outcome: Alertmanager's ``(retryable, error)`` plus what HTTP adds."""

    ok: bool
    retryable: bool
    error: str | None = None
    status_code: int | None = None
    retry_after: float | None = None  # seconds the receiver asked us to wait
    disable: bool = False  # the receiver is gone for good (HTTP 410)


class SecretMissing(Exception):
    """A secret's variable or file is absent; the message names where, never the value."""


def read_secret(*, env: str | None = None, file: str | None = None, value: str | None = None, what: str) -> str:
    """The secret from the environment variable, the file or the literal value, whichever is set."""
    if env:
        found = os.environ.get(env, "").strip()
        if not found:
            raise SecretMissing(f"{what}: environment variable {env} is not set")
        return found
    if file:
        try:
            found = Path(file).expanduser().read_text().strip()
        except OSError as exc:
            raise SecretMissing(f"{what}: cannot read {file} ({exc.strerror or type(exc).__name__})") from None
        if not found:
            raise SecretMissing(f"{what}: {file} is empty")
        return found
    if value:
        return value
    raise SecretMissing(f"{what}: not configured")


def redact_url(url: str) -> str:
    """Scheme and host only: paths, user info and queries often hold tokens."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{host}" if parts.scheme else "<invalid URL>"


def url_secrets(url: str) -> list[str]:
    """The pieces of a URL that may be secret, for :func:`scrub`; scheme, host and port stay readable."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    pieces: list[str] = []
    pieces += [parts.username or "", parts.password or "", parts.path, parts.query, parts.fragment]
    pieces += [unquote(p) for p in parts.path.split("/")]
    pieces += [v for _, v in parse_qsl(parts.query)]
    return [p for p in pieces if len(p) >= 4]  # shorter pieces are not worth masking and would garble text


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``***``, longest first so no fragment survives."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


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


def one_line(text: str, limit: int = 300) -> str:
    """Text fit for a log line or an error column."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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
