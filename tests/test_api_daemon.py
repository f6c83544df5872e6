"""The API served by real processes: `pillarwatch daemon` (unless --no-api) and `pillarwatch serve`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.git import GitRepo
from tests.support.ports import free_port


def write_config(workdir: Path, repo: Path, port: int, **api: Any) -> Path:
    body = {
        "version": 1,
        "store": "pw.db",
        "daemon": {"debounce": "0.2s", "send_interval": "1s", "shutdown_grace": "5s"},
        "api": {"port": port, **api},
        "projects": [{
            "id": "svc", "title": "Service", "schedule": {"every": "1h"},
            "sources": [{"id": "repo", "kind": "git", "path": str(repo)}],
            "pillars": [{"id": "durability", "title": "Durability", "criteria": [
                {"id": "restart", "title": "Survive restart", "checks": [
                    {"source": "repo", "signal": "file_exists", "path": "tests/test_restart.py"}]},
                {"id": "retry", "title": "Retry covered", "checks": [
                    {"source": "repo", "signal": "file_exists", "path": "tests/test_retry.py"}]},
            ]}],
        }],
    }
    path = workdir / "pw.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    repo = GitRepo(tmp_path / "repo")
    repo.write("tests/test_restart.py", "def test_restart(): pass\n")
    repo.commit("restart test", when=datetime.now(timezone.utc))
    return tmp_path


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", *args, "--config", "pw.yaml"], cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(what: str, condition: Callable[[], Any], proc: subprocess.Popen[str], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except httpx.TransportError:
            value = None
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) before {what}: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    return proc.returncode, stderr


def refused(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    return False


def test_daemon_serves_the_api_with_port_override_and_reloads_it(workdir, processes):
    configured, override = free_port(), free_port()
    write_config(workdir, workdir / "repo", configured)
    proc = processes("daemon", "--port", str(override), cwd=workdir)
    url = f"http://127.0.0.1:{override}"
    assert wait_for("/healthz", lambda: httpx.get(url + "/healthz").status_code == 200, proc)
    latest = wait_for("a first snapshot", lambda: httpx.get(url + "/api/v1/projects").json()[0]["latest_snapshot"], proc)
    projects = httpx.get(url + "/api/v1/projects").json()
    assert [(p["id"], p["title"], p["overall"]) for p in projects] == [("svc", "Service", 50.0)]
    snapshot = httpx.get(f"{url}/api/v1/snapshots/{latest}").json()
    assert snapshot["pillars"][0]["criteria"][0]["status"] == "ok"
    # A fresh collection: ready.
    assert wait_for("/readyz", lambda: httpx.get(url + "/readyz").status_code == 200, proc)
    assert refused(configured)  # --port replaced the configured port

    # SIGHUP: the API reads the reloaded configuration.
    config = workdir / "pw.yaml"
    config.write_text(config.read_text().replace("title: Service", "title: Renamed service"))
    proc.send_signal(signal.SIGHUP)
    assert wait_for("the reloaded title", lambda: httpx.get(url + "/api/v1/projects/svc").json()["title"] == "Renamed service", proc)

    code, stderr = stop(proc)
    assert code == 0, stderr
    assert f"API on http://127.0.0.1:{override}" in stderr and "Traceback" not in stderr
    assert refused(override)


def test_daemon_with_no_api_serves_nothing(workdir, processes):
    port = free_port()
    write_config(workdir, workdir / "repo", port)
    proc = processes("daemon", "--no-api", cwd=workdir)
    health = workdir / "pw.health.json"
    wait_for("a first snapshot", lambda: health.exists() and '"snapshot": 1' in health.read_text(), proc)
    assert refused(port)
    code, stderr = stop(proc)
    assert code == 0 and "API on" not in stderr, stderr


@pytest.mark.parametrize("command", ["daemon", "serve"])
def test_a_port_in_use_is_one_line_and_exit_2(workdir, command):
    port = free_port()
    write_config(workdir, workdir / "repo", port)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        proc = subprocess.run([sys.executable, "-m", "daemon.cli", command, "--config", "pw.yaml"], cwd=workdir,
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "pillarwatch" in line and "error" in line]
    assert lines == [f"pillarwatch: error: cannot listen on 127.0.0.1:{port}: address already in use"], proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_answers_from_a_collected_database_and_stops_on_sigterm(workdir, processes):
    port = free_port()
    (workdir / "token").write_text("serve-token\n")
    write_config(workdir, workdir / "repo", port, token_file="token")
    collected = subprocess.run([sys.executable, "-m", "daemon.cli", "collect", "--config", "pw.yaml"], cwd=workdir,
                               capture_output=True, text=True, timeout=60)
    assert collected.returncode == 0, collected.stderr
    proc = processes("serve", cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": "Bearer serve-token"}
    assert wait_for("/healthz", lambda: httpx.get(url + "/healthz").status_code == 200, proc)
    assert httpx.get(url + "/api/v1/projects/svc/snapshots/latest").status_code == 401
    latest = httpx.get(url + "/api/v1/projects/svc/snapshots/latest", headers=auth).json()
    assert latest["overall"] == 50.0 and latest["project"] == "svc"
    code, stderr = stop(proc)
    assert code == 0, stderr
    assert "serve-token" not in stderr and "Traceback" not in stderr


def test_serve_without_a_token_answers_head_and_refuses_a_rebound_host(workdir, processes):
    port = free_port()
    write_config(workdir, workdir / "repo", port)
    proc = processes("serve", cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    assert wait_for("/healthz", lambda: httpx.get(url + "/healthz").status_code == 200, proc)
    head = httpx.head(url + "/healthz")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"] == "application/json"
    page = httpx.get(url + "/")  # no database yet (nothing collected): a 503 page, with the headers all the same
    assert page.status_code == 503 and page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert httpx.get(url + "/healthz", headers={"Host": f"localhost:{port}"}).status_code == 200
    rebound = httpx.get(url + "/healthz", headers={"Host": f"attacker.example:{port}"})
    assert rebound.status_code == 421 and "Host header" in rebound.json()["error"]["message"]
    code, stderr = stop(proc)
    assert code == 0 and "Traceback" not in stderr, stderr
