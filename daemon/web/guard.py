"""What stands between a request and the API's routes: the edge, the bearer token, and one shape for every error.

The edge (:class:`_Edge`, outermost) answers HEAD wherever GET works, refuses
a foreign ``Host`` on loopback without a token (421, DNS rebinding), and puts
the security headers on every answer.

Every error leaves as ``{"error": {"status": ..., "message": ...}}``:
:class:`~daemon.errors.NotFound` → 404, :class:`~daemon.errors.InputError`
and bad parameters → 422, :class:`~daemon.errors.StoreError` and SQLite
faults → 503, a missing or wrong bearer token → 401, and anything unexpected
→ 500 with one line (the traceback goes to the log, never to the client).
The token itself is never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collectors.secrets import SecretMissing, one_line, require_secret
from daemon.config.model import Config
from daemon.errors import ConfigError, InputError, NotFound, PillarwatchError, StoreError
from daemon.store import DatabaseError

__all__ = ["OPEN_PATHS", "api_token", "error_response", "guard"]

log = logging.getLogger("pillarwatch.api")

OPEN_PATHS = frozenset({"/healthz"})  # answered without a token: a liveness probe carries none
_STATUS: list[tuple[type[PillarwatchError], int]] = [(NotFound, 404), (InputError, 422), (StoreError, 503)]


def api_token(config: Config) -> str | None:
    """The bearer token the API requires, or None when it is open.

    Raises :class:`ConfigError` when a token is configured but cannot be read:
    an API meant to be protected must not start open.
    """
    api = config.api
    if not (api.token_env or api.token_file):
        return None
    try:
        return require_secret("api.token_file" if api.token_file else "api.token_env", env=api.token_env,
                              file=api.token_file)
    except SecretMissing as exc:
        raise ConfigError([str(exc)]) from None


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


def guard(app: FastAPI, config: Callable[[], Config]) -> None:
    """Require the token (when configured), give every error the one shape, and put the edge in front."""
    app.add_exception_handler(PillarwatchError, _pillarwatch_error)  # type: ignore[arg-type]
    app.add_exception_handler(DatabaseError, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(_Guard, config=config)
    app.add_middleware(_Edge, config=config)  # added last: outermost, so it sees every answer


async def _pillarwatch_error(request: Request, exc: PillarwatchError) -> JSONResponse:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, one_line(str(exc)))
    return error_response(status, one_line(str(exc)))


async def _database_error(request: Request, exc: DatabaseError) -> JSONResponse:
    log.error("%s %s: database: %s", request.method, request.url.path, exc)
    return error_response(503, f"the database cannot be read: {one_line(str(exc))}")


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = ["{}: {}".format(".".join(str(p) for p in e.get("loc", ())), e.get("msg", "invalid")) for e in exc.errors()]
    return error_response(422, one_line("; ".join(problems)))


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    # Unknown paths (404) and methods (405, with its Allow header) get the same body as every other error.
    headers = dict(exc.headers or {})
    if "GET" in headers.get("Allow", "").split(", "):
        headers["Allow"] += ", HEAD"  # _Edge answers HEAD wherever GET works
    return error_response(exc.status_code, one_line(str(exc.detail)), headers=headers)


_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                     (b"referrer-policy", b"no-referrer")]
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class _Edge:
    """What every request and answer passes: HEAD, the Host header, and the security headers.

    - HEAD is served as GET with the body dropped, so it works wherever GET
      does and the OpenAPI document stays one operation per route.
    - On a loopback address without a token, a Host that is not this server
      is refused (421): a page on a rebound DNS name must not read the API.
      With a token, or bound elsewhere, the Host is the proxy's business.
    - Every answer carries the pages' Content-Security-Policy (with
      ``frame-ancestors 'none'``), ``nosniff`` and no framing.
    """

    def __init__(self, app: ASGIApp, config: Callable[[], Config]):
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            # A copy: the server reads the original's method to frame a HEAD answer.
            scope = dict(scope, method="GET")

        async def edged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message, headers=[*message.get("headers", []), *_security_headers()])
            elif message["type"] == "http.response.body" and head:
                message = dict(message, body=b"")
            await send(message)

        refusal = self._foreign_host(scope)
        if refusal is not None:
            await refusal(scope, receive, edged)
            return
        await self.app(scope, receive, edged)

    def _foreign_host(self, scope: Scope) -> JSONResponse | None:
        server = scope.get("server")
        if not server or not _is_loopback(server[0]):
            return None
        try:
            config = self.config()
            if api_token(config) is not None:
                return None
        except ConfigError:
            return None  # _Guard refuses every request then
        given = dict(scope["headers"]).get(b"host")
        if given is None:
            return None  # HTTP/1.0 without Host: not a browser, so not a rebinding
        names = _LOOPBACK_NAMES | {str(server[0]).lower(), config.api.host.lower().strip("[]")}
        try:
            parts = urlsplit("//" + given.decode("latin-1"))
            port = parts.port or (443 if scope.get("scheme") == "https" else 80)
            if parts.hostname in names and port == server[1] and not parts.username and parts.path == "":
                return None
        except ValueError:
            pass
        shown = one_line(given.decode("latin-1"))[:100]
        return error_response(421, f"the Host header {shown!r} does not name this server (a DNS rebinding?): "
                                   f"use localhost:{server[1]}, set api.host, or configure a token")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _security_headers() -> list[tuple[bytes, bytes]]:
    from daemon.web.dashboard import content_security_policy  # rendered pages decide what their policy allows

    policy = content_security_policy() + "; frame-ancestors 'none'"
    return [(b"content-security-policy", policy.encode()), *_SECURITY_HEADERS]


class _Guard:
    """The bearer token on every path but ``/healthz``, and a one-line 500 for anything unexpected.

    Pure ASGI (not ``BaseHTTPMiddleware``): it sits between Starlette's outer
    error middleware and the routes, so a fault is answered here, once.
    """

    def __init__(self, app: ASGIApp, config: Callable[[], Config]):
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] not in OPEN_PATHS:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope["path"])
            if not started:
                await error_response(500, "internal error (the server log has the details)")(scope, receive, send)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        try:
            expected = api_token(self.config())
        except ConfigError as exc:
            log.error("refusing requests: %s", exc)
            return error_response(503, "the API token is configured but cannot be read (the server log says why)")
        if expected is None:
            return None
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        # Constant time: the comparison must not tell how much of a guess was right.
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), expected.encode()):
            return None
        return error_response(401, "the bearer token is wrong" if given else "a bearer token is required (Authorization: Bearer TOKEN)",
                              headers={"WWW-Authenticate": "Bearer"})
