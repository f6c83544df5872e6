"""GitHub check runs (``check_runs``) and the success rate's denominator, against a real HTTP server.

The check runs are the recorded answer of GitHub's "List check runs for a Git reference"
(tests/fixtures/gh_checks_list_check_runs_for_ref.json, see PROVENANCE.md), each run
copied with its name, status and conclusion changed to cover every conclusion.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collectors.evidence import CollectResult, EvidenceRequest
from collectors.github import GitHubSource, collect
from collectors.models.github import CheckRuns
from tests.support.http_server import HttpServer, Reply, Seen
from tests.support.paths import fixture_text
from tests.support.results import only_error

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
SECRET = "ghp_cHeCkS1234567890abcdefSECRET"
CHECKS = "/repos/o/r/commits/main/check-runs"
RUNS = "/repos/o/r/actions/workflows/ci.yml/runs"
SHA = "78b9ff49d47daaa158eb373c4e2e040f739df8b9"
# (name, status, conclusion): every conclusion, and one run still in progress.
MIXED = [("buildkite/test", "completed", "success"), ("circleci: lint", "completed", "success"),
         ("buildkite/integration", "completed", "failure"), ("buildkite/deploy", "completed", "cancelled"),
         ("buildkite/docs", "completed", "skipped"), ("jenkins/sonar", "completed", "neutral"),
         ("buildkite/e2e", "completed", "timed_out"), ("buildkite/bench", "in_progress", None)]


def recorded() -> dict[str, Any]:
    return json.loads(fixture_text("gh_checks_list_check_runs_for_ref.json"))


def check_runs(*runs: tuple[str, str, str | None]) -> dict[str, Any]:
    template = recorded()["check_runs"][0]
    listed = [{**template, "id": template["id"] + i, "name": name, "status": status, "conclusion": conclusion,
               "html_url": f"https://github.com/o/r/runs/{template['id'] + i}"}
              for i, (name, status, conclusion) in enumerate(runs)]
    return {"total_count": len(listed), "check_runs": listed}


def run(server: HttpServer, tmp_path: Path, *asks: dict[str, Any], **fields: Any) -> CollectResult:
    defaults: dict[str, Any] = {"id": "gh", "repo": "o/r", "branch": "main", "api_url": server.url, "token_env": None}
    source = GitHubSource.model_validate({**defaults, **fields})
    requests = [EvidenceRequest(signal=a["signal"], params={k: v for k, v in a.items() if k != "signal"}) for a in asks]
    return collect(source, requests, now=NOW, cache_dir=tmp_path / "cache")


def test_the_recorded_page_is_read_as_github_lists_it(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(CHECKS, Reply(200, recorded()))
    result = run(http_server, tmp_path, {"signal": "check_runs", "name": "windows"})
    value = result.evidence[0].value
    assert result.answered and result.fingerprint == SHA and value is not None
    assert (value["total"], value["passed"], value["success_rate"]) == (2, 2, 1.0)  # Java 13 and Java 11 on windows
    assert value["head_sha"] == SHA and result.evidence[0].provenance.commit == SHA
    seen = http_server.requests[0]
    assert seen.path == f"{CHECKS}?per_page=100"
    assert seen.headers["accept"] == "application/vnd.github+json" and "authorization" not in seen.headers


def test_every_conclusion_is_counted_and_cancelled_and_skipped_are_left_out(http_server: HttpServer,
                                                                           tmp_path: Path) -> None:
    http_server.route(CHECKS, Reply(200, check_runs(*MIXED)))
    result = run(http_server, tmp_path, {"signal": "check_runs"}, {"signal": "check_runs", "name": "^buildkite/"},
                 {"signal": "check_runs", "count_cancelled": True})
    every, buildkite, counting = (e.value for e in result.evidence)
    assert every is not None and buildkite is not None and counting is not None
    assert every["conclusions"] == {"cancelled": 1, "failure": 1, "neutral": 1, "skipped": 1, "success": 2,
                                    "timed_out": 1}
    # 7 completed; cancelled and skipped out: 2 successes of 5 (neutral counts, as not a success).
    assert (every["total"], every["completed"], every["pending"], every["passed"], every["failed"],
            every["counted"]) == (8, 7, 1, 2, 2, 5)
    assert every["success_rate"] == 2 / 5
    assert every["failing"] == ["buildkite/e2e", "buildkite/integration", "jenkins/sonar"]
    assert (buildkite["total"], buildkite["passed"], buildkite["counted"], buildkite["success_rate"]) == (6, 1, 3, 1 / 3)
    assert (counting["counted"], counting["success_rate"]) == (7, 2 / 7)
    assert counting["failing"] == ["buildkite/deploy", "buildkite/docs", "buildkite/e2e", "buildkite/integration",
                                   "jenkins/sonar"]
    assert result.evidence[1].provenance.url is not None and result.evidence[1].provenance.url.endswith("/runs/514982800")
    assert len(http_server.requests) == 1  # one listing answers every check_runs request


def test_pagination_reads_every_page(http_server: HttpServer, tmp_path: Path) -> None:
    page2 = f"{CHECKS}?per_page=100&page=2"
    first, second = check_runs(*MIXED[:4]), check_runs(*MIXED[4:])
    http_server.route(CHECKS, Reply(200, first, headers={"Link": f'<{http_server.url}{page2}>; rel="next"'}))
    http_server.route(page2, Reply(200, second))
    value = run(http_server, tmp_path, {"signal": "check_runs"}).evidence[0].value
    assert value is not None and (value["total"], value["pending"], value["success_rate"]) == (8, 1, 2 / 5)
    assert [s.path for s in http_server.requests] == [f"{CHECKS}?per_page=100", page2]


def test_a_regex_that_matches_none_is_not_found(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(CHECKS, Reply(200, check_runs(*MIXED)))
    result = run(http_server, tmp_path, {"signal": "check_runs", "name": "^gitlab"}, {"signal": "check_runs"})
    missing, found = result.evidence
    assert result.answered and found.value is not None
    assert missing.error is not None and missing.error.kind == "not_found"
    assert missing.error.message == "no check run matching '^gitlab' on the head of o/r@main (8 listed)"


def test_runs_still_in_progress_or_all_cancelled_give_no_rate(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(CHECKS, Reply(200, check_runs(("ci/a", "in_progress", None), ("ci/b", "queued", None),
                                                    ("ci/c", "completed", "cancelled"))))
    result = run(http_server, tmp_path, {"signal": "check_runs"}, {"signal": "check_runs", "count_cancelled": True})
    waiting, counting = result.evidence
    assert waiting.error is not None and waiting.error.kind == "not_found"
    assert "(1 completed, 2 not yet)" in waiting.error.message
    assert counting.value is not None and (counting.value["success_rate"], counting.value["counted"]) == (0.0, 1)


def test_an_api_error_is_stale_evidence_and_the_runs_evidence_is_kept(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(RUNS, Reply(200, json.loads(fixture_text("gh_actions_list_workflow_runs.json"))))
    http_server.route(CHECKS, Reply(502, {"message": "Server Error"}))
    result = run(http_server, tmp_path, {"signal": "latest_run"}, {"signal": "check_runs"}, workflow="ci.yml")
    latest, checks = result.evidence
    assert latest.value is not None and latest.value["run_id"] == 7842477524
    assert checks.error is not None and checks.error.kind == "http_status" and CHECKS in checks.error.message
    assert result.error == checks.error and not result.answered  # the source did not answer: its criteria go stale
    assert result.fingerprint == "7842477524"


def test_no_branch_reads_the_default_branch(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route("/repos/o/r", Reply(200, {"full_name": "o/r", "default_branch": "release/2.x"}))
    http_server.route("/repos/o/r/commits/release%2F2.x/check-runs", Reply(200, check_runs(*MIXED[:2])))
    value = run(http_server, tmp_path, {"signal": "check_runs"}, branch=None).evidence[0].value
    assert value is not None and value["ref"] == "release/2.x" and value["success_rate"] == 1.0
    http_server.route("/repos/o/r", Reply(200, {"full_name": "o/r"}))
    kind, message = only_error(run(http_server, tmp_path / "again", {"signal": "check_runs"}, branch=None))
    assert kind == "malformed" and "default_branch" in message


def test_a_source_without_workflow_answers_check_runs_only(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(CHECKS, Reply(200, check_runs(*MIXED)))
    result = run(http_server, tmp_path, {"signal": "success_rate"}, {"signal": "check_runs"},
                 {"signal": "success_rate", "runs": 0})
    rate, checks, bad = result.evidence
    assert result.answered and checks.value is not None
    assert rate.error is not None and rate.error.kind == "unsupported" and "names no workflow" in rate.error.message
    assert bad.error is not None and bad.error.kind == "malformed"
    assert [s.path.split("?")[0] for s in http_server.requests] == [CHECKS]  # the runs were never listed


def test_etag_and_token_as_for_workflow_runs(http_server: HttpServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_TEST_GH_TOKEN", SECRET)

    def etagged(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"c1"':
            return Reply(304, headers={"ETag": '"c1"'})
        return Reply(200, check_runs(*MIXED), headers={"ETag": '"c1"'})

    http_server.route(CHECKS, etagged)
    first = run(http_server, tmp_path, {"signal": "check_runs"}, token_env="PW_TEST_GH_TOKEN")
    second = run(http_server, tmp_path, {"signal": "check_runs"}, token_env="PW_TEST_GH_TOKEN")
    assert [s.headers.get("if-none-match") for s in http_server.requests] == [None, '"c1"']
    assert {s.headers["authorization"] for s in http_server.requests} == {f"Bearer {SECRET}"}
    assert first.evidence[0].value is not None and second.evidence[0].value == first.evidence[0].value
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files and all(SECRET.encode() not in p.read_bytes() for p in files)


def test_malformed_listing_fails_the_source(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(CHECKS, Reply(200, {"total_count": 1, "check_runs": [{"id": 1}]}))
    kind, message = only_error(run(http_server, tmp_path, {"signal": "check_runs"}))
    assert kind == "malformed" and CHECKS in message


def test_name_is_re2() -> None:
    assert CheckRuns.model_validate({"name": r"^ci/(unit|e2e)$"}).name == r"^ci/(unit|e2e)$"
    with pytest.raises(ValidationError, match="RE2 does not support"):
        CheckRuns.model_validate({"name": "(?=x)"})


# --- success_rate of Actions runs: cancelled and skipped out of the denominator by default -----------------


def actions_runs(*conclusions: str) -> dict[str, Any]:
    body = json.loads(fixture_text("gh_actions_list_workflow_runs.json"))
    template = body["workflow_runs"][0]
    body["workflow_runs"] = [{**template, "id": template["id"] - i, "conclusion": c} for i, c in enumerate(conclusions)]
    return body


def test_success_rate_leaves_cancelled_and_skipped_out_unless_asked(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(RUNS, Reply(200, actions_runs("success", "cancelled", "failure", "skipped", "success", "neutral")))
    result = run(http_server, tmp_path, {"signal": "success_rate"}, {"signal": "success_rate", "count_cancelled": True},
                 workflow="ci.yml")
    default, counting = (e.value for e in result.evidence)
    assert default == {"rate": 2 / 4, "successes": 2, "runs": 6, "failures": 1}
    assert counting == {"rate": 2 / 6, "successes": 2, "runs": 6, "failures": 1}


def test_success_rate_of_only_cancelled_runs_is_not_found(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(RUNS, Reply(200, actions_runs("cancelled", "skipped", "success")))
    result = run(http_server, tmp_path, {"signal": "success_rate", "runs": 2}, {"signal": "success_rate"},
                 workflow="ci.yml")
    none, three = result.evidence
    assert none.error is not None and none.error.kind == "not_found"
    assert none.error.message == "the last 2 completed runs were all cancelled or skipped"
    assert three.value == {"rate": 1.0, "successes": 1, "runs": 3, "failures": 0}
