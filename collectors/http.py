"""HTTP for every collector: one fetch of a URL (probe, JUnit reports), and JSON APIs (GitHub, GitLab).

:func:`fetch` makes one request with a deadline over the whole exchange, a
body never read past ``max_bytes`` and redirects followed only as allowed.
:func:`get_json` and :func:`iter_pages` read JSON APIs: bounded bodies, ETag
revalidation (:mod:`collectors.httpcache`), one-line :class:`SourceFault`
errors naming the URL (never the token), and rate limits waited out once
when short and otherwise deferred to the next scheduled run, remembered on
disk so that no run asks again before the reset.

Over 400 lines: each function that touches httpx imports it itself, so that
loading the configuration never loads httpx (start-up time).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from collectors.evidence import SourceFault
from collectors.httpcache import MAX_BLOCK_SECONDS, EtagCache, note_exhausted, rate_limit_reset, utc_text
from collectors.secrets import SecretMissing, one_line, read_secret, scrub, shown_url, strip_credentials

if TYPE_CHECKING:
    import httpx


__all__ = ["ApiClient", "Fetched", "JsonPage", "check_api_url", "fetch", "get_json", "http_url", "iter_pages",
           "open_client", "redirect_allowed", "resolve_token", "ssl_context"]

_ERROR_BODY_LIMIT = 64_000  # enough for an API's error message, never a whole page
_API_REDIRECTS = 3  # an API answers where it was asked; a few hops for a moved host name
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_api_url(value: str) -> str:
    """A pydantic validator for ``api_url``: http(s) with a host, no trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"api_url '{value}' is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"api_url '{value}' must not carry a query or fragment")
    return value.rstrip("/")


def resolve_token(token_env: str | None, token_file: str | None, *, required: bool = False) -> str | None:
    """The API token, read by the rules of :mod:`collectors.secrets` (a named file wins; an unset variable is none).

    Raises SourceFault("auth") for a named file that cannot be read, for no
    token when `required`, and for a value that is not one header-safe token.
    """
    try:
        token = read_secret(env=token_env, file=token_file)
    except SecretMissing as exc:
        raise SourceFault("auth", f"token file {exc}") from None
    where = f"token file {token_file}" if token_file else f"environment variable {token_env}"
    if token is None:
        if required:
            raise SourceFault("auth", f"{where} (token_env) is not set")
        return None
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

    def rate_scope(self, url: str) -> str:  # a rate limit belongs to a host and a credential
        return f"{_origin(url)}|{self.token_id}"

    def scrub(self, text: str) -> str:
        """One line, no credentials: for every message built from outside text."""
        return scrub(strip_credentials(one_line(text)), [self._token])

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


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


class Fetched(NamedTuple):
    """What one :func:`fetch` got."""

    status: int
    body: bytes  # at most max_bytes
    oversize: bool  # the body went on past max_bytes and was not read further
    ms: float  # from sending the request to the end of the (possibly cut) body
    headers: httpx.Headers  # the last answer's


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
    import httpx  # httpx loads only when a source is fetched: start-up time
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
                status, answered, body, oversize = _stream(client, request, deadline, max_bytes)
                target = request.url.join(answered["location"]) if status in _REDIRECTS and answered.get("location") else None
                if target is None or not redirect_allowed(follow_redirects, request.url, target):
                    break
                kept = dict(sent)
                if target.host != request.url.host:  # credentials never follow to another host
                    kept = {k: v for k, v in kept.items() if k.lower() not in ("authorization", "cookie")}
                request = client.build_request(method, target, headers=kept)
            ms = (time.perf_counter() - start) * 1000
            return Fetched(status, body, oversize, ms, answered)
    except httpx.TimeoutException:
        raise SourceFault("timeout", f"{shown}: no answer within {timeout:g}s", retryable=True) from None
    except httpx.UnsupportedProtocol as exc:
        raise SourceFault("unsupported", _one_line(f"{shown}: {exc}", secret)) from None
    except (httpx.InvalidURL, httpx.DecodingError) as exc:
        raise SourceFault("malformed", _one_line(f"{shown}: {exc}", secret)) from None
    except (httpx.HTTPError, OSError) as exc:  # refused, reset, DNS failure, TLS failure
        raise SourceFault("unreachable", _one_line(f"{shown}: {str(exc) or type(exc).__name__}", secret), retryable=True) from None


def _stream(client: httpx.Client, request: httpx.Request, deadline: float, max_bytes: int) -> tuple[int, httpx.Headers, bytes, bool]:
    """One request without redirects: (status, headers, body up to max_bytes, cut short)."""
    import httpx  # httpx loads only when a source is fetched: start-up time
    response = client.send(_bounded(request, deadline), stream=True)
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
        return response.status_code, response.headers, bytes(body), oversize
    finally:
        response.close()


def _bounded(request: httpx.Request, deadline: float, cap: float | None = None) -> httpx.Request:
    """`request` with no single wait past `deadline`: httpx times each read, not a whole exchange."""
    import httpx  # httpx loads only when a source is fetched: start-up time
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpx.ReadTimeout("deadline passed", request=request)
    request.extensions["timeout"] = httpx.Timeout(left if cap is None else min(left, cap)).as_dict()
    return request


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
    return one_line(strip_credentials(scrub(text, [secret])))


@functools.lru_cache(maxsize=1)
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client (thread-safe).

    Building one loads the CA bundle, which costs tens of milliseconds: more
    than a whole API collection otherwise. Made as httpx makes its default
    (certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR).
    """
    import httpx  # httpx loads only when a source is fetched: start-up time
    return httpx.create_ssl_context()


def open_client(*, timeout: float, token: str | None, user_agent: str = "pillarwatch", auth_scheme: str = "Bearer",
                headers: Mapping[str, str] | None = None, max_wait_seconds: float = 5.0) -> ApiClient:
    """A client sending `token` as ``Authorization: <auth_scheme> <token>``.

    An `auth_scheme` containing a hyphen is a header name instead (GitLab's
    ``PRIVATE-TOKEN``): the token is then that header's whole value.
    """
    import httpx  # httpx loads only when a source is fetched: start-up time
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


def _origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    import httpx  # httpx loads only when a source is fetched: start-up time
    parsed = httpx.URL(str(url))
    return parsed.scheme, parsed.host, parsed.port


def get_json(client: ApiClient, url: str, *, params: Mapping[str, str | int] | None = None,
             cache: EtagCache | None = None, max_bytes: int) -> JsonPage:
    """GET `url` and decode its JSON; raises SourceFault for every kind of failure."""
    scope = client.rate_scope(url)
    if cache is not None and (until := cache.blocked_until(scope)) > time.time():
        raise SourceFault("rate_limited", f"GET {client.scrub(url)}: rate limited until {utc_text(until)}; "
                                          "not asking again before then", retryable=True)
    key = cache.key(url, params, client.token_id) if cache is not None else ""
    stored = cache.load(key) if cache is not None else None
    headers = {"If-None-Match": stored.etag} if stored is not None else {}
    waited = False
    while True:
        response, body = _fetch(client, url, params, headers, max_bytes)
        shown = f"GET {client.scrub(str(response.request.url))}"
        if response.status_code == 304 and stored is not None and cache is not None:
            note_exhausted(cache, scope, response)
            cache.touch(key)
            return JsonPage(stored.data, response.headers, stored.links, from_cache=True)
        if response.is_success:
            data = _decode(body, shown)
            links = {str(rel): str(response.url.join(link["url"]))
                     for rel, link in response.links.items() if rel and link.get("url")}
            if cache is not None:
                note_exhausted(cache, scope, response)
                if etag := response.headers.get("etag"):
                    cache.store(key, client.scrub(url), etag, data, links)
            return JsonPage(data, response.headers, links)
        reset = rate_limit_reset(response, body)
        if reset is None:
            raise _status_fault(response, body, shown, client)
        if not waited and reset - time.time() <= min(client.max_wait_seconds, client.deadline - time.monotonic()):
            waited = True  # a short wait is waited out, once
            time.sleep(max(0.0, reset - time.time()))
            continue
        if cache is not None:
            cache.block(scope, min(reset, time.time() + MAX_BLOCK_SECONDS))
        raise SourceFault("rate_limited", f"{shown}: HTTP {response.status_code}, rate limited until {utc_text(reset)}",
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
    for _ in range(_API_REDIRECTS + 1):
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
    raise SourceFault("http_status", f"{shown}: more than {_API_REDIRECTS} redirects")


def _send(
    client: ApiClient, request: httpx.Request, shown: str, max_bytes: int, deadline: float
) -> tuple[httpx.Response, bytes]:
    import httpx  # httpx loads only when a source is fetched: start-up time
    try:
        response = client.http.send(_bounded(request, deadline, client.timeout), stream=True)
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


def _status_fault(response: httpx.Response, body: bytes, shown: str, client: ApiClient) -> SourceFault:
    status = response.status_code
    said = _server_message(body, client)
    message = f"{shown}: HTTP {status} {response.reason_phrase}".rstrip() + (f" ({said})" if said else "")
    if status in (401, 403):
        return SourceFault("auth", message)
    if status == 404:
        return SourceFault("not_found", message)
    return SourceFault("http_status", message, retryable=status >= 500)
