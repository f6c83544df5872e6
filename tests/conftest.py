"""Shared fixtures: real git repositories, real files, no mocks."""

from __future__ import annotations

import json as _json
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"  # recorded public data, see its PROVENANCE.md


class GitRepo:
    """A real git repository in a temporary folder, driven by the git CLI.

    Commits get explicit author/committer dates so that age and history
    signals are deterministic: ``commit("msg", when=datetime(...))``.
    """

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Test")
        self.git("config", "user.email", "test@example.invalid")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = {**os.environ, **(env or {})}
        out = subprocess.run(
            ["git", *args], cwd=self.path, check=True, capture_output=True, text=True, env=full_env
        )
        return out.stdout.strip()

    def write(self, rel: str, content: str | bytes) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        return target

    def symlink(self, rel: str, target: str) -> None:
        link = self.path / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", rel)

    def rename(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def commit(self, message: str, *, when: datetime | None = None) -> str:
        when = when or datetime.now(timezone.utc)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S%z")
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, env=env)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


# --- a real HTTP server on 127.0.0.1 -------------------------------------------------------



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
            return _json.dumps(self.body).encode()
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


@pytest.fixture
def http_server():
    server = HttpServer()
    yield server
    server.close()


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()
