"""HTTP probe: one request to an endpoint answers its status, latency and JSON values.

A non-2xx status is an observed value, not a fault: "the health endpoint says
503" is evidence. Only a request that got no answer at all (a timeout, a
refused connection) fails the source. The body is streamed and never read
past ``max_bytes``.

:func:`fetch` is shared with the JUnit collector, which fetches reports by URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collectors.evidence import (
    CollectResult,
    Evidence,
    EvidenceError,
    EvidenceRequest,
    Provenance,
    SourceFault,
    failed,
)

from collectors._http import ssl_context

__all__ = ["SIGNALS", "Fetched", "HttpSource", "JsonValue", "Latency", "Status", "collect", "fetch", "http_url",
           "redirect_allowed", "shown_url"]

_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HOST = re.compile(r"^(?:\*|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def http_url(value: str) -> str:
    """Validate an http(s) URL with a host (a pydantic field validator body)."""
    if _CONTROL.search(value):
        raise ValueError("URL contains control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"URL scheme must be http or https, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("URL has no host")
    return value


def shown_url(url: str) -> str:
    """`url` without user:password@, fit for evidence and messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class HttpSource(BaseModel):
    """An HTTP(S) endpoint probed with one request per collection."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["http"] = "http"
    id: str
    url: str
    method: Literal["GET", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = None
    timeout_seconds: float = Field(default=10, gt=0)
    max_bytes: int = Field(default=1_000_000, gt=0)
    # false: a redirect is the answer (and not ok); true: followed on the same host; a list: also to these hosts.
    follow_redirects: bool | list[str] = False

    @field_validator("follow_redirects")
    @classmethod
    def _hosts(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list):
            bad = [h for h in value if not _HOST.match(h)]
            if bad:
                raise ValueError(f"follow_redirects: {bad[0]!r} is not a host name")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        return http_url(value)

    @field_validator("headers")
    @classmethod
    def _printable(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if _CONTROL.search(name + text) or not (name + text).isascii():
                raise ValueError(f"header {name!r} must be printable ASCII")
        return value


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_field: ClassVar[str]
    default_transform: ClassVar[str | None]


class Status(_Params):
    signal: Literal["status"] = "status"
    default_field, default_transform = "ok", "bool"


class Latency(_Params):
    signal: Literal["latency"] = "latency"
    default_field, default_transform = "ms", None


class JsonValue(_Params):
    signal: Literal["json_value"] = "json_value"
    path: str = Field(min_length=1)  # dotted; list indexes as numbers: "checks.0.status"
    default_field, default_transform = "value", "bool"

    @field_validator("path")
    @classmethod
    def _segments(cls, value: str) -> str:
        if any(not part for part in value.split(".")):
            raise ValueError(f"path {value!r} has an empty segment")
        return value


SIGNALS: dict[str, type[BaseModel]] = {m.model_fields["signal"].default: m for m in (Status, Latency, JsonValue)}


class Fetched(NamedTuple):
    status: int
    body: bytes  # at most max_bytes
    oversize: bool  # the body went on past max_bytes and was not read further
    ms: float  # from sending the request to the end of the (possibly cut) body


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float,
    max_bytes: int,
    follow_redirects: bool | Sequence[str] = False,
    secret: str | None = None,
) -> Fetched:
    """One request; raises SourceFault only when no answer came (timeout, unreachable).

    `timeout` bounds the whole fetch, redirects and body included. A redirect
    is followed only as `follow_redirects` allows (see :func:`redirect_allowed`);
    otherwise the redirect itself is the answer. `secret` (a token sent in
    `headers`) is masked in any message, belt and braces.
    """
    shown = shown_url(url)
    # Identity encoding by default: a compressed body can inflate far past max_bytes in one chunk.
    sent = {"User-Agent": "pillarwatch", "Accept-Encoding": "identity", **(headers or {})}
    # httpx times each read; a body trickled a byte at a time would never trip that. The deadline
    # is checked as each chunk arrives and caps each request's own timeouts.
    deadline = time.monotonic() + timeout
    start = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, verify=ssl_context()) as client:
            request = client.build_request(method, url, headers=sent)
            for _ in range(_MAX_REDIRECTS + 1):
                status, location, body, oversize = _send(client, request, deadline, max_bytes)
                target = request.url.join(location) if status in _REDIRECTS and location else None
                if target is None or not redirect_allowed(follow_redirects, request.url, target):
                    break
                kept = dict(sent)
                if target.host != request.url.host:  # credentials never follow to another host
                    kept = {k: v for k, v in kept.items() if k.lower() not in ("authorization", "cookie")}
                request = client.build_request(method, target, headers=kept)
            ms = (time.perf_counter() - start) * 1000
            return Fetched(status, body, oversize, ms)
    except httpx.TimeoutException:
        raise SourceFault("timeout", f"{shown}: no answer within {timeout:g}s", retryable=True) from None
    except httpx.UnsupportedProtocol as exc:
        raise SourceFault("unsupported", _one_line(f"{shown}: {exc}", secret)) from None
    except (httpx.InvalidURL, httpx.DecodingError) as exc:
        raise SourceFault("malformed", _one_line(f"{shown}: {exc}", secret)) from None
    except (httpx.HTTPError, OSError) as exc:  # refused, reset, DNS failure, TLS failure
        raise SourceFault("unreachable", _one_line(f"{shown}: {str(exc) or type(exc).__name__}", secret), retryable=True) from None


def _send(client: httpx.Client, request: httpx.Request, deadline: float, max_bytes: int) -> tuple[int, str, bytes, bool]:
    """One request without redirects: (status, Location, body up to max_bytes, cut short)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpx.ReadTimeout("deadline passed", request=request)
    request.extensions["timeout"] = httpx.Timeout(left).as_dict()  # no single wait past the deadline
    response = client.send(request, stream=True)
    try:
        body, oversize = bytearray(), False
        for chunk in response.iter_bytes():  # each chunk as it arrives, so the deadline is seen
            body += chunk
            if len(body) > max_bytes:
                del body[max_bytes:]
                oversize = True
                break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("body not read in time", request=request)
        return response.status_code, response.headers.get("location", ""), bytes(body), oversize
    finally:
        response.close()


def redirect_allowed(policy: bool | Sequence[str], source: httpx.URL, target: httpx.URL) -> bool:
    """Whether a redirect from `source` to `target` is followed.

    ``False``: never. ``True``: to the same host only. A list of host names:
    to the same host or one of those (``"*"``: any host). Never to a scheme
    other than http(s).
    """
    if policy is False or target.scheme not in ("http", "https"):
        return False
    if target.host == source.host:
        return True
    hosts = {h.lower() for h in policy} if not isinstance(policy, bool) else set()
    return "*" in hosts or target.host.lower() in hosts


def _one_line(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return " ".join(_CREDENTIALS.sub("", text).split())


class _Missing(Exception):
    """The JSON path does not lead to a value."""


def _at_path(document: Any, path: str) -> Any:
    current = document
    for depth, part in enumerate(path.split(".")):
        here = ".".join(path.split(".")[: depth + 1])
        if isinstance(current, dict):
            if part not in current:
                raise _Missing(f"no key {here!r} in the JSON response")
            current = current[part]
        elif isinstance(current, list):
            if not part.isdigit() or int(part) >= len(current):
                raise _Missing(f"no list item {here!r} in the JSON response (length {len(current)})")
            current = current[int(part)]
        else:
            raise _Missing(f"{here!r}: cannot look inside a {type(current).__name__} in the JSON response")
    return current


class _Answers:
    """Answers every request from the one response."""

    def __init__(self, source: HttpSource, got: Fetched):
        self.source, self.got, self.shown = source, got, shown_url(source.url)
        self._document: Any = None
        self._parsed = False

    def _json(self) -> Any:
        if self.got.oversize:
            raise SourceFault("malformed", f"{self.shown}: response body is larger than {self.source.max_bytes} bytes")
        if not self._parsed:
            try:
                self._document = json.loads(self.got.body)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                what = "empty" if not self.got.body else f"not JSON ({_one_line(str(exc), None)[:120]})"
                raise SourceFault("malformed", f"{self.shown}: response (HTTP {self.got.status}) is {what}") from None
            self._parsed = True
        return self._document

    def value(self, request: EvidenceRequest) -> dict[str, Any]:
        model = SIGNALS.get(request.signal)
        if model is None:
            raise SourceFault("unsupported", f"unknown http signal {request.signal!r} (known: {', '.join(SIGNALS)})")
        try:
            params = model.model_validate({**request.params, "signal": request.signal})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "params"
            raise SourceFault("malformed", f"invalid params for http signal {request.signal!r}: {where}: {first['msg']}") from None
        if isinstance(params, Status):
            # A redirect not followed is not "up": it may lead to a login page or another host.
            return {"code": self.got.status, "ok": 200 <= self.got.status < 300}
        if isinstance(params, Latency):
            return {"ms": self.got.ms}
        assert isinstance(params, JsonValue)
        try:
            return {"value": _at_path(self._json(), params.path)}
        except _Missing as missing:
            raise SourceFault("not_found", f"{self.shown}: {missing}") from None

    def evidence(self, request: EvidenceRequest, now: datetime) -> Evidence:
        value: dict[str, Any] | None = None
        error: EvidenceError | None = None
        try:
            value = self.value(request)
        except SourceFault as fault:
            error = fault.error
        return Evidence(source=self.source.id, signal=request.signal, params=request.params, value=value,
                        error=error, provenance=Provenance(url=self.shown), observed_at=now)


def collect(
    source: HttpSource, requests: list[EvidenceRequest], *, now: datetime, cache_dir: Path | None = None
) -> CollectResult:
    """One request answers every signal; never raises for source faults. `cache_dir` is unused."""
    headers = dict(source.headers)
    token: str | None = None
    try:
        if source.token_env is not None:
            token = os.environ.get(source.token_env, "").strip()
            if not token:
                raise SourceFault("auth", f"environment variable {source.token_env} (token_env) is not set")
            if _CONTROL.search(token) or not token.isascii():  # never let the value reach an error message
                raise SourceFault("auth", f"environment variable {source.token_env} (token_env) is not a valid token")
            headers["Authorization"] = f"Bearer {token}"
        got = fetch(source.url, method=source.method, headers=headers, timeout=source.timeout_seconds,
                    max_bytes=source.max_bytes, follow_redirects=source.follow_redirects, secret=token)
    except SourceFault as fault:
        return failed(source.id, requests, fault.error, now=now)
    answers = _Answers(source, got)
    evidence = [answers.evidence(request, now) for request in requests]
    # The status and body identify what was observed; latency varies on every call.
    fingerprint = hashlib.sha256(f"{got.status}\0".encode() + got.body).hexdigest()
    return CollectResult(source=source.id, evidence=evidence, fingerprint=fingerprint)
