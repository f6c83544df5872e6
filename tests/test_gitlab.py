"""The GitLab CI collector against a real HTTP server replaying recorded API answers.

The pipelines listing is GitLab's documented example (two pipelines, both
"pending"); tests give them completed statuses where they need finished runs.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collectors.evidence import CollectResult, EvidenceRequest
from collectors.gitlab import SIGNALS, GitLabSource, collect
from tests.support.http_server import HttpServer, Reply, Seen
from tests.support.paths import fixture_text
from tests.support.results import only_error

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
SECRET = "glpat-SeCrEt0123456789xyz"
PIPELINES = "/projects/group%2Fproject/pipelines"
LATEST = {"signal": "latest_run"}
REPORT = {"signal": "test_report"}


def pipelines(**status_by_id: str) -> list[dict[str, Any]]:
    """The recorded pipelines (ids 47 and 48), with statuses set per id: pipelines(p47="success")."""
    listed = json.loads(fixture_text("gitlab_list_project_pipelines_docs.json"))
    for item in listed:
        item["status"] = status_by_id.get(f"p{item['id']}", item["status"])
    return listed


def test_report() -> dict[str, Any]:
    return json.loads(fixture_text("gitlab_pipeline_test_report.json"))


test_report.__test__ = False  # type: ignore[attr-defined]  # a fixture reader, not a test


def single_pipeline(pipeline_id: int, **fields: Any) -> dict[str, Any]:
    """GitLab's documented answer of GET /projects/:id/pipelines/:pipeline_id (doc/api/pipelines.md,
    "Get a single pipeline", gitlabhq/gitlabhq 017a6c129d6a), given the id of a listed pipeline."""
    listed = {p["id"]: p for p in pipelines()}[pipeline_id]
    return {
        "id": pipeline_id, "iid": listed["iid"], "project_id": 21, "name": "Build pipeline", "sha": listed["sha"],
        "ref": "main", "status": "success", "source": "push", "created_at": "2022-09-21T01:05:07.200Z",
        "updated_at": "2022-09-21T01:05:50.185Z", "web_url": listed["web_url"],
        "before_sha": "8a24fb3c5877a6d0b611ca41fc86edc174593e2b", "tag": False, "yaml_errors": None,
        "started_at": "2022-09-21T01:05:14.197Z", "finished_at": "2022-09-21T01:05:50.175Z", "committed_at": None,
        "duration": 34, "queued_duration": 6, "coverage": None,
    } | fields


def run(server: HttpServer, tmp_path: Path, *asks: dict[str, Any], **fields: Any) -> CollectResult:
    defaults: dict[str, Any] = {"id": "gl", "project": "group/project", "api_url": server.url, "token_env": None}
    requests = [EvidenceRequest(signal=a["signal"], params={k: v for k, v in a.items() if k != "signal"}) for a in asks]
    return collect(GitLabSource.model_validate({**defaults, **fields}), requests, now=NOW, cache_dir=tmp_path / "cache")


def test_latest_run_from_the_documented_listing(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success", p48="failed")))
    http_server.route(f"{PIPELINES}/48", Reply(200, single_pipeline(48)))
    result = run(http_server, tmp_path, LATEST, ref="new-pipeline")
    p48 = pipelines()[1]
    assert result.answered and result.fingerprint == "48"
    evidence = result.evidence[0]
    assert evidence.value == {
        "success": False, "conclusion": "failure", "run_id": 48, "run_number": 13, "url": p48["web_url"],
        "head_sha": p48["sha"], "created_at": "2016-08-12T10:06:04.561Z",
        "duration_seconds": 34.0,  # the pipeline's own, from the single-pipeline endpoint (the list has none)
    }
    assert evidence.provenance.url == "https://example.com/foo/bar/pipelines/48"
    assert evidence.provenance.commit == p48["sha"]
    assert http_server.requests[0].path == f"{PIPELINES}?per_page=20&order_by=id&sort=desc&ref=new-pipeline"
    assert [s.path for s in http_server.requests[1:]] == [f"{PIPELINES}/48"]


def test_durations_are_the_pipelines_own_or_none(http_server: HttpServer, tmp_path: Path) -> None:
    listed = pipelines(p47="success", p48="canceled")
    listed[1].update(duration=200)  # a list that carries it: no second request
    http_server.route(PIPELINES, Reply(200, listed))
    value = run(http_server, tmp_path, LATEST).evidence[0].value
    assert value is not None and (value["conclusion"], value["duration_seconds"]) == ("cancelled", 200.0)
    assert len(http_server.requests) == 1
    # The list has none and neither has the pipeline (GitLab's documented canceled pipeline 46: duration null).
    listed[1].pop("duration")
    http_server.route(PIPELINES, Reply(200, listed))
    http_server.route(f"{PIPELINES}/48", Reply(200, single_pipeline(48, duration=None, started_at=None,
                                                                    finished_at="2016-08-12T10:09:56.145Z")))
    result = run(http_server, tmp_path, LATEST)
    assert result.answered and result.evidence[0].value["duration_seconds"] is None  # type: ignore[index]
    # Never updated_at - created_at: that is the time until the last change, not the time it ran.
    assert result.evidence[0].value["duration_seconds"] != pytest.approx(231.662)  # type: ignore[index]


def test_a_failing_pipeline_request_fails_the_source(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success", p48="failed")))
    http_server.route(f"{PIPELINES}/48", Reply(500, {"message": "500 Internal Server Error"}))
    result = run(http_server, tmp_path, LATEST, {"signal": "success_rate"})
    assert not result.answered and result.error is not None and result.error.kind == "http_status"
    latest, rate = result.evidence
    assert latest.error is not None and f"{PIPELINES}/48" in latest.error.message
    assert rate.ok  # what was read is kept


def test_only_completed_pipelines_count(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines()))  # as documented: both pending
    result = run(http_server, tmp_path, LATEST, {"signal": "success_rate"})
    assert result.answered and result.fingerprint is None
    assert [e.error.kind if e.error else None for e in result.evidence] == ["not_found", "not_found"]
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success")))  # 48 still pending
    value = run(http_server, tmp_path, LATEST).evidence[0].value
    assert value is not None and (value["run_id"], value["success"]) == (47, True)


def test_success_rate(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success", p48="failed")))
    result = run(http_server, tmp_path, {"signal": "success_rate"}, {"signal": "success_rate", "runs": 1})
    assert [e.value for e in result.evidence] == [
        {"rate": 0.5, "successes": 1, "runs": 2, "failures": 1},
        {"rate": 0.0, "successes": 0, "runs": 1, "failures": 1},  # the newest, 48, failed
    ]


def test_pagination_follows_link_next(http_server: HttpServer, tmp_path: Path) -> None:
    first, second = pipelines(p47="success", p48="failed")[::-1]  # newest first, as GitLab sends them
    page2 = f"{PIPELINES}?page=2&per_page=20"
    http_server.route(PIPELINES, Reply(200, [first], headers={"Link": f'<{http_server.url}{page2}>; rel="next"'}))
    http_server.route(page2, Reply(200, [second]))
    result = run(http_server, tmp_path, {"signal": "success_rate", "runs": 2})
    assert result.evidence[0].value == {"rate": 0.5, "successes": 1, "runs": 2, "failures": 1}
    assert [s.path for s in http_server.requests][1] == page2 and len(http_server.requests) == 2


def test_test_report_summary(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success", p48="failed")))
    http_server.route(f"{PIPELINES}/48/test_report", Reply(200, test_report()))
    result = run(http_server, tmp_path, REPORT, REPORT, LATEST)
    recorded = test_report()
    assert (recorded["total_count"], recorded["success_count"], recorded["error_count"]) == (9, 5, 4)
    assert result.evidence[0].value == {"total": 9, "success": 5, "failed": 0, "skipped": 0, "error": 4,
                                        "pass_ratio": 5 / 9}
    assert result.evidence[0].provenance.url == "https://example.com/foo/bar/pipelines/48"
    assert result.evidence[1].value == result.evidence[0].value
    assert [s.path.split("?")[0] for s in http_server.requests] == [PIPELINES, f"{PIPELINES}/48/test_report", f"{PIPELINES}/48"]


def test_test_report_null_missing_and_empty(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success", p48="failed")))
    report = test_report()
    report.update(total_count=None, failed_count=None, skipped_count=2)
    del report["error_count"]
    http_server.route(f"{PIPELINES}/48/test_report", Reply(200, report))
    value = run(http_server, tmp_path, REPORT).evidence[0].value
    # null and missing counts are 0; a null total is the sum of the others.
    assert value == {"total": 7, "success": 5, "failed": 0, "skipped": 2, "error": 0, "pass_ratio": 1.0}
    empty = {"total_time": 0, "total_count": 0, "success_count": 0, "failed_count": 0, "skipped_count": 0,
             "error_count": 0, "test_suites": []}
    http_server.route(f"{PIPELINES}/48/test_report", Reply(200, empty))
    assert run(http_server, tmp_path, REPORT).evidence[0].error.kind == "not_found"  # type: ignore[union-attr]


def test_a_failing_test_report_request_fails_the_source(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success", p48="failed")))
    http_server.route(f"{PIPELINES}/48", Reply(200, single_pipeline(48)))
    http_server.route(f"{PIPELINES}/48/test_report", Reply(500, {"message": "500 Internal Server Error"}))
    result = run(http_server, tmp_path, REPORT, LATEST)
    # A request the source needs failed: the source did not answer (partial snapshot, source_failing, metrics),
    # while the evidence that was read stays usable.
    assert not result.answered and result.fingerprint == "48"
    assert result.error is not None and result.error.kind == "http_status" and "/48/test_report" in result.error.message
    report, latest = result.evidence
    assert report.error == result.error
    assert latest.ok and latest.value is not None and latest.value["run_id"] == 48


def test_a_failing_test_report_makes_the_snapshot_partial(http_server: HttpServer, tmp_path: Path) -> None:
    from daemon.config.model import Project
    from daemon.scoring.score import score_project

    http_server.route(PIPELINES, Reply(200, pipelines(p47="success", p48="failed")))
    http_server.route(f"{PIPELINES}/48", Reply(200, single_pipeline(48)))
    http_server.route(f"{PIPELINES}/48/test_report", Reply(500, {"message": "500 Internal Server Error"}))
    project = Project.model_validate({
        "id": "p", "sources": [{"id": "gl", "kind": "gitlab", "project": "group/project", "api_url": http_server.url,
                                "token_env": None}],
        "pillars": [{"id": "ci", "title": "CI", "criteria": [
            {"id": "green", "title": "Green", "checks": [{"source": "gl", "signal": "latest_run"}]},
            {"id": "tests", "title": "Tests pass", "checks": [{"source": "gl", "signal": "test_report", "field": "pass_ratio",
                                                              "transform": "ratio"}]}]}],
    })
    snapshot = score_project(project, [run(http_server, tmp_path, LATEST, REPORT)], previous=None, now=NOW)
    assert not snapshot.complete
    assert [(s.id, s.answered) for s in snapshot.sources] == [("gl", False)]


def test_etag_304_reuses_the_cached_answers(http_server: HttpServer, tmp_path: Path) -> None:
    def etagged(body: Any, etag: str):
        def answer(seen: Seen) -> Reply:
            if seen.headers.get("if-none-match") == etag:
                return Reply(304, headers={"ETag": etag})
            return Reply(200, body, headers={"ETag": etag})
        return answer

    http_server.route(PIPELINES, etagged(pipelines(p47="success", p48="failed"), '"list1"'))
    http_server.route(f"{PIPELINES}/48/test_report", etagged(test_report(), '"rep1"'))
    http_server.route(f"{PIPELINES}/48", etagged(single_pipeline(48), '"p48"'))
    first, second = run(http_server, tmp_path, LATEST, REPORT), run(http_server, tmp_path, LATEST, REPORT)
    assert [s.headers.get("if-none-match") for s in http_server.requests] == [None, None, None, '"list1"', '"p48"', '"rep1"']
    assert [e.model_dump(exclude={"observed_at"}) for e in second.evidence] == \
        [e.model_dump(exclude={"observed_at"}) for e in first.evidence]
    assert first.evidence[1].value is not None and first.evidence[1].value["total"] == 9


@pytest.mark.parametrize(
    ("reply", "kind"),
    [(Reply(500, {"message": "500 Internal Server Error"}), "http_status"), (Reply(200, "[{\"id\": 4"), "malformed"),
     (Reply(200, {"message": "not a list"}), "malformed"), (Reply(401, {"message": "401 Unauthorized"}), "auth"),
     (Reply(404, {"message": "404 Project Not Found"}), "not_found")],
)
def test_faults_fail_the_whole_source(http_server: HttpServer, tmp_path: Path, reply: Reply, kind: str) -> None:
    http_server.route(PIPELINES, reply)
    result = run(http_server, tmp_path, LATEST, REPORT)
    got, message = only_error(result)
    assert got == kind and PIPELINES in message


def test_hang_is_a_quick_timeout(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success"), delay=10))
    started = time.monotonic()
    result = run(http_server, tmp_path, LATEST, timeout_seconds=0.5)
    assert time.monotonic() - started < 3 and only_error(result)[0] == "timeout"


def test_rate_limit_defers_and_blocks_later_runs(http_server: HttpServer, tmp_path: Path) -> None:
    reset = int(time.time()) + 3000  # GitLab's own header names
    http_server.route(PIPELINES, Reply(429, {"message": "Retry later"},
                                       headers={"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}))
    stamp = datetime.fromtimestamp(reset, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for _ in range(2):
        kind, message = only_error(run(http_server, tmp_path, LATEST))
        assert kind == "rate_limited" and stamp in message
    assert len(http_server.requests) == 1


def test_short_retry_after_waits_once(http_server: HttpServer, tmp_path: Path) -> None:
    answers = iter([Reply(429, {"message": "Retry later"}, headers={"Retry-After": "1"}),
                    Reply(200, pipelines(p47="success"))])
    http_server.route(PIPELINES, lambda seen: next(answers))
    result = run(http_server, tmp_path, {"signal": "success_rate"})
    assert result.answered and result.fingerprint == "47" and len(http_server.requests) == 2


def test_private_token_sent_but_never_kept(http_server: HttpServer, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW_TEST_GL_TOKEN", SECRET)
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success", p48="failed"), headers={"ETag": '"e"'}))
    http_server.route(f"{PIPELINES}/48/test_report", Reply(200, test_report(), headers={"ETag": '"r"'}))
    http_server.route(f"{PIPELINES}/48", Reply(200, single_pipeline(48), headers={"ETag": '"p"'}))
    good = run(http_server, tmp_path, LATEST, REPORT, token_env="PW_TEST_GL_TOKEN")
    http_server.route(PIPELINES, Reply(401, {"message": f"401 Unauthorized {SECRET}"}))
    bad = run(http_server, tmp_path, LATEST, token_env="PW_TEST_GL_TOKEN")
    assert [s.headers.get("private-token") for s in http_server.requests] == [SECRET] * 4
    assert all("authorization" not in s.headers for s in http_server.requests)
    assert good.answered and only_error(bad)[0] == "auth"
    assert SECRET not in good.model_dump_json() and SECRET not in bad.model_dump_json()
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(files) >= 3 and all(SECRET.encode() not in p.read_bytes() for p in files)


def test_token_from_file(http_server: HttpServer, tmp_path: Path) -> None:
    token_file = tmp_path / "gl-token"
    token_file.write_text(f"  {SECRET}  \n")
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success")))
    assert run(http_server, tmp_path, LATEST, token_file=str(token_file)).answered
    assert http_server.requests[0].headers["private-token"] == SECRET
    kind, message = only_error(run(http_server, tmp_path, LATEST, token_file=str(tmp_path / "absent")))
    assert (kind, message) == ("auth", f"token file {tmp_path / 'absent'}: cannot read: No such file or directory")


def test_numeric_project_and_self_managed_prefix(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route("/gitlab/api/v4/projects/1/pipelines", Reply(200, pipelines(p47="skipped")))
    result = run(http_server, tmp_path, LATEST, project="1", api_url=f"{http_server.url}/gitlab/api/v4")
    assert result.evidence[0].value is not None and result.evidence[0].value["conclusion"] == "skipped"


def test_bad_requests_are_per_item(http_server: HttpServer, tmp_path: Path) -> None:
    http_server.route(PIPELINES, Reply(200, pipelines(p47="success")))
    result = run(http_server, tmp_path, {"signal": "nope"}, {"signal": "success_rate", "runs": 101}, LATEST)
    assert [(e.error.kind if e.error else "ok") for e in result.evidence] == ["unsupported", "malformed", "ok"]
    assert set(SIGNALS) == {"latest_run", "success_rate", "test_report"}


@pytest.mark.parametrize("fields", [{"project": "no-slash-name"}, {"project": "g/../p"}, {"project": "g/p?x"},
                                    {"api_url": "gitlab.com/api/v4"}, {"token": "x"}])
def test_source_validation(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GitLabSource.model_validate({"id": "gl", "project": "g/p", **fields})
