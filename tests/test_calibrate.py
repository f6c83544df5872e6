"""`pillarwatch calibrate` over a generated history with the team's documents at three commits
(tests/support/calibration.py): a dead rule, a saturated one, a constant one, one that agrees with the
team and one that does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from daemon.config.loading import load_config
from tests.support.api import running
from tests.support.calibration import CONFIG, calibration_project
from tests.support.cli import pillarwatch, run_cli

IMPORT = ("import", "--from-git", "repo", "--path", "notes/PROGRESS.md")


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The project with the team's three documents imported, nothing backfilled yet."""
    root = tmp_path_factory.mktemp("calibrate")
    shas = calibration_project(root)
    assert pillarwatch(root, *IMPORT).returncode == 0
    return root, shas


@pytest.fixture(scope="module")
def calibrated(judged, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    """`calibrate --json` run first (it backfills the three judged commits), its output, and the root."""
    root, shas = judged
    proc = pillarwatch(root, "calibrate", "--json")
    assert proc.returncode == 0, proc.stderr
    return root, shas, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def full(calibrated, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    """A copy of the calibrated project with the whole history backfilled, and `calibrate --json` over it."""
    source, shas, _ = calibrated
    root = tmp_path_factory.mktemp("full") / "p"
    shutil.copytree(source, root)
    backfilled = pillarwatch(root, "backfill", "--since", "2025-01-01", "--json")
    assert json.loads(backfilled.stdout)[0]["added"] == 19  # 22 commits, 3 of them scored by calibrate
    proc = pillarwatch(root, "calibrate", "--json")
    assert proc.returncode == 0, proc.stderr
    return root, shas, json.loads(proc.stdout)


def _criteria(out: dict) -> dict[str, dict]:
    return {c["criterion"]: c for c in out["calibration"]["criteria"]}


def test_calibrate_backfills_the_judged_commits_and_measures_the_agreement(calibrated):
    _, shas, out = calibrated
    assert out["backfilled"] == 3 and out["written"] is False
    found = _criteria(out)
    assert {k: c["commits"] for k, c in found.items()} == dict.fromkeys(found, 3)

    agree = found["agree"]["agreement"]
    assert agree["compared"] == 3 and agree["not_compared"] == 0
    assert agree["mean_error"] == pytest.approx(0.05 / 3) and agree["max_error"] == pytest.approx(0.05)
    assert agree["worst_commit"] == shas[3]
    assert [(p["commit"], p["team"], p["rule"]) for p in agree["pairs"]] == [
        (shas[3], 0.25, pytest.approx(0.2)), (shas[7], 0.4, pytest.approx(0.4)), (shas[15], 0.8, pytest.approx(0.8))]
    assert {p["by"] for p in agree["pairs"]} == {"notes/PROGRESS.md"}

    disagree = found["disagree"]["agreement"]
    assert disagree["mean_error"] == pytest.approx(0.8 / 3) and disagree["max_error"] == pytest.approx(0.4)
    assert disagree["worst_commit"] == shas[7]  # 0.8 by the rule, 0.4 by the team

    assert found["agree"]["verdicts"] == ["agrees"] and found["agree"]["suggestion"] is None
    assert found["disagree"]["verdicts"] == ["disagrees"]
    assert found["dead"]["verdicts"] == ["dead", "unjudged"]
    assert found["saturated"]["verdicts"] == ["saturated", "unjudged"]
    assert found["constant"]["verdicts"] == ["unjudged"]  # 3 commits are too few to call it constant


def test_a_second_run_backfills_nothing(calibrated):
    root, _, first = calibrated
    again = json.loads(pillarwatch(root, "calibrate", "--json").stdout)
    assert again["backfilled"] == 0
    assert again["calibration"] == first["calibration"]


def test_the_verdicts_over_the_whole_history(full):
    _, shas, out = full
    found = _criteria(out)
    assert out["backfilled"] == 0
    assert {k: c["commits"] for k, c in found.items()} == dict.fromkeys(found, 22)
    assert {k: c["verdict"] for k, c in found.items()} == {
        "agree": "agrees", "disagree": "disagrees", "dead": "dead", "saturated": "saturated", "constant": "constant"}
    assert found["dead"]["verdicts"] == ["dead", "constant", "unjudged"]
    assert found["dead"]["above_zero"] == 0 and found["dead"]["values"] == [0.0]
    assert found["saturated"]["at_one"] == 20 and found["saturated"]["verdicts"] == ["saturated", "unjudged"]
    assert found["constant"]["values"] == [0.5] and found["constant"]["verdicts"] == ["constant", "unjudged"]
    assert found["disagree"]["at_one"] == 13  # ten documents and more: 1.0 from commit 10 on
    assert found["dead"]["findings"][:2] == ["dead: never above 0 in 22 commits", "constant: 0.00 at every one of 22 commits"]
    assert found["saturated"]["findings"][0] == "saturated: at 1.0 in 20 of 22 commits (91%)"
    assert found["disagree"]["findings"] == [
        f"disagrees with the team: mean error 0.27 (over 0.15), worst 0.40 at {shas[7][:7]}, over 3 judged commits"]


def test_a_scale_fitted_to_the_team_is_suggested_for_the_rule_that_disagrees(full):
    _, _, out = full
    suggestion = _criteria(out)["disagree"]["suggestion"]
    assert suggestion["check"] == 0 and suggestion["transform"] == {"scale": [0.0, 20.0]}
    assert suggestion["mean_error_before"] == pytest.approx(0.8 / 3) and suggestion["mean_error_after"] == 0
    assert [c["criterion"] for c in out["calibration"]["criteria"] if c["suggestion"]] == ["disagree"]
    assert out["patch"].splitlines()[-5:-3] == ["-                  scale: [0, 10]", "+                  scale: [0, 20]"]


@pytest.mark.parametrize(("fail_on", "code"), [("dead", 1), ("saturated,constant", 1), ("disagrees", 1),
                                               ("agrees", 1), ("no-data", 0)])
def test_fail_on_exits_1_when_a_criterion_has_a_named_verdict(full, fail_on, code):
    root = full[0]
    proc = pillarwatch(root, "calibrate", "--fail-on", fail_on)
    assert proc.returncode == code, proc.stderr
    assert "how far to trust these scores" in proc.stdout


def test_fail_on_reads_every_verdict_of_the_history_it_has(calibrated):
    root = calibrated[0]
    assert pillarwatch(root, "calibrate", "--fail-on", "constant").returncode == 0  # 3 commits: not constant yet
    assert pillarwatch(root, "calibrate", "--fail-on", "dead").returncode == 1


def test_an_unknown_verdict_is_a_one_line_error(calibrated):
    proc = pillarwatch(calibrated[0], "calibrate", "--fail-on", "dead,sleepy")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "pillarwatch: error: --fail-on sleepy: not a verdict (use dead, saturated, constant, disagrees, agrees, unjudged, no-data)"]


def test_write_changes_only_that_transform_and_the_rules_hash(full, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(full[0], root)
    before = json.loads(pillarwatch(root, "check", "--json").stdout)["projects"][0]["rules_hash"]
    proc = pillarwatch(root, "calibrate", "--write")
    assert proc.returncode == 0, proc.stderr
    assert "written: the rules changed" in proc.stdout
    assert (root / "pw.yaml").read_text() == CONFIG.replace("                  scale: [0, 10]\n", "                  scale: [0, 20]\n")
    checked = pillarwatch(root, "check", "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["projects"][0]["rules_hash"] != before
    # The stored history is re-scored under the new rules: the rule now agrees, and nothing more is suggested.
    again = json.loads(pillarwatch(root, "calibrate", "--json").stdout)
    disagree = _criteria(again)["disagree"]
    assert disagree["verdicts"] == ["agrees"] and disagree["commits"] == 22
    assert disagree["agreement"]["mean_error"] == 0 and disagree["suggestion"] is None
    assert again["calibration"]["rules_hash"] != full[2]["calibration"]["rules_hash"]
    assert again["patch"] == "" and again["backfilled"] == 0


def test_the_report_and_the_dashboard_say_how_far_to_trust_the_scores(full):
    root, shas, _ = full
    markdown = pillarwatch(root, "report").stdout
    section = markdown.split("## How far to trust these scores\n", 1)[1]
    assert "| Criterion | Verdict | Commits | At 1.0 | Judged | Mean error | Max error | Worst at | In words |" in section
    assert f"| Documents describe it | disagrees | 22 | 13 | 3 | 0.27 | 0.40 | {shas[7][:7]} | disagrees with the team" in section
    assert "| A file nobody wrote | dead | 22 | 0 | 0 | – | – | – | dead: never above 0 in 22 commits;" in section
    (root / "report.md").write_text(markdown)
    assert run_cli("verify-doc", "report.md", cwd=root).returncode == 0  # still a document verify-doc reads

    body = json.loads(pillarwatch(root, "report", "--format", "json").stdout)
    assert {c["criterion"]: c["verdict"] for c in body["trust"]["criteria"]}["saturated"] == "saturated"

    html = pillarwatch(root, "report", "--format", "html").stdout
    assert '<h2 id="trust-heading">How far to trust these scores</h2>' in html
    for criterion, verdict in [("agree", "agrees"), ("disagree", "disagrees"), ("dead", "dead"),
                               ("saturated", "saturated"), ("constant", "constant")]:
        assert f'data-criterion="quality/{criterion}" data-verdict="{verdict}"' in html


def test_the_dashboard_served_by_the_api_has_the_section(full):
    root = full[0]
    with running(load_config(root / "pw.yaml")) as url:
        page = httpx.get(f"{url}/projects/svc/dashboard", timeout=30)
    assert page.status_code == 200
    assert '<h2 id="trust-heading">How far to trust these scores</h2>' in page.text
    assert 'data-criterion="quality/disagree" data-verdict="disagrees"' in page.text
    assert "suggested: scale [0, 20] on repo: file_count(glob=docs/*.md).count" in page.text
