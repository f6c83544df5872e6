"""`diff` and alert evidence name the commit that made a change, not the newest one collected."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from daemon.config.loading import load_config
from daemon.run.runner import run_projects
from daemon.store import Store
from tests.support.git import GitRepo

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def deleted_in_b(tmp_path: Path):
    """A collection at commit A, then the test is deleted in B, C and D change other files, and a collection at D."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("tests/test_restart.py", "def test_restart(): pass\n")
    repo.write("tests/test_retry.py", "def test_retry(): pass\n")
    shas = {"A": repo.commit("A", when=T0)}
    config = {"store": "pw.db", "projects": [{
        "id": "svc", "sources": [{"id": "repo", "kind": "git", "path": "repo"}],
        "pillars": [{"id": "durability", "title": "Durability", "criteria": [
            {"id": "restart", "title": "Survive restart",
             "checks": [{"source": "repo", "signal": "file_exists", "path": "tests/test_restart.py"}]},
            {"id": "tests", "title": "Tests", "checks": [
                {"source": "repo", "signal": "file_count", "glob": "tests/test_*.py", "transform": {"scale": [0, 2]}}]},
            {"id": "cases", "title": "Test cases", "checks": [
                {"source": "repo", "signal": "test_cases", "transform": {"scale": [0, 2]}}]},
        ]}],
    }]}
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    loaded = load_config(tmp_path / "pw.yaml")
    with Store.open(loaded.store_path) as store:
        run_projects(loaded, loaded.projects, store=store, now=T0 + timedelta(minutes=5))
        repo.remove("tests/test_restart.py")
        shas["B"] = repo.commit("B", when=T0 + timedelta(hours=1))
        repo.write("README.md", "# svc\n")
        shas["C"] = repo.commit("C", when=T0 + timedelta(hours=2))
        repo.write("README.md", "# svc, the service\n")
        shas["D"] = repo.commit("D", when=T0 + timedelta(hours=3))
        run_projects(loaded, loaded.projects, store=store, now=T0 + timedelta(hours=4))
    return tmp_path, shas


def diff_json(root: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", "diff", "--json", "--config", "pw.yaml"], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_diff_names_the_commit_that_deleted_the_file(deleted_in_b):
    root, shas = deleted_in_b
    found = {e["description"]: e for e in diff_json(root)["evidence"]}
    b = shas["B"][:7]
    assert f"tests/test_restart.py deleted in {b}" in found, list(found)
    assert found[f"tests/test_restart.py deleted in {b}"]["commit"] == shas["B"]
    assert f"tests/test_*.py: 2 → 1 files in {b}" in found, list(found)
    assert f"test cases: 2 → 1 test cases in {b}" in found, list(found)  # through the @tests preset


def test_alert_evidence_names_the_commit_that_deleted_the_file(deleted_in_b):
    root, shas = deleted_in_b
    with Store.open(root / "pw.db") as store:
        (alert,) = [a for a in store.open_alerts("svc") if a.subject == "pillar:durability"]
    descriptions = [e.description for e in alert.evidence]
    assert f"tests/test_restart.py deleted in {shas['B'][:7]}" in descriptions, descriptions


def test_diff_says_between_when_the_commit_cannot_be_found(deleted_in_b):
    root, shas = deleted_in_b
    shutil.rmtree(root / "repo")  # the history is gone: the change happened somewhere between the two
    descriptions = [e["description"] for e in diff_json(root)["evidence"]]
    assert f"tests/test_restart.py deleted between {shas['A'][:7]} and {shas['D'][:7]}" in descriptions, descriptions
