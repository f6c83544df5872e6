"""What stands between a request and the API's routes: the bearer token, and one shape for every error.

Every error leaves as ``{"error": {"status": ..., "message": ...}}``:
:class:`~daemon.errors.NotFound` → 404, :class:`~daemon.errors.InputError`
and bad parameters → 422, :class:`~daemon.errors.StoreError` and SQLite
faults → 503, a missing or wrong bearer token → 401, and anything unexpected
→ 500 with one line (the traceback goes to the log, never to the client).
The token itself is never logged.
"""

from __future__ import annotations

import hmac
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import Config
from .errors import ConfigError, InputError, NotFound, PillarwatchError, StoreError

__all__ = ["OPEN_PATHS", "api_token", "error_response", "guard", "one_line"]

log = logging.getLogger("pillarwatch.api")

OPEN_PATHS = frozenset({"/healthz"})  # answered without a token: a liveness probe carries none
_STATUS: list[tuple[type[PillarwatchError], int]] = [(NotFound, 404), (InputError, 422), (StoreError, 503)]


def api_token(config: Config) -> str | None:
    """The bearer token the API requires, or None when it is open.

    Raises :class:`ConfigError` when a token is configured but cannot be read:
    an API meant to be protected must not start open.
    """
    api = config.api
    if api.token_env:
        value = os.environ.get(api.token_env, "").strip()
        if not value:
            raise ConfigError([f"api.token_env: environment variable {api.token_env} is not set or empty"])
        return value
    if api.token_file:
        try:
            value = Path(api.token_file).read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError([f"api.token_file: {api.token_file}: not UTF-8 text"]) from None
        except OSError as exc:
            raise ConfigError([f"api.token_file: {api.token_file}: cannot read: {exc.strerror or exc}"]) from None
        if not value:
            raise ConfigError([f"api.token_file: {api.token_file} is empty"])
        return value
    return None


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def guard(app: FastAPI, config: Callable[[], Config]) -> None:
    """Require the token (when configured) and give every error the one shape."""
    app.add_exception_handler(PillarwatchError, _pillarwatch_error)  # type: ignore[arg-type]
    app.add_exception_handler(sqlite3.Error, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(_Guard, config=config)


async def _pillarwatch_error(request: Request, exc: PillarwatchError) -> JSONResponse:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, one_line(str(exc)))
    return error_response(status, one_line(str(exc)))


async def _database_error(request: Request, exc: sqlite3.Error) -> JSONResponse:
    log.error("%s %s: database: %s", request.method, request.url.path, exc)
    return error_response(503, f"the database cannot be read: {one_line(str(exc))}")


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = ["{}: {}".format(".".join(str(p) for p in e.get("loc", ())), e.get("msg", "invalid")) for e in exc.errors()]
    return error_response(422, one_line("; ".join(problems)))


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    # Unknown paths (404) and methods (405, with its Allow header) get the same body as every other error.
    return error_response(exc.status_code, one_line(str(exc.detail)), headers=dict(exc.headers or {}))


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
