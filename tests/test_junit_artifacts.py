"""JUnit reports from the artifacts CI produced: a GitHub Actions artifact and GitLab job artifacts, served for real."""

from __future__ import annotations

import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from collectors.evidence import CollectResult, EvidenceRequest
from collectors.junit import JUnitSource, collect
from daemon.config.loading import load_config
from daemon.run.runner import run_projects
from daemon.store import Store
from tests.support.ci_artifacts import (
    ARTIFACTS,
    DOWNLOAD,
    GITLAB_DOWNLOAD,
    RUNS,
    STORAGE,
    artifacts_listing,
    lie_about_size,
    make_zip,
    runs_listing,
    serve_github,
    storage_url,
    zip_reply,
)
from tests.support.cli import run_cli
from tests.support.http_server import HttpServer, Reply
from tests.support.paths import FIXTURES
from tests.support.results import only_error

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
SECRET = "ghp_aRtIfAcTtOkEn1234567890SECRET"
PYTEST = (FIXTURES / "junit_pytest_failure_skipped.xml").read_bytes()  # 5 tests: 3 passed, 1 failure, 1 skipped
UNITTEST = (FIXTURES / "junit_python_unittest_fail_error_skip.xml").read_bytes()  # 8: 4 passed, 1+1 failed, 2 skipped
RESTART = b"""<?xml version="1.0"?>
<testsuite name="durability">
  <testcase classname="tests.test_restart" name="test_restart_resumes_the_outbox"/>
  <testcase classname="tests.test_restart" name="test_restart_after_kill_9"/>
  <testcase classname="tests.test_store" name="test_disk_full"><failure message="ENOSPC"/></testcase>
</testsuite>
"""


@pytest.fixture
def storage() -> Iterator[HttpServer]:
    """A second server: the storage host an artifact download is redirected to."""
    server = HttpServer()
    yield server
    server.close()


def github(api: HttpServer, tmp_path: Path, *requests: EvidenceRequest, spec: dict[str, Any] | None = None,
           **settings: Any) -> CollectResult:
    block = {"repo": "o/r", "workflow": "ci.yml", "artifact": "artifact1", "branch": "main", "api_url": api.url,
             "token_env": None, **(spec or {})}
    source = JUnitSource.model_validate({"id": "ci-tests", "github": block, **settings})
    return collect(source, list(requests) or [EvidenceRequest(signal="tests")], now=NOW, cache_dir=tmp_path / "cache")


def gitlab(api: HttpServer, tmp_path: Path, *requests: EvidenceRequest, spec: dict[str, Any] | None = None,
           **settings: Any) -> CollectResult:
    block = {"project": "group/svc", "job": "unit tests", "ref": "release/1.x", "api_url": api.url,
             "token_env": None, **(spec or {})}
    source = JUnitSource.model_validate({"id": "ci-tests", "gitlab": block, **settings})
    return collect(source, list(requests) or [EvidenceRequest(signal="tests")], now=NOW, cache_dir=tmp_path / "cache")


def counts(result: CollectResult) -> tuple[int, int, int, int, int]:
    assert result.answered, result.error
    value = result.evidence[0].value
    assert value is not None
    return value["tests"], value["passed"], value["failures"], value["errors"], value["skipped"]


# ---------------------------------------------------------------------------
# GitHub Actions


def test_github_artifact_of_the_latest_completed_run_is_read(http_server, storage, tmp_path, monkeypatch):
    monkeypatch.setenv("PW_TEST_ARTIFACT_TOKEN", SECRET)
    archive = make_zip({"reports/unit.xml": PYTEST, "reports/more/unittest.xml": UNITTEST, "reports/coverage.txt": "87%"})
    serve_github(http_server, storage, archive)
    result = github(http_server, tmp_path, spec={"token_env": "PW_TEST_ARTIFACT_TOKEN"})
    assert counts(result) == (13, 7, 2, 1, 3)
    evidence = result.evidence[0]
    assert evidence.value is not None and evidence.value["files"] == 2
    newest = runs_listing()["workflow_runs"][0]
    assert evidence.provenance.url == newest["html_url"] and evidence.provenance.commit == newest["head_sha"]
    assert evidence.provenance.path == "reports/more/unittest.xml"  # the first entry, by name
    assert result.fingerprint and result.fingerprint.startswith(f"{newest['id']}:1242831742:")
    listing, artifacts, download = http_server.requests
    assert listing.path == f"{RUNS}?status=completed&per_page=1&exclude_pull_requests=true&branch=main"
    assert artifacts.path == f"{ARTIFACTS}?name=artifact1&per_page=100"
    assert download.path == DOWNLOAD
    assert {seen.headers.get("authorization") for seen in http_server.requests} == {f"Bearer {SECRET}"}
    (fetched,) = storage.requests
    assert fetched.path.startswith(STORAGE + "?artifactName=artifact1&")
    assert "authorization" not in fetched.headers and SECRET not in str(fetched.headers)  # not to another host
    assert SECRET not in result.model_dump_json()


def test_tests_matching_restart_pass_in_ci_is_a_check(http_server, storage, tmp_path):
    serve_github(http_server, storage, make_zip({"durability.xml": RESTART}))
    restart, everything = github(http_server, tmp_path, EvidenceRequest(signal="tests", params={"name": "restart"}),
                                 EvidenceRequest(signal="tests")).evidence
    assert restart.value is not None and restart.value["pass_ratio"] == 1.0 and restart.value["tests"] == 2
    assert everything.value is not None and everything.value["failed_tests"] == ["tests.test_store.test_disk_full"]


def test_the_glob_chooses_entries_and_climbing_names_are_ignored(http_server, storage, tmp_path):
    failing = b'<testsuite name="evil"><testcase name="t"><failure/></testcase></testsuite>'
    serve_github(http_server, storage, make_zip({"../escape.xml": failing, "/etc/abs.xml": failing,
                                                 "C:/drive.xml": failing, "a/../../up.xml": failing,
                                                 "unit/pytest.xml": PYTEST, "lint/report.xml": failing}))
    default = github(http_server, tmp_path)
    assert counts(default) == (6, 3, 2, 0, 1)  # unit/ and lint/: the default glob is **/*.xml
    assert default.evidence[0].value is not None and default.evidence[0].value["files"] == 2
    assert counts(github(http_server, tmp_path, glob="**")) == (6, 3, 2, 0, 1)  # never the climbing names
    assert counts(github(http_server, tmp_path, glob="unit/*.xml")) == (5, 3, 1, 0, 1)


def test_revalidated_listings_still_download_the_zip(http_server, storage, tmp_path):
    serve_github(http_server, storage, make_zip({"r.xml": PYTEST}))
    http_server.route(RUNS, lambda seen: Reply(304) if seen.headers.get("if-none-match") == '"runs"'
                      else Reply(200, runs_listing(), {"ETag": '"runs"'}))
    first, second = github(http_server, tmp_path), github(http_server, tmp_path)
    assert counts(first) == counts(second) == (5, 3, 1, 0, 1)
    assert [seen.headers.get("if-none-match") for seen in http_server.requests if seen.path.startswith(RUNS)] == \
        [None, '"runs"']
    assert len(storage.requests) == 2


@pytest.mark.parametrize(("where", "reply", "kind", "said"), [
    ("runs", Reply(502, {"message": "Bad Gateway"}), "http_status", "HTTP 502"),
    ("artifacts", Reply(500, {"message": "Server Error"}), "http_status", "HTTP 500"),
    ("storage", Reply(503, "busy"), "http_status", "the storage host"),
    ("runs", Reply(200, {"total_count": 0, "workflow_runs": []}), "not_found", "no completed runs of workflow ci.yml"),
    ("artifacts", Reply(200, {"total_count": 0, "artifacts": []}), "not_found", "uploaded no artifact of that name"),
    ("download", Reply(404, {"message": "Not Found"}), "not_found", "HTTP 404"),
    ("download", Reply(410, {"message": "Artifact has expired"}), "not_found", "HTTP 410"),
    ("storage", Reply(200, b"<html>sign in</html>"), "malformed", "not a readable zip archive"),
    ("storage", Reply(200, make_zip({"r.xml": PYTEST})[:-30]), "malformed", "not a readable zip archive"),
    ("storage", Reply(200, make_zip({"notes.txt": "no reports"})), "not_found", "no files in the zip match '**/*.xml'"),
    ("storage", Reply(200, make_zip({"r.xml": PYTEST[:200]})), "malformed", "r.xml in artifact 'artifact1' of run 84"),
])
def test_faults_make_the_evidence_stale_with_one_line(http_server, storage, tmp_path, where, reply, kind, said):
    serve_github(http_server, storage, make_zip({"r.xml": PYTEST}))
    {"runs": lambda: http_server.route(RUNS, reply), "artifacts": lambda: http_server.route(ARTIFACTS, reply),
     "download": lambda: http_server.route(DOWNLOAD, reply), "storage": lambda: storage.route(STORAGE, reply)}[where]()
    got, message = only_error(github(http_server, tmp_path, EvidenceRequest(signal="tests"),
                                     EvidenceRequest(signal="tests", params={"name": "x"})))
    assert (got, said in message, "\n" in message) == (kind, True, False), message
    assert "urlSignature" not in message and "V5LQZ" not in message  # the storage URL is signed: never shown


def test_an_expired_artifact_is_not_found_and_never_downloaded(http_server, storage, tmp_path):
    serve_github(http_server, storage, make_zip({"r.xml": PYTEST}))
    http_server.route(ARTIFACTS, Reply(200, artifacts_listing(http_server, expired=True)))
    kind, message = only_error(github(http_server, tmp_path))
    assert kind == "not_found" and "expired at 2024-05-13T20:55:58Z" in message
    assert not storage.requests and not any(seen.path == DOWNLOAD for seen in http_server.requests)


def test_a_rate_limited_download_defers_later_runs(http_server, storage, tmp_path):
    serve_github(http_server, storage, make_zip({"r.xml": PYTEST}))
    reset = int(time.time()) + 3000
    http_server.route(DOWNLOAD, Reply(403, {"message": "API rate limit exceeded"},
                                      {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}))
    first, second = github(http_server, tmp_path), github(http_server, tmp_path)
    stamp = datetime.fromtimestamp(reset, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for result in (first, second):
        kind, message = only_error(result)
        assert kind == "rate_limited" and stamp in message and result.error is not None and result.error.retryable
    assert len(http_server.requests) == 3  # the second run asked the API nothing


def test_a_zip_over_max_bytes_is_too_large_and_not_read_in_full(http_server, storage, tmp_path):
    big = make_zip({f"r{i}.xml": PYTEST for i in range(200)}, compression=zipfile.ZIP_STORED)
    serve_github(http_server, storage, big)
    kind, message = only_error(github(http_server, tmp_path, spec={"max_bytes": 50_000}))
    assert kind == "too_large" and "max_bytes=50000" in message


@pytest.mark.parametrize(("archive", "said"), [
    (make_zip({"bomb.xml": b"<" + b"\0" * 30_000_000}), "declares 30000001 bytes uncompressed, over max_bytes=1000000"),
    (lie_about_size(make_zip({"bomb.xml": PYTEST + b" " * 3_000_000}), 100), "bomb.xml in artifact"),
])
def test_zip_bombs_stop_at_the_entry_bound(http_server, storage, tmp_path, archive, said):
    assert len(archive) < 100_000
    serve_github(http_server, storage, archive)
    kind, message = only_error(github(http_server, tmp_path, max_bytes=1_000_000))
    assert kind in ("too_large", "malformed") and said in message
    assert kind == ("too_large" if "declares" in said else "malformed")  # a lying header fails the CRC check


def test_one_deadline_bounds_listing_artifacts_and_download(http_server, storage, tmp_path):
    serve_github(http_server, storage, make_zip({"r.xml": PYTEST}))
    http_server.route(RUNS, Reply(200, runs_listing(), delay=0.5))
    http_server.route(ARTIFACTS, Reply(200, artifacts_listing(http_server), delay=0.5))
    storage.route(STORAGE, Reply(200, make_zip({"r.xml": PYTEST}), delay=0.5))  # each alone is well in time
    started = time.monotonic()
    kind, message = only_error(github(http_server, tmp_path, timeout_seconds=1.2))
    assert time.monotonic() - started < 2.5
    assert kind == "timeout" and "timeout_seconds=1.2" in message


def test_a_redirect_the_policy_refuses_is_not_followed(http_server, storage, tmp_path):
    serve_github(http_server, storage, make_zip({"r.xml": PYTEST}))
    kind, message = only_error(github(http_server, tmp_path, spec={"follow_redirects": ["objects.example.com"]}))
    assert kind == "http_status" and "redirect to http://localhost not followed" in message and not storage.requests


# ---------------------------------------------------------------------------
# GitLab


def test_gitlab_job_artifacts_by_name_on_a_ref(http_server, storage, tmp_path, monkeypatch):
    monkeypatch.setenv("PW_TEST_GITLAB_TOKEN", SECRET)
    http_server.route(GITLAB_DOWNLOAD, Reply(302, b"", {"Location": f"{storage_url(storage)}/objects/123?X-Amz-Signature=abc"}))
    storage.route("/objects/123", zip_reply(make_zip({"junit.xml": RESTART})))
    result = gitlab(http_server, tmp_path, EvidenceRequest(signal="tests", params={"name": "restart"}),
                    spec={"token_env": "PW_TEST_GITLAB_TOKEN"})
    assert counts(result) == (2, 2, 0, 0, 0)
    (asked,) = http_server.requests
    assert asked.path == f"{GITLAB_DOWNLOAD}?job=unit%20tests" and asked.headers["private-token"] == SECRET
    assert "private-token" not in storage.requests[0].headers
    assert result.evidence[0].provenance.url == f"{http_server.url}{GITLAB_DOWNLOAD}?job=unit%20tests"
    assert SECRET not in result.model_dump_json()


@pytest.mark.parametrize(("reply", "kind"), [
    (Reply(404, {"message": "404 Not found"}), "not_found"),
    (Reply(502, "bad gateway"), "http_status"),
    (Reply(429, {"message": "Retry later"}, {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(time.time()) + 900)}),
     "rate_limited"),
    (Reply(200, b"PK\x03\x04 truncated"), "malformed"),
    (Reply(200, make_zip({"junit.xml": RESTART}), delay=3), "timeout"),
])
def test_gitlab_faults(http_server, tmp_path, reply, kind):
    http_server.route(GITLAB_DOWNLOAD, reply)
    got, message = only_error(gitlab(http_server, tmp_path, timeout_seconds=0.5))
    assert got == kind and "artifacts of job 'unit tests' on release/1.x of project group/svc" in message


# ---------------------------------------------------------------------------
# Configuration


@pytest.mark.parametrize(("settings", "said"), [
    ({"github": {"repo": "o/r", "workflow": "ci.yml", "artifact": "a"}, "path": "/r", "glob": "*.xml"},
     "give exactly one of git, path, url, github, gitlab, not path and github"),
    ({"github": {"repo": "o/r", "workflow": "ci.yml", "artifact": "a"},
      "gitlab": {"project": "g/p", "job": "j", "ref": "main"}}, "not github and gitlab"),
    ({"github": {"repo": "not a repo", "workflow": "ci.yml", "artifact": "a"}}, "repo 'not a repo' is not of the form owner/name"),
    ({"github": {"repo": "o/r", "workflow": "ci.yml"}}, "artifact"),
    ({"gitlab": {"project": "g/p", "job": "j"}}, "ref"),
    ({"gitlab": {"project": "../p", "job": "j", "ref": "main"}}, "is not a numeric id or a group/project path"),
    ({"gitlab": {"project": "g/p", "job": "j", "ref": "main", "api_url": "ftp://x"}}, "is not an http(s) URL"),
    ({"github": {"repo": "o/r", "workflow": "ci.yml", "artifact": "a", "token": "x"}}, "token"),
])
def test_source_validation(settings, said):
    with pytest.raises(ValidationError) as raised:
        JUnitSource.model_validate({"id": "ci-tests", **settings})
    assert said in str(raised.value)


# ---------------------------------------------------------------------------
# Through a configuration, as the daemon runs it


def restart_config(tmp_path: Path, api: HttpServer, **github_block: Any) -> Path:
    source = {"id": "ci-tests", "kind": "junit",
              "github": {"repo": "o/r", "workflow": "ci.yml", "branch": "main", "artifact": "artifact1",
                         "api_url": api.url, "token_env": None, **github_block}}
    criterion = {"id": "restart-safe", "title": "Restarts lose nothing",
                 "checks": [{"source": "ci-tests", "signal": "tests", "name": "restart"}]}
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "store": "pw.db", "projects": [{
        "id": "svc", "sources": [source],
        "pillars": [{"id": "durability", "title": "Durability", "criteria": [criterion]}]}]}, sort_keys=False))
    return path


def test_restart_tests_pass_in_ci_scores_a_criterion_and_a_fault_leaves_it_stale(http_server, storage, tmp_path):
    serve_github(http_server, storage, make_zip({"reports/durability.xml": RESTART}))
    cfg = load_config(restart_config(tmp_path, http_server))
    with Store.open(cfg.store_path) as store:
        (good,) = run_projects(cfg, cfg.projects, store=store, now=NOW)
        criterion = good.pillars[0].criteria[0]
        assert (criterion.status, criterion.score, good.complete) == ("ok", 1.0, True)
        assert criterion.evidence[0].provenance.path == "reports/durability.xml"
        storage.route(STORAGE, Reply(500, "storage down"))
        (bad,) = run_projects(cfg, cfg.projects, store=store, now=NOW + timedelta(hours=1))
    criterion = bad.pillars[0].criteria[0]
    assert (criterion.status, criterion.score, bad.complete) == ("stale", 1.0, False)
    error = criterion.evidence[0].error
    assert error is not None and error.kind == "http_status" and "artifact 'artifact1' of run 84" in error.message


def test_check_names_the_file_line_and_field_of_a_bad_artifact_source(http_server, tmp_path):
    path = restart_config(tmp_path, http_server, artifcat="typo")
    proc = run_cli("check", "--config", str(path), cwd=tmp_path, code=2)
    assert proc.stderr == "pw.yaml:15: projects[0].sources[0].github.artifcat: unknown key\n"
