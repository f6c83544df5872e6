"""The rules pillarwatch ships for itself are honest: over its own recent history,
`calibrate` finds no rule dead (never above 0) and none saturated (at 1.0 almost always)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.paths import REPO_ROOT

CONFIG = REPO_ROOT / "config" / "pillarwatch.yaml"


def test_no_rule_of_the_dogfood_configuration_is_dead_or_saturated(tmp_path: Path):
    env = {"PILLARWATCH_DB": str(tmp_path / "pw.db"), "PILLARWATCH_REPO": str(REPO_ROOT)}
    run_cli("collect", "--config", str(CONFIG), "--json", cwd=tmp_path, env=env)
    run_cli("backfill", "--config", str(CONFIG), "--commits", "30", "--json", cwd=tmp_path, env=env, timeout=600)
    done = run_cli("calibrate", "--config", str(CONFIG), "--json", "--fail-on", "dead,saturated", cwd=tmp_path,
                   env=env, code=None, timeout=600)
    found = json.loads(done.stdout)
    rules = [c for project in (found if isinstance(found, list) else [found]) for c in project["calibration"]["criteria"]]
    assert rules, done.stdout
    named = {f"{c['pillar']}/{c['criterion']}": c["verdicts"] for c in rules}
    assert not {k: v for k, v in named.items() if {"dead", "saturated"} & set(v)}, named
    assert done.returncode == 0, done.stdout + done.stderr
