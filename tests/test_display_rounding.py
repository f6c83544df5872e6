"""Figures shown by `history` and `diff` round half-up, as DESIGN.md says, and never show `-0`; JSON keeps full precision."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from daemon.config.loading import load_config
from daemon.run.runner import run_projects
from daemon.store import Store

MINUS_ZERO = re.compile(r"(?<![\d-])-0(?![\d.])")  # not the "-02" of a date
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """Three collections of a status document: Replay at 0.0, then 0.745 (74.5 %), then 0.743 (74.3 %)."""
    root = tmp_path_factory.mktemp("rounding")
    config = {"store": "pw.db", "projects": [{
        "id": "svc",
        "sources": [{"id": "status", "kind": "doc", "path": str(root / "STATUS.md")}],
        "pillars": [{"id": "durability", "title": "Durability", "criteria": [
            {"id": "replay", "title": "Replay compatibility", "checks": [{"source": "status", "signal": "declared_score"}]}]}],
    }]}
    (root / "pw.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    loaded = load_config(root / "pw.yaml")
    with Store.open(loaded.store_path) as store:
        for day, score in enumerate(["0.0", "0.745", "0.743"]):
            (root / "STATUS.md").write_text(f"Replay compatibility: {score}\n")
            run_projects(loaded, loaded.projects, store=store, now=T0 + timedelta(days=day))
    return root


def pillarwatch(root: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", *args, "--config", "pw.yaml"], cwd=root,
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_diff_rounds_a_change_of_74_5_up(collected):
    shown = pillarwatch(collected, "diff", "1", "2")
    assert "Durability: 0% → 75% (+75)" in shown
    assert "0.00 → 0.75" in shown  # the criterion's 0.745, half-up to two decimals
    assert json.loads(pillarwatch(collected, "diff", "1", "2", "--json"))["overall"]["delta"] == pytest.approx(74.5)


def test_diff_never_shows_minus_zero(collected):
    shown = pillarwatch(collected, "diff", "2", "3")
    assert "Durability: 75% → 74% (0)" in shown
    assert not MINUS_ZERO.search(shown)
    assert json.loads(pillarwatch(collected, "diff", "2", "3", "--json"))["overall"]["delta"] == pytest.approx(-0.2)


def test_history_rounds_changes_half_up_and_never_shows_minus_zero(collected):
    rising = pillarwatch(collected, "history", "--until", "2026-11-02T12:00:00Z")
    assert "+75" in rising and "+74" not in rising
    flat = pillarwatch(collected, "history", "--since", "2026-11-02")
    assert not MINUS_ZERO.search(flat)
    (row,) = [line for line in flat.splitlines() if "Durability" in line]
    assert [cell.strip() for cell in row.split("│")][3:8] == ["75%", "74%", "0", "74%", "75%"]  # first, last, change, low, high
    points = json.loads(pillarwatch(collected, "history", "--json"))["points"]
    assert [p["overall"] for p in points] == pytest.approx([0.0, 74.5, 74.3])


@pytest.mark.parametrize(("value", "decimals", "shown", "change"), [
    (74.5, 0, "75", "+75"), (-74.5, 0, "-75", "-75"), (-0.2, 0, "0", "0"), (0.2, 0, "0", "0"),
    (-0.04, 1, "0.0", "0.0"), (0.0, 0, "0", "0"), (2.25, 1, "2.3", "+2.3"), (None, 0, "–", "–"),
])
def test_display_and_display_change_round_half_up_without_minus_zero(value, decimals, shown, change):
    from daemon.scoring.arithmetic import display, display_change

    assert (display(value, decimals), display_change(value, decimals)) == (shown, change)
