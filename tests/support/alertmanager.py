"""A real Alertmanager (Debian's `prometheus-alertmanager`) on a free port of 127.0.0.1, and its API."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port
from tests.support.processes import wait_for

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
# One receiver that sends nothing: the tests read the alerts through the API.
_CONFIG = "route:\n  receiver: quiet\nreceivers:\n  - name: quiet\n"


@dataclass
class Alertmanager:
    url: str
    log: Path

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts it holds (active, silenced or inhibited; not resolved ones)."""
        return httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5).raise_for_status().json()

    def silence(self, **labels: str) -> str:
        """A silence of an hour on these label values; its id."""
        now = datetime.now(timezone.utc)
        body = {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in labels.items()],
                "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
                "createdBy": "pillarwatch tests", "comment": "muted by a test"}
        return httpx.post(f"{self.url}/api/v2/silences", json=body, timeout=5).raise_for_status().json()["silenceID"]


@contextmanager
def running_alertmanager(folder: Path) -> Iterator[Alertmanager]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alertmanager.yml").write_text(_CONFIG)
    port = free_port()
    log = folder / "alertmanager.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BINARY), f"--config.file={folder / 'alertmanager.yml'}", f"--storage.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT)
    server = Alertmanager(url=f"http://127.0.0.1:{port}", log=log)
    try:
        wait_for(lambda: _ready(server.url), timeout=30, what="alertmanager ready", logs=log.read_text)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
