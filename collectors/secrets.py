"""Secrets: reading them, and keeping them out of every message, log line and stored row.

Reading. A secret (an API token, a webhook signing secret, a channel URL) is
named in the configuration by a file (``*_file``), an environment variable
(``*_env``) or, where a setting allows it, a literal value. One precedence:
**an explicit file wins over the environment variable, which wins over a
literal value**. One rule for unset: **an unset or empty environment variable
is no secret** (None), while a file that is named must be there, readable,
UTF-8 and not empty (naming a path is deliberate; a typo must not silently
drop a credential). Where a secret is required (a protected API, a signing
secret, an HTTP probe's token), :func:`require_secret` turns "no secret" into
:class:`SecretMissing`. Messages name where a secret was looked for, never
its value.

Redaction. :func:`strip_credentials` drops ``user:password@`` from every URL in
a text; :func:`redact_url` shows a URL with its secret pieces masked;
:func:`scrub` masks known secrets in a text; :func:`one_line` flattens any
outside text for a one-line message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlsplit, urlunsplit

__all__ = ["SecretMissing", "one_line", "read_secret", "redact_url", "require_secret", "scrub", "shown_url",
           "strip_credentials", "url_secrets"]

_MASK = "***"
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


class SecretMissing(Exception):
    """A named secret cannot be read, or a required one is not there; the message says where, never the value."""


def read_secret(*, env: str | None = None, file: str | None = None, value: str | None = None) -> str | None:
    """The secret named by `file`, else by `env`, else `value`; None when there is none (see the module's rules).

    Surrounding whitespace is dropped. Raises SecretMissing for a named file
    that is missing, unreadable, not UTF-8 or empty.
    """
    if file:
        path = Path(file).expanduser()
        try:
            found = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise SecretMissing(f"{path}: not UTF-8 text") from None
        except OSError as exc:
            raise SecretMissing(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
        if not found:
            raise SecretMissing(f"{path} is empty")
        return found
    if env:
        return os.environ.get(env, "").strip() or None
    return value or None


def require_secret(what: str, *, env: str | None = None, file: str | None = None, value: str | None = None) -> str:
    """:func:`read_secret`, where having none is an error too; messages start with `what`."""
    try:
        found = read_secret(env=env, file=file, value=value)
    except SecretMissing as exc:
        raise SecretMissing(f"{what}: {exc}") from None
    if found is None:
        raise SecretMissing(f"{what}: environment variable {env} is not set" if env else f"{what}: not configured")
    return found


def strip_credentials(text: str) -> str:
    """`text` with ``user:password@`` dropped from every URL in it."""
    return _CREDENTIALS.sub("", text)


def shown_url(url: str) -> str:
    """`url` without user:password@, fit for evidence and messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def one_line(text: object, limit: int | None = None) -> str:
    """`text` on one line (whitespace runs become one space), cut to `limit` characters with "…" if given."""
    flat = " ".join(str(text).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


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
