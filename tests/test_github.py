"""The GitHub Actions collector against a real HTTP server replaying recorded API answers."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collectors.evidence import CollectResult, EvidenceRequest
from collectors.github import SIGNALS, GitHubSource, collect
from tests.support.http_server import HttpServer, Reply, Seen
from tests.support.paths import fixture_text
from tests.support.results import only_error

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
SECRET = "ghp_tOkEn1234567890abcdefSECRET"
RUNS = "/repos/o/r/actions/workflows/ci.yml/runs"
LATEST = {"signal": "latest_run"}


def listing() -> dict[str, Any]:
    return json.loads(fixture_text("gh_actions_list_workflow_runs.json"))


def source(server: HttpServer, **fields: Any) -> GitHubSource:
    defaults: dict[str, Any] = {"id": "gh", "repo": "o/r", "workflow": "ci.yml", "api_url": server.url,
                                "token_env": None}
    return GitHubSource.model_validate({**defaults, **fields})


def run(server: HttpServer, tmp_path: Path, *asks: dict[str, Any], **fields: Any) -> CollectResult:
    requests = [EvidenceRequest(signal=a["signal"], params={k: v for k, v in a.items() if k != "signal"}) for a in asks]
    return collect(source(server, **fields), requests, now=NOW, cache_dir=tmp_path / "cache")


def test_latest_run_from_the_recorded_listing(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(RUNS, Reply(200, listing()))
    result = run(http_server, tmp_path, LATEST, branch="main")
    first = listing()["workflow_runs"][0]
    assert result.answered and result.fingerprint == str(first["id"]) == "7842477524"
    evidence = result.evidence[0]
    assert evidence.value == {
        "success": True, "conclusion": "success", "run_id": 7842477524, "run_number": 84,
        "url": first["html_url"], "head_sha": first["head_sha"], "created_at": "2024-02-09T10:10:18Z",
        "duration_seconds": 41.0,  # updated_at 10:10:59 - run_started_at 10:10:18
    }
    assert evidence.provenance.url == first["html_url"] and evidence.provenance.commit == first["head_sha"]
    seen = http_server.requests[0]
    assert seen.path == f"{RUNS}?status=completed&per_page=1&exclude_pull_requests=true&branch=main"
    assert seen.headers["accept"] == "application/vnd.github+json"
    assert seen.headers["x-github-api-version"] == "2022-11-28"
    assert "authorization" not in seen.headers  # no token configured


def test_latest_run_cancelled_and_in_progress_runs_skipped(http_server: HttpServer, tmp_path: Path) -> None:
    body = listing()
    cancelled = json.loads(fixture_text("gh_actions_get_workflow_run_cancelled.json"))
    running = {**body["workflow_runs"][0], "id": 9999999999, "status": "in_progress", "conclusion": None}
    body["workflow_runs"] = [running, cancelled, *body["workflow_runs"]]
    http_server.route(RUNS, Reply(200, body))
    value = run(http_server, tmp_path, LATEST).evidence[0].value
    assert value is not None
    assert (value["success"], value["conclusion"], value["run_id"]) == (False, "cancelled", cancelled["id"])
    # This older recording has no run_started_at: created_at 09:37:09 -> updated_at 09:37:43.
    assert "run_started_at" not in cancelled and value["duration_seconds"] == 34.0


def test_success_rate_counts_completed_runs(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(RUNS, Reply(200, listing()))
    result = run(http_server, tmp_path, {"signal": "success_rate"}, {"signal": "success_rate", "runs": 4}, LATEST)
    every, last4, latest = (e.value for e in result.evidence)
    # The recording holds 6 runs: 5 success, 1 failure (the 4th listed).
    assert every == {"rate": 5 / 6, "successes": 5, "runs": 6, "failures": 1}
    assert last4 == {"rate": 3 / 4, "successes": 3, "runs": 4, "failures": 1}
    assert latest is not None and latest["success"] is True
    assert len(http_server.requests) == 1 and "per_page=10" in http_server.requests[0].path  # one fetch, largest need


def test_pagination_follows_link_next(http_server: HttpServer, tmp_path: Path) -> None:
    body = listing()
    runs = body["workflow_runs"]
    page2 = f"{RUNS}?status=completed&page=2"
    http_server.route(RUNS, Reply(200, {**body, "workflow_runs": runs[:3]},
                                  headers={"Link": f'<{http_server.url}{page2}>; rel="next"'}))
    http_server.route(page2, Reply(200, {**body, "workflow_runs": runs[3:]}))
    result = run(http_server, tmp_path, {"signal": "success_rate", "runs": 6})
    assert result.evidence[0].value == {"rate": 5 / 6, "successes": 5, "runs": 6, "failures": 1}
    assert [s.path.split("?")[0] for s in http_server.requests] == [RUNS, RUNS]
    assert http_server.requests[1].path == page2
    # Enough runs on the first page: the next one is not fetched.
    assert run(http_server, tmp_path, {"signal": "success_rate", "runs": 3}).evidence[0].value["runs"] == 3
    assert len(http_server.requests) == 3


def test_etag_304_reuses_the_cached_answer(http_server: HttpServer, tmp_path: Path) -> None:
    def etagged(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == 'W/"abc"':
            return Reply(304, headers={"ETag": 'W/"abc"'})
        return Reply(200, listing(), headers={"ETag": 'W/"abc"'})

    http_server.route(RUNS, etagged)
    asks = (LATEST, {"signal": "success_rate"})
    first, second = run(http_server, tmp_path, *asks), run(http_server, tmp_path, *asks)
    assert [s.headers.get("if-none-match") for s in http_server.requests] == [None, 'W/"abc"']
    assert [e.model_dump(exclude={"observed_at"}) for e in second.evidence] == \
        [e.model_dump(exclude={"observed_at"}) for e in first.evidence]
    assert second.fingerprint == first.fingerprint == "7842477524" and first.evidence[0].value is not None


@pytest.mark.parametrize(
    ("reply", "kind"),
    [(Reply(500, {"message": "Server Error"}), "http_status"), (Reply(200, "{\"workflow_runs\": [tru"), "malformed"),
     (Reply(200, {"total_count": 0}), "malformed"), (Reply(404, {"message": "Not Found"}), "not_found"),
     (Reply(401, {"message": "Bad credentials"}), "auth")],
)
def test_faults_fail_the_whole_source(http_server: HttpServer, tmp_path: Path, reply: Reply, kind: str) -> None:
    http_server.route(RUNS, reply)
    result = run(http_server, tmp_path, LATEST, {"signal": "success_rate"})
    got, message = only_error(result)
    assert got == kind and RUNS in message and result.fingerprint is None


def test_hang_is_a_quick_timeout(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(RUNS, Reply(200, listing(), delay=10))
    started = time.monotonic()
    result = run(http_server, tmp_path, LATEST, timeout_seconds=0.5)
    assert time.monotonic() - started < 3
    assert only_error(result)[0] == "timeout" and result.error is not None and result.error.retryable


def test_a_listing_trickled_a_byte_at_a_time_is_a_timeout_well_before_the_server_closes(
        http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(RUNS, Reply(200, listing(), trickle=0.3))  # minutes to send in full
    started = time.monotonic()
    result = run(http_server, tmp_path, LATEST, timeout_seconds=1)
    assert time.monotonic() - started < 3
    assert only_error(result)[0] == "timeout"


def test_rate_limit_defers_and_blocks_later_runs(http_server: HttpServer, tmp_path: Path) -> None:
    reset = int(time.time()) + 3000
    http_server.route(RUNS, Reply(403, {"message": "API rate limit exceeded for user ID 1."},
                                  headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}))
    first = run(http_server, tmp_path, LATEST)
    second = run(http_server, tmp_path, LATEST)
    stamp = datetime.fromtimestamp(reset, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for result in (first, second):
        kind, message = only_error(result)
        assert kind == "rate_limited" and stamp in message
    assert len(http_server.requests) == 1  # the second collect asked nothing


def test_short_retry_after_waits_once(http_server: HttpServer, tmp_path: Path) -> None:
    answers = iter([Reply(403, {"message": "secondary rate limit"}, headers={"retry-after": "1"}),
                    Reply(200, listing())])
    http_server.route(RUNS, lambda seen: next(answers))
    result = run(http_server, tmp_path, LATEST)
    assert result.answered and result.evidence[0].value is not None and result.evidence[0].value["run_id"] == 7842477524
    assert len(http_server.requests) == 2


def test_token_sent_but_never_kept(http_server: HttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_TEST_GH_TOKEN", SECRET)
    http_server.route(RUNS, Reply(200, listing(), headers={"ETag": '"e1"'}))
    good = run(http_server, tmp_path, LATEST, {"signal": "success_rate"}, token_env="PW_TEST_GH_TOKEN")
    http_server.route(RUNS, Reply(401, {"message": f"Bad credentials {SECRET}"}))
    bad = run(http_server, tmp_path, LATEST, token_env="PW_TEST_GH_TOKEN")
    assert {s.headers["authorization"] for s in http_server.requests} == {f"Bearer {SECRET}"}
    assert good.answered and only_error(bad)[0] == "auth"
    for result in (good, bad):
        assert SECRET not in result.model_dump_json()
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files and all(SECRET.encode() not in p.read_bytes() for p in files)


def test_token_from_file(http_server: HttpServer, tmp_path: Path) -> None:
    token_file = tmp_path / "gh-token"
    token_file.write_text(f"{SECRET}\n")
    http_server.route(RUNS, Reply(200, listing()))
    assert run(http_server, tmp_path, LATEST, token_file=str(token_file)).answered
    assert http_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    missing = run(http_server, tmp_path, LATEST, token_file=str(tmp_path / "absent"))
    assert only_error(missing) == ("auth", f"token file {tmp_path / 'absent'}: cannot read: No such file or directory")
    assert len(http_server.requests) == 1


def test_enterprise_api_url_with_path_prefix(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(f"/api/v3{RUNS}", Reply(200, listing()))
    result = collect(GitHubSource(id="ghe", repo="o/r", workflow="ci.yml", api_url=f"{http_server.url}/api/v3/",
                                  token_env=None),
                     [EvidenceRequest(signal="latest_run")], now=NOW, cache_dir=tmp_path)
    assert result.answered and result.evidence[0].value is not None
    assert http_server.requests[0].path.startswith(f"/api/v3{RUNS}?")


def test_numeric_workflow_id_and_no_completed_runs(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route("/repos/o/r/actions/workflows/161335/runs", Reply(200, {"total_count": 0, "workflow_runs": []}))
    result = run(http_server, tmp_path, LATEST, {"signal": "success_rate"}, workflow="161335")
    assert result.answered and result.fingerprint is None
    assert [(e.error.kind if e.error else None) for e in result.evidence] == ["not_found", "not_found"]


def test_bad_requests_are_per_item(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(RUNS, Reply(200, listing()))
    result = run(http_server, tmp_path, {"signal": "test_report"}, {"signal": "success_rate", "runs": 0}, LATEST)
    kinds = [(e.error.kind if e.error else "ok") for e in result.evidence]
    assert kinds == ["unsupported", "malformed", "ok"] and result.answered
    assert set(SIGNALS) == {"latest_run", "success_rate", "check_runs"}


@pytest.mark.parametrize("fields", [{"repo": "just-a-name"}, {"repo": "o/r/x"}, {"repo": "../r"},
                                    {"workflow": "a/b.yml"}, {"api_url": "ftp://h"}, {"extra": 1}])
def test_source_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GitHubSource.model_validate({"id": "gh", "repo": "o/r", "workflow": "ci.yml", **fields})
