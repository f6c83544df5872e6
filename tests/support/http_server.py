"""A real threaded HTTP server on 127.0.0.1 whose answers the test sets."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    """What the test server answers: status, headers, body, and an optional delay."""

    status: int = 200
    body: bytes | str | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0  # seconds between body bytes: a server that never quite stops answering

    def encoded(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


@dataclass
class Seen:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes


Route = Callable[[Seen], Reply] | Reply


class HttpServer:
    """A real threaded HTTP server on 127.0.0.1 with routes set by the test.

    ``server.route("/path", Reply(...))`` or a function of the request; the
    path may include a query string, matched exactly first, then by path only.
    Every request is recorded in ``server.requests``.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                outer.requests.append(seen)
                route = outer.routes.get(self.path) or outer.routes.get(urlsplit(self.path).path)
                reply = Reply(404, {"message": "Not Found"}) if route is None else (route(seen) if callable(route) else route)
                if reply.delay:
                    outer._stop.wait(reply.delay)
                body = reply.encoded()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if reply.status != 304:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if reply.status != 304 and self.command != "HEAD":
                        if not reply.trickle:
                            self.wfile.write(body)
                        for i in range(len(body) if reply.trickle else 0):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            if outer._stop.wait(reply.trickle):
                                break
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_HEAD = do_PUT = _handle

        # A listen backlog of 5 (the default) drops the SYNs of a burst of clients; each retry costs 1 s.
        server = type("Server", (ThreadingHTTPServer,), {"request_queue_size": 128})
        self.httpd = server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path: str, reply: Route) -> None:
        self.routes[path] = reply

    def close(self) -> None:
        self._stop.set()  # releases handlers that are sleeping in a delay
        self.httpd.shutdown()
        self.httpd.server_close()


def expect_resets(server: HttpServer) -> None:
    """A sender killed mid-request resets its connection: expected there, so not printed as a server error."""
    default = server.httpd.handle_error

    def handle_error(request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            default(request, client_address)

    server.httpd.handle_error = handle_error  # type: ignore[method-assign]
