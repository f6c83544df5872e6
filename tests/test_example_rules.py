"""The rules we ship are honest: the example configuration counts test cases wherever
the language keeps them, needs real evidence to reach 1.0, and says what does."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from daemon.config.loading import load_config
from tests.support.cli import run_cli
from tests.support.git import GitRepo
from tests.support.paths import REPO_ROOT

EXAMPLE = REPO_ROOT / "config" / "examples" / "target-architecture.yaml"
WHEN = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def _service_with_tests_beside_the_code(path: Path) -> GitRepo:
    """A Python service that keeps its tests beside its code and at the root: no tests/ folder."""
    repo = GitRepo(path)
    repo.write("shop/orders.py", "def place(order, retries=3, timeout=5):\n    return order\n")
    repo.write("shop/test_orders.py",
               "def test_restart_keeps_open_orders():\n    pass\n\n"
               "def test_recover_after_crash():\n    pass\n\n"
               "class TestRetries:\n    def test_retry_uses_backoff(self):\n        pass\n")
    repo.write("test_smoke.py", "def test_timeout_is_enforced():\n    pass\n")
    repo.write("provenance_notes.txt", "provenance provenance provenance\n")  # a name is no lineage
    repo.commit("service", when=WHEN)
    return repo


def _scores(tmp_path: Path, repo: GitRepo) -> dict[str, float]:
    env = {"PILLARWATCH_REPO": str(repo.path), "PILLARWATCH_DB": str(tmp_path / "pw.db")}
    run_cli("collect", "--config", str(EXAMPLE), cwd=tmp_path, env=env)
    status = json.loads(run_cli("status", "--config", str(EXAMPLE), "--json", cwd=tmp_path, env=env).stdout)
    snapshot = status[0] if isinstance(status, list) else status
    return {c["id"]: c["score"] for p in snapshot["pillars"] for c in p["criteria"]}


def test_tests_beside_the_code_count_and_no_rule_saturates_on_mentions(tmp_path: Path):
    scores = _scores(tmp_path, _service_with_tests_beside_the_code(tmp_path / "service"))
    # Two restart/recovery tests of the ten that make 1.0: found beside the code, not a false zero.
    assert scores["restart-without-drift"] == 0.2
    # Retries in one source file (of five) and two tests (of eight): the lesser counts.
    assert scores["retry-timer-resume"] == 0.2
    # A file named after provenance is not lineage.
    assert scores["lineage"] == 0.0
    assert scores["runtime-safety"] == 0.1
    assert all(score < 1.0 for criterion, score in scores.items() if criterion != "oss-baseline"), scores


def test_every_criterion_of_the_example_says_what_makes_it_one():
    lines = EXAMPLE.read_text().splitlines()
    criteria = [c.id for p in load_config(EXAMPLE).projects[0].expanded_pillars for c in p.criteria]
    assert len(criteria) == 13
    for criterion in criteria:
        at = next(i for i, line in enumerate(lines) if line.strip() == f"- id: {criterion}")
        assert re.match(r"\s+# 1\.0: ", lines[at - 1]), f"{criterion}: no comment saying what makes it 1.0"
