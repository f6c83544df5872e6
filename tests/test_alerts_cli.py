"""Alerts through the real command: `collect` records and sends them, `alerts` shows them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.support.git import GitRepo, durability_repo
from tests.support.http_server import HttpServer, Reply
from tests.support.ports import free_port
from tests.support.smtp import Inbox


def pillarwatch(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "daemon.cli", *args, "--config", "pw.yaml"], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return durability_repo(tmp_path / "repo")


def write_config(tmp_path: Path, repo: GitRepo, channels: list[dict[str, Any]], daemon: dict[str, Any] | None = None) -> None:
    body = {
        "store": "pw.db",
        "daemon": daemon or {},
        "channels": channels,
        "projects": [{
            "id": "svc",
            "sources": [{"id": "repo", "kind": "git", "path": str(repo.path)}],
            "pillars": [{"id": "durability", "title": "Durability", "criteria": [
                {"id": "restart", "title": "Survive restart",
                 "checks": [{"source": "repo", "signal": "file_exists", "path": "tests/test_restart.py"}]},
                {"id": "retry", "title": "Retry covered",
                 "checks": [{"source": "repo", "signal": "file_exists", "path": "tests/test_retry.py"}]},
            ]}],
        }],
    }
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(body, sort_keys=False))


def test_a_regression_found_by_collect_arrives_by_email(tmp_path, repo):
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        write_config(tmp_path, repo, [{"id": "mail", "kind": "email", "host": "127.0.0.1", "port": port, "starttls": False,
                                       "sender": "pillarwatch@example.org", "to": ["team@example.org"]}])
        assert pillarwatch("collect", cwd=tmp_path).returncode == 0
        assert inbox.received == []
        repo.remove("tests/test_restart.py")
        sha = repo.commit("drop the restart test")
        proc = pillarwatch("collect", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 5
        while not inbox.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        controller.stop()
    # The pillar and the overall % both fell by 50 points: one e-mail for the project's group lists both.
    [(_, _, mail)] = inbox.received
    assert "Durability fell from 100% to 50%" in str(mail["Subject"]), mail["Subject"]
    assert "Overall fell from 100% to 50%" in mail.get_content()
    assert inbox.received[0][1] == ["team@example.org"]
    assert f"tests/test_restart.py deleted in {sha[:7]}" in mail.get_content()

    shown = json.loads(pillarwatch("alerts", "--json", cwd=tmp_path).stdout)
    assert {a["subject"]: a["state"] for a in shown["alerts"]} == {"pillar:durability": "firing", "overall": "firing"}
    assert {d["state"] for a in shown["alerts"] for d in a["deliveries"]} == {"delivered"}
    text = pillarwatch("alerts", cwd=tmp_path).stdout
    assert "Durability" in text and "delivered" in text


def test_undeliverable_messages_become_dead_letters_that_alerts_shows(tmp_path, repo, http_server: HttpServer):
    http_server.route("/hook", Reply(500, "broken"))
    write_config(tmp_path, repo, [{"id": "hook", "kind": "webhook", "url": f"{http_server.url}/hook"}],
                 daemon={"retry_initial": "0.1s", "retry_max": "0.1s", "dead_after": "1s"})
    pillarwatch("collect", cwd=tmp_path)
    repo.remove("tests/test_restart.py")
    repo.commit("drop")
    pillarwatch("collect", cwd=tmp_path)  # queued, first attempt fails
    time.sleep(1.2)
    pillarwatch("collect", cwd=tmp_path)  # older than dead_after: given up
    shown = json.loads(pillarwatch("alerts", "--json", cwd=tmp_path).stdout)
    deliveries = [d for a in shown["alerts"] for d in a["deliveries"]]
    assert {d["state"] for d in deliveries} == {"dead"}
    assert all("HTTP 500" in (d["last_error"] or "") for d in deliveries), deliveries
    assert "dead" in pillarwatch("alerts", cwd=tmp_path).stdout


def test_a_410_disables_the_channel(tmp_path, repo, http_server: HttpServer):
    http_server.route("/hook", Reply(410, "gone"))
    write_config(tmp_path, repo, [{"id": "hook", "kind": "webhook", "url": f"{http_server.url}/hook"}])
    pillarwatch("collect", cwd=tmp_path)
    repo.remove("tests/test_restart.py")
    repo.commit("drop")
    pillarwatch("collect", cwd=tmp_path)
    hits = len([s for s in http_server.requests if s.path == "/hook"])
    assert hits == 1  # the first 410 switches the channel off for the second message too
    shown = json.loads(pillarwatch("alerts", "--json", cwd=tmp_path).stdout)
    assert {d["state"] for a in shown["alerts"] for d in a["deliveries"]} == {"disabled"}


def test_a_route_to_an_unknown_channel_is_a_configuration_error(tmp_path, repo):
    write_config(tmp_path, repo, [{"id": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/x"}])
    body = yaml.safe_load((tmp_path / "pw.yaml").read_text())
    body["routes"] = [{"channels": ["hook", "pager"]}]
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    proc = pillarwatch("check", cwd=tmp_path)
    assert proc.returncode == 2
    assert "pw.yaml:" in proc.stderr and "routes[0].channels[1]: no channel 'pager'" in proc.stderr


def _hook_disabled_by_410(tmp_path: Path, repo: GitRepo, http_server: HttpServer) -> None:
    http_server.route("/hook", Reply(410, "gone"))
    write_config(tmp_path, repo, [{"id": "hook", "kind": "webhook", "url": f"{http_server.url}/hook"}])
    pillarwatch("collect", cwd=tmp_path)
    repo.remove("tests/test_restart.py")
    repo.commit("drop")
    pillarwatch("collect", cwd=tmp_path)


def test_alerts_lists_disabled_channels_and_enable_switches_one_back_on(tmp_path, repo, http_server: HttpServer):
    _hook_disabled_by_410(tmp_path, repo, http_server)
    shown = json.loads(pillarwatch("alerts", "--json", cwd=tmp_path).stdout)
    [channel] = shown["disabled_channels"]
    assert channel["channel"] == "hook" and "HTTP 410" in channel["reason"] and channel["disabled_at"]
    text = pillarwatch("alerts", cwd=tmp_path).stdout
    assert "channel hook: disabled" in text and "pillarwatch alerts enable hook" in text

    proc = pillarwatch("alerts", "enable", "hook", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "hook" in proc.stdout and "enabled" in proc.stdout
    assert json.loads(pillarwatch("alerts", "--json", cwd=tmp_path).stdout)["disabled_channels"] == []

    # The receiver is back: the next message reaches it.
    http_server.route("/hook", Reply(200))
    before = len(http_server.requests)
    repo.write("tests/test_restart.py", "def test_restart():\n    pass\n")
    repo.commit("restore")  # the pillar is back: resolved messages
    assert pillarwatch("collect", cwd=tmp_path).returncode == 0
    assert len(http_server.requests) > before
    shown = json.loads(pillarwatch("alerts", "--json", cwd=tmp_path).stdout)
    assert "delivered" in {d["state"] for a in shown["alerts"] for d in a["deliveries"]}


def test_alerts_enable_names_an_unknown_channel_in_one_line(tmp_path, repo, http_server: HttpServer):
    _hook_disabled_by_410(tmp_path, repo, http_server)
    proc = pillarwatch("alerts", "enable", "pager", cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "'pager'" in proc.stderr and "hook" in proc.stderr
    assert len(json.loads(pillarwatch("alerts", "--json", cwd=tmp_path).stdout)["disabled_channels"]) == 1


def test_a_channel_disabled_by_410_is_enabled_again_when_its_configuration_changes(tmp_path, repo, http_server: HttpServer):
    _hook_disabled_by_410(tmp_path, repo, http_server)
    http_server.route("/new-hook", Reply(200))
    write_config(tmp_path, repo, [{"id": "hook", "kind": "webhook", "url": f"{http_server.url}/new-hook"}])
    repo.write("tests/test_restart.py", "def test_restart():\n    pass\n")
    repo.commit("restore")  # the pillar is back: resolved messages
    assert pillarwatch("collect", cwd=tmp_path).returncode == 0
    assert any(s.path == "/new-hook" for s in http_server.requests)
    shown = json.loads(pillarwatch("alerts", "--json", cwd=tmp_path).stdout)
    assert shown["disabled_channels"] == []
    assert "delivered" in {d["state"] for a in shown["alerts"] for d in a["deliveries"]}
