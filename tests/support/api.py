"""A real API server on 127.0.0.1 for the tests: uvicorn on a thread, on a free port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from daemon.config.model import Config
from daemon.config.settings import ApiSettings
from daemon.web.server import ApiServer


def with_api(config: Config, **settings: Any) -> Config:
    """A copy of ``config`` with these ``api:`` settings."""
    return config.model_copy(update={"api": ApiSettings(**settings)})


@contextmanager
def running(config: Config | Callable[[], Config]) -> Iterator[str]:
    """Serve the API for ``config`` on a thread; yields its base URL."""
    source = config if callable(config) else (lambda: config)
    server = ApiServer(source, host="127.0.0.1", port=0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
