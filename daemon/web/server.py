"""Serving the API with uvicorn: in the foreground (`pillarwatch serve`) or on a thread of the daemon.

The socket is bound before uvicorn starts, in the caller's thread, so that a
port already taken is a :class:`~daemon.errors.ListenError` (one line, exit 2)
and not a log line from a thread that quietly died. uvicorn installs no
signal handlers here: the command's entry point owns SIGTERM, SIGINT and
SIGHUP and calls :meth:`ApiServer.stop`.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from daemon.errors import ListenError
from daemon.web.api import ConfigSource, api_token, create_app

__all__ = ["ApiServer"]

log = logging.getLogger("pillarwatch.api")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to the program (uvicorn >= 0.29 captures them here)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """The API app listening on ``host:port``; :meth:`serve` blocks, :meth:`start` runs it on a thread."""

    def __init__(self, config: ConfigSource, *, host: str, port: int, access_log: bool = False):
        api_token(config())  # a configured token that cannot be read stops the start, not every request
        self.socket = _listen(host, port)
        self._server = _Server(uvicorn.Config(
            create_app(config),
            log_config=None,  # keep the program's logging as it is
            access_log=access_log,
            lifespan="off",
            timeout_graceful_shutdown=5,
            server_header=False,
        ))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def serve(self) -> None:
        """Serve in this thread until :meth:`stop` is called."""
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self._serve_logged, name="pillarwatch-api", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Ask the server to finish (from a signal handler too); with a thread, wait for it."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the API did not stop within %gs", timeout)

    def _serve_logged(self) -> None:
        try:
            self.serve()
        except BaseException:  # uvicorn exits with SystemExit on a failed start
            log.exception("the API stopped")


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        # A restart may bind while old connections linger in TIME_WAIT; a live listener still refuses.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {(exc.strerror or str(exc)).lower()}") from None
    return sock
