"""A git remote over HTTP whose faults can be switched on: a bare clone served by git's dumb HTTP protocol."""

from __future__ import annotations

import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.git import GitRepo
from tests.support.http_server import Reply


class GitRemote:
    """A bare repository served over git's dumb HTTP protocol; ``fault`` replaces every answer."""

    def __init__(self, repo: GitRepo, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.bare = root / "remote.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(self.bare)], check=True)
        subprocess.run(["git", "-C", str(self.bare), "update-server-info"], check=True)
        self.fault: Reply | None = None
        self._stop = threading.Event()
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                fault = outer.fault
                if fault is None:
                    super().do_GET()
                    return
                if fault.delay:
                    outer._stop.wait(fault.delay)
                body = fault.encoded()
                try:
                    self.send_response(fault.status)
                    for name, value in {"Content-Length": str(len(body)), **fault.headers}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/remote.git"

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
