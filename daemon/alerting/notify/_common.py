"""What every channel shares: the send result, secrets, and redaction.

Secrets (webhook keys, SMTP passwords, Slack and Apprise URLs) are read from
the environment or a file at send time, so they are never in the database;
every error text a channel returns passes through :func:`scrub` first, so they
are never in an attempt row or a log line either.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlsplit, urlunsplit

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


# Query parameters whose values are credentials, by name (lower case, "-" read as "_").
_SECRET_PARAMS = frozenset({
    "token", "access_token", "auth", "auth_token", "authorization", "key", "api_key", "apikey", "secret",
    "client_secret", "password", "pass", "passwd", "pwd", "sig", "signature", "code", "session", "sid",
})
_TOKEN = re.compile(r"(?=.*[A-Za-z])(?=.*[0-9])[A-Za-z0-9_~+=.-]{20,}")  # a long random-looking piece
_HOSTNAME = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-fA-F:.]+\]|.*\..*)$")


def _secret_param(name: str) -> bool:
    name = name.lower().replace("-", "_")
    return name in _SECRET_PARAMS or name.endswith(("_token", "_key", "_secret", "_password"))


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return -1  # not a number: in an Apprise URL, often a token ("tgram://123:AAH.../")


def _secret_pieces(url: str, *, secret_path: bool) -> tuple[SplitResult, list[str]] | None:
    """The URL's parts and the pieces of it that are secret, or None when it cannot be parsed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if _port(parts) == -1 and not secret_path:
        return None
    pieces = [parts.username or "", parts.password or ""]
    if secret_path:
        # The whole path is the credential (a Slack hook, an Apprise token URL); plain words stay readable.
        pieces += [parts.path, parts.path.strip("/"),
                   *(s for s in parts.path.split("/") if len(s) >= 8 and not (s.isalpha() and s.islower()))]
        host = parts.netloc.rpartition("@")[2]
        if host and (_port(parts) == -1 or not _HOSTNAME.match(parts.hostname or "")):
            pieces.append(host)  # tgram://<bot token>/...: the "host" is a token
    else:
        pieces += [s for s in parts.path.split("/") if _TOKEN.fullmatch(unquote(s))]
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if _secret_param(name) or _TOKEN.fullmatch(value):
            pieces += [value, quote(value, safe="")]
    if parts.fragment and (secret_path or _TOKEN.search(parts.fragment)):
        pieces.append(parts.fragment)
    return parts, [p for p in pieces if len(p) >= 4]  # shorter pieces are not worth masking and would garble text


def redact_url(url: str, *, secret_path: bool = False) -> str:
    """The URL as a person may see it: scheme, host, port and path, with user info and tokens masked.

    Only secrets go: user info, secret query values, token-like path segments, and
    the whole path of a URL that is a secret as a whole (``secret_path``: a Slack
    hook, an Apprise URL). Readable parts stay, so an error still says where.
    """
    found = _secret_pieces(url, secret_path=secret_path)
    if found is None or not found[0].scheme:
        return "<invalid URL>"
    parts, secrets = found
    host, port = parts.hostname or "", _port(parts)
    if ":" in host:
        host = f"[{host}]"
    if port == -1 or parts.netloc.rpartition("@")[2] in secrets:
        netloc = _MASK
    else:
        netloc = host + (f":{port}" if port is not None else "")
    path = (("/" + _MASK) if parts.path.strip("/") else parts.path) if secret_path else scrub(parts.path, secrets)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{quote(name, safe='')}={_MASK if _secret_param(name) or _TOKEN.fullmatch(value) else quote(value, safe='')}"
                     for name, value in pairs)
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def url_secrets(url: str, *, secret_path: bool = False) -> list[str]:
    """The pieces of a URL that are secret, for :func:`scrub`; scheme, host, port and plain path stay readable."""
    found = _secret_pieces(url, secret_path=secret_path)
    return [url] if found is None else found[1]


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
