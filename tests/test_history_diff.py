"""`pillarwatch history` and `diff` over a database built by real collections over real commits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.history import SHOP_OVERALL, build_history


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_history(tmp_path_factory.mktemp("history"))


def pillarwatch(built, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args, "--config", str(built.config_path)],
                          capture_output=True, text=True, timeout=60)


def as_json(built, *args: str):
    proc = pillarwatch(built, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_history_is_the_series_of_stored_snapshots_oldest_first(built):
    found = as_json(built, "history", "--project", "shop")
    assert found["total"] == 4
    assert [p["overall"] for p in found["points"]] == pytest.approx(SHOP_OVERALL)
    assert [p["pillars"]["durability"] for p in found["points"]] == pytest.approx([40.0, 250 / 3, 50.0, 290 / 3])
    # Day 2 changed nothing: day 1's snapshot was seen again instead of stored twice.
    assert found["points"][1]["taken_at"] == "2026-11-02T08:00:00Z"
    assert found["points"][1]["last_seen_at"] == "2026-11-03T08:00:00Z"


def test_history_of_one_pillar_in_a_time_range_and_the_newest_page(built):
    found = as_json(built, "history", "--project", "shop", "--pillar", "dx", "--since", "2026-11-02", "--until", "2026-11-04T08:00Z")
    assert [p["taken_at"] for p in found["points"]] == ["2026-11-02T08:00:00Z", "2026-11-04T08:00:00Z"]
    assert [p["pillars"] for p in found["points"]] == [{"dx": 50.0}, {"dx": 50.0}]
    assert found["pillar_titles"] == {"dx": "Developer experience"}
    newest = as_json(built, "history", "--project", "shop", "--limit", "2")
    assert newest["total"] == 4 and [p["overall"] for p in newest["points"]] == pytest.approx(SHOP_OVERALL[-2:])


def test_history_table_has_a_sparkline_per_pillar(built):
    proc = pillarwatch(built, "history", "--project", "shop")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") > 3}
    assert set(lines) >= {"Durability", "Developer experience", "Overall"}
    assert "▁▅▅█" in lines["Developer experience"]  # 0, 50, 50, 100
    assert "+78.3" in lines["Overall"]


def test_history_refuses_bad_input_in_one_line(built):
    for args, needle in [
        (("--pillar", "nope"), "no pillar 'nope' in project 'shop'"),
        (("--since", "last tuesday"), "--since 'last tuesday': use a date"),
        (("--since", "2026-11-05", "--until", "2026-11-01"), "is after until"),
    ]:
        proc = pillarwatch(built, "history", "--project", "shop", *args)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_diff_defaults_to_the_last_two_snapshots_and_names_the_evidence(built):
    found = as_json(built, "diff", "--project", "shop")
    assert (found["a"], found["b"]) == (5, 7)
    assert found["overall"]["before"] == pytest.approx(50.0) and found["overall"]["after"] == pytest.approx(59 / 0.6)
    assert {p["id"]: round(p["delta"], 1) for p in found["pillars"]} == {"durability": 46.7, "dx": 50.0}
    assert {(c["pillar"], c["criterion"], c["before"], c["after"]) for c in found["criteria"]} == {
        ("durability", "restart", 0.0, 1.0), ("durability", "replay", 0.5, 0.9), ("dx", "ci", 0.0, 1.0)}
    descriptions = [e["description"] for e in found["evidence"]]
    assert f"tests/test_restart.py added in {built.shas[4][:7]}" in descriptions
    assert "docs/STATUS.md:1: 0.50 → 0.90" in descriptions


def test_diff_of_two_given_snapshots_shows_the_deleted_test(built):
    found = as_json(built, "diff", "3", "5")
    assert found["project"] == "shop" and not found["rules_changed"]
    assert [(c["criterion"], c["status_after"]) for c in found["criteria"]] == [("restart", "ok")]
    assert f"tests/test_restart.py deleted in {built.shas[3][:7]}" in [e["description"] for e in found["evidence"]]
    text = pillarwatch(built, "diff", "3", "5").stdout
    assert "Durability: 83.3% → 50.0% (-33.3)" in text and "deleted in" in text


def test_diff_errors_name_what_is_wrong(built):
    proc = pillarwatch(built, "diff", "1", "2")
    assert proc.returncode == 2 and "different projects" in proc.stderr
    proc = pillarwatch(built, "diff", "1", "999")
    assert proc.returncode == 2 and "no snapshot 999" in proc.stderr
    proc = pillarwatch(built, "diff", "--project", "shop", "--json", "1", "1")
    assert proc.returncode == 2 and "the same snapshot" in proc.stderr  # nothing to compare: an error, not an empty diff


def test_since_is_an_iso_8601_date_or_time_as_in_the_api(built):
    found = as_json(built, "history", "--project", "shop", "--since", "20261104")
    assert [p["taken_at"] for p in found["points"]] == ["2026-11-04T08:00:00Z", "2026-11-05T08:00:00Z"]
    for bad in ("1762243200", "2026-13-01", "yesterday"):
        proc = pillarwatch(built, "history", "--project", "shop", "--since", bad)
        assert proc.returncode == 2 and f"--since {bad!r}" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_diff_of_an_equal_or_reversed_pair_is_one_line_and_exit_2(built):
    for args, needle in [(("5", "5"), "the same snapshot"), (("5", "3"), "is later than"),
                         (("--project", "shop", "7"), "the same snapshot")]:
        proc = pillarwatch(built, "diff", *args)
        assert proc.returncode == 2 and needle in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_alerts_of_one_project_count_only_its_outbox(built):
    assert as_json(built, "alerts", "--project", "billing")["outbox"] == {}
    assert as_json(built, "alerts", "--project", "shop")["outbox"] == {"pending": 8}
