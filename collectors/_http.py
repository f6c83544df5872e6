"""HTTP behaviour shared by the API collectors (private to ``collectors``).

JSON GETs with bounded bodies, ETag revalidation against a small on-disk store,
one-line :class:`SourceFault` errors naming the URL (never the token), and rate
limits that are waited out once when short and otherwise deferred to the next
scheduled run, remembered on disk so that no run asks again before the reset.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import ssl
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from collectors.evidence import SourceFault

__all__ = ["ApiClient", "EtagCache", "JsonPage", "check_api_url", "get_json", "iter_pages", "open_client",
           "resolve_token"]

_ERROR_BODY_LIMIT = 64_000  # enough for an API's error message, never a whole page
_DEFAULT_BLOCK_SECONDS = 60.0  # GitHub's advice when a rate limit names no reset
_MAX_BLOCK_SECONDS = 3600.0  # a bogus reset header must not silence a source for good
_MAX_REDIRECTS = 3
_PRUNE_EVERY = 86400.0
_PRUNE_AFTER = 14 * 86400.0  # entries unused this long (old pipelines' reports) are dropped
_REDIRECTS = (301, 302, 303, 307, 308)
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_SPACE = re.compile(r"\s+")


def check_api_url(value: str) -> str:
    """A pydantic validator for ``api_url``: http(s) with a host, no trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"api_url '{value}' is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"api_url '{value}' must not carry a query or fragment")
    return value.rstrip("/")


def resolve_token(token_env: str | None, token_file: str | None) -> str | None:
    """The API token from a file (preferred when named) or an environment variable.

    An unset or empty variable means "no token"; a named file must exist.
    """
    if token_file:
        path = Path(token_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SourceFault("auth", f"token file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise SourceFault("auth", f"cannot read token file {path}: {reason}") from None
        return _checked_token(text.strip(), f"token file {path}")
    value = os.environ.get(token_env, "").strip() if token_env else ""
    return _checked_token(value, f"environment variable {token_env}") if value else None


def _checked_token(token: str, where: str) -> str:
    if not token:
        raise SourceFault("auth", f"{where} is empty")
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in token):  # also keeps it out of header injection
        raise SourceFault("auth", f"{where} holds whitespace or non-ASCII characters; expected one token")
    return token


class ApiClient:
    """An ``httpx.Client`` plus what faults and caches need: a hash of the token, never the token."""

    def __init__(self, http: httpx.Client, *, token: str | None, timeout: float, max_wait_seconds: float):
        self.http, self.timeout, self.max_wait_seconds, self._token = http, timeout, max_wait_seconds, token
        # One client serves one source's collection: `timeout` bounds all of its requests together.
        self.deadline = time.monotonic() + timeout
        # Salted so that the hash alone is not a lookup key for the token elsewhere.
        self.token_id = hashlib.sha256(b"pillarwatch-token\0" + token.encode()).hexdigest()[:32] if token else "anon"

    def scrub(self, text: str) -> str:
        """One line, no credentials: for every message built from outside text."""
        text = _USERINFO.sub("", _SPACE.sub(" ", text).strip())
        return text.replace(self._token, "***") if self._token else text

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


@functools.lru_cache(maxsize=1)
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client (thread-safe).

    Building one loads the CA bundle, which costs tens of milliseconds: more
    than a whole API collection otherwise. Made as httpx makes its default
    (certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR).
    """
    return httpx.create_ssl_context()


def open_client(*, timeout: float, token: str | None, user_agent: str = "pillarwatch", auth_scheme: str = "Bearer",
                headers: Mapping[str, str] | None = None, max_wait_seconds: float = 5.0) -> ApiClient:
    """A client sending `token` as ``Authorization: <auth_scheme> <token>``.

    An `auth_scheme` containing a hyphen is a header name instead (GitLab's
    ``PRIVATE-TOKEN``): the token is then that header's whole value.
    """
    sent = {"User-Agent": user_agent, "Accept": "application/json", **(headers or {})}
    if token:
        if "-" in auth_scheme:
            sent[auth_scheme] = token
        else:
            sent["Authorization"] = f"{auth_scheme} {token}"
    # Redirects are followed by hand (same origin only): httpx keeps custom auth
    # headers such as PRIVATE-TOKEN on a redirect to another host.
    http = httpx.Client(timeout=httpx.Timeout(timeout), headers=sent, follow_redirects=False, verify=ssl_context())
    return ApiClient(http, token=token, timeout=timeout, max_wait_seconds=max_wait_seconds)


@dataclass(frozen=True)
class JsonPage:
    """One decoded JSON answer; `links` maps Link relations to absolute URLs."""

    data: Any
    headers: httpx.Headers
    links: dict[str, str] = field(default_factory=dict)
    from_cache: bool = False

    @property
    def next_url(self) -> str | None:
        return self.links.get("next")


@dataclass(frozen=True)
class _Stored:
    etag: str
    data: Any
    links: dict[str, str]


class EtagCache:
    """ETags and bodies of earlier answers, one JSON file each, plus rate-limit blocks.

    Keys hash the URL, the parameters and a hash of the token, so different
    credentials never share an answer and no file names or holds a credential.
    Every write is atomic; a failed write only costs the next request its 304.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    @staticmethod
    def key(url: str, params: Mapping[str, Any] | None, token_id: str) -> str:
        material = json.dumps([url, sorted((params or {}).items()), token_id], default=str)
        return hashlib.sha256(material.encode()).hexdigest()

    def load(self, key: str) -> _Stored | None:
        try:
            raw = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            return _Stored(str(raw["etag"]), raw["data"], dict(raw["links"]))
        except (OSError, ValueError, KeyError, TypeError):  # missing or damaged: ask afresh
            return None

    def store(self, key: str, url: str, etag: str, data: Any, links: dict[str, str]) -> None:
        self._write(f"{key}.json", {"url": url, "etag": etag, "links": links, "data": data})
        self._prune()

    def touch(self, key: str) -> None:
        with contextlib.suppress(OSError):  # keeps a still-used entry from being pruned
            os.utime(self.folder / f"{key}.json")

    def blocked_until(self, scope: str) -> float:
        try:
            return float(json.loads((self.folder / f"blocked-{_hash(scope)}.json").read_text())["until"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    def block(self, scope: str, until: float) -> None:
        self._write(f"blocked-{_hash(scope)}.json", {"until": until, "until_utc": _iso(until)})

    def _write(self, name: str, payload: Any) -> None:
        tmp: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.folder)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(payload, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.folder / name)
            tmp = None
        except OSError:
            pass  # a full or read-only disk must not fail a collection
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def _prune(self) -> None:
        marker, now = self.folder / ".pruned", time.time()
        try:
            if marker.exists() and now - marker.stat().st_mtime < _PRUNE_EVERY:
                return
            marker.touch()
            for path in self.folder.glob("*.json"):
                if now - path.stat().st_mtime > _PRUNE_AFTER:
                    path.unlink(missing_ok=True)
        except OSError:
            pass


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(str(url))
    return parsed.scheme, parsed.host, parsed.port


def get_json(client: ApiClient, url: str, *, params: Mapping[str, str | int] | None = None,
             cache: EtagCache | None = None, max_bytes: int) -> JsonPage:
    """GET `url` and decode its JSON; raises SourceFault for every kind of failure."""
    scope = f"{_origin(url)}|{client.token_id}"  # a rate limit belongs to a host and a credential
    if cache is not None and (until := cache.blocked_until(scope)) > time.time():
        raise SourceFault("rate_limited", f"GET {client.scrub(url)}: rate limited until {_iso(until)}; "
                                          "not asking again before then", retryable=True)
    key = cache.key(url, params, client.token_id) if cache is not None else ""
    stored = cache.load(key) if cache is not None else None
    headers = {"If-None-Match": stored.etag} if stored is not None else {}
    waited = False
    while True:
        response, body = _fetch(client, url, params, headers, max_bytes)
        shown = f"GET {client.scrub(str(response.request.url))}"
        if response.status_code == 304 and stored is not None and cache is not None:
            _note_exhausted(cache, scope, response)
            cache.touch(key)
            return JsonPage(stored.data, response.headers, stored.links, from_cache=True)
        if response.is_success:
            data = _decode(body, shown)
            links = {str(rel): str(response.url.join(link["url"]))
                     for rel, link in response.links.items() if rel and link.get("url")}
            if cache is not None:
                _note_exhausted(cache, scope, response)
                if etag := response.headers.get("etag"):
                    cache.store(key, client.scrub(url), etag, data, links)
            return JsonPage(data, response.headers, links)
        reset = _rate_limit_reset(response, body)
        if reset is None:
            raise _status_fault(response, body, shown, client)
        if not waited and reset - time.time() <= min(client.max_wait_seconds, client.deadline - time.monotonic()):
            waited = True  # a short wait is waited out, once
            time.sleep(max(0.0, reset - time.time()))
            continue
        if cache is not None:
            cache.block(scope, min(reset, time.time() + _MAX_BLOCK_SECONDS))
        raise SourceFault("rate_limited", f"{shown}: HTTP {response.status_code}, rate limited until {_iso(reset)}",
                          retryable=True)


def iter_pages(client: ApiClient, url: str, *, params: Mapping[str, str | int] | None = None,
               cache: EtagCache | None = None, max_bytes: int, max_pages: int) -> Iterator[JsonPage]:
    """Pages of a listing, following ``Link: <...>; rel="next"``; stop iterating to stop fetching."""
    origin, next_url, next_params = _origin(url), url, params
    for _ in range(max_pages):
        page = get_json(client, next_url, params=next_params, cache=cache, max_bytes=max_bytes)
        yield page
        if page.next_url is None:
            return
        if _origin(page.next_url) != origin:  # the token must not follow a link to another host
            raise SourceFault("malformed", f"GET {client.scrub(next_url)}: next-page link leads to another host")
        next_url, next_params = page.next_url, None  # the link carries the whole query


def _fetch(
    client: ApiClient, url: str, params: Mapping[str, str | int] | None, headers: dict[str, str], max_bytes: int
) -> tuple[httpx.Response, bytes]:
    """One GET (following same-origin redirects) and its body, read up to a limit and a deadline."""
    request = client.http.build_request("GET", url, params=params, headers=headers)
    deadline = client.deadline  # httpx's timeouts are per read, not per answer nor per collection
    for _ in range(_MAX_REDIRECTS + 1):
        shown = f"GET {client.scrub(str(request.url))}"
        response, body = _send(client, request, shown, max_bytes, deadline)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            return response, body
        target = request.url.join(location)
        if _origin(target) != _origin(request.url):
            raise SourceFault("http_status", f"{shown}: HTTP {response.status_code} redirect to another host "
                                             f"({target.scheme}://{target.host}) not followed")
        request = client.http.build_request("GET", target, headers=headers)
    raise SourceFault("http_status", f"{shown}: more than {_MAX_REDIRECTS} redirects")


def _send(
    client: ApiClient, request: httpx.Request, shown: str, max_bytes: int, deadline: float
) -> tuple[httpx.Response, bytes]:
    try:
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpx.ReadTimeout("deadline passed", request=request)
        request.extensions["timeout"] = httpx.Timeout(min(left, client.timeout)).as_dict()  # no wait past it
        response = client.http.send(request, stream=True)
        try:
            # Error bodies only carry a message; a success body is the answer and must fit.
            limit = max_bytes if response.is_success else min(max_bytes, _ERROR_BODY_LIMIT)
            declared = response.headers.get("content-length", "")
            if response.is_success and declared.isdigit() and int(declared) > limit:
                raise SourceFault("malformed", f"{shown}: response of {declared} bytes exceeds {limit} bytes")
            chunks, size = [], 0
            for chunk in response.iter_bytes():  # decompressed bytes: a zip bomb stops here too
                size += len(chunk)
                if size > limit:
                    if response.is_success:
                        raise SourceFault("malformed", f"{shown}: response exceeds {limit} bytes")
                    break
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("deadline passed", request=request)
        finally:
            response.close()
    except httpx.TimeoutException:
        raise SourceFault("timeout", f"{shown}: timed out after {client.timeout:g}s", retryable=True) from None
    except httpx.DecodingError as exc:
        raise SourceFault("malformed", f"{shown}: cannot decode response: {client.scrub(str(exc))}") from None
    except httpx.HTTPError as exc:
        reason = client.scrub(str(exc)) or type(exc).__name__
        raise SourceFault("unreachable", f"{shown}: {reason}", retryable=True) from None
    return response, b"".join(chunks)


def _decode(body: bytes, shown: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:  # also UnicodeDecodeError
        raise SourceFault("malformed", f"{shown}: response is not JSON ({type(exc).__name__} at byte "
                                       f"{getattr(exc, 'pos', getattr(exc, 'start', '?'))})") from None


def _server_message(body: bytes, client: ApiClient) -> str:
    """The API's own error text (GitHub's and GitLab's ``message``), short and on one line."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if isinstance(data, dict):
        for name in ("message", "error_description", "error"):
            if isinstance(data.get(name), str):
                return client.scrub(data[name])[:200]
    return ""


def _rate_limit_reset(response: httpx.Response, body: bytes) -> float | None:
    """When a 403/429 is a rate limit: the epoch second it lifts; None when it is not one."""
    if response.status_code not in (403, 429):
        return None
    now, headers = time.time(), response.headers
    if retry := headers.get("retry-after", "").strip():
        if retry.isdigit():
            return now + int(retry)
        try:
            return parsedate_to_datetime(retry).timestamp()
        except (TypeError, ValueError):
            return now + _DEFAULT_BLOCK_SECONDS
    for prefix in ("x-ratelimit-", "ratelimit-"):  # GitHub's names, then GitLab's
        if headers.get(prefix + "remaining", "").strip() == "0":
            reset = headers.get(prefix + "reset", "").strip()
            return float(reset) if reset.isdigit() else now + _DEFAULT_BLOCK_SECONDS
    # GitHub's secondary limits may come as a bare 403 that says so in its message.
    if response.status_code == 429 or b"rate limit" in body.lower():
        return now + _DEFAULT_BLOCK_SECONDS
    return None


def _note_exhausted(cache: EtagCache, scope: str, response: httpx.Response) -> None:
    """A success that spent the last request of the window blocks until the reset."""
    for prefix in ("x-ratelimit-", "ratelimit-"):
        reset = response.headers.get(prefix + "reset", "").strip()
        if response.headers.get(prefix + "remaining", "").strip() == "0" and reset.isdigit():
            if float(reset) > time.time():
                cache.block(scope, min(float(reset), time.time() + _MAX_BLOCK_SECONDS))
            return


def _status_fault(response: httpx.Response, body: bytes, shown: str, client: ApiClient) -> SourceFault:
    status = response.status_code
    said = _server_message(body, client)
    message = f"{shown}: HTTP {status} {response.reason_phrase}".rstrip() + (f" ({said})" if said else "")
    if status in (401, 403):
        return SourceFault("auth", message)
    if status == 404:
        return SourceFault("not_found", message)
    return SourceFault("http_status", message, retryable=status >= 500)
