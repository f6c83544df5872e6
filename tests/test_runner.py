"""Collection runs: concurrency, hanging sources, faults that become stale evidence."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from daemon.config.loading import load_config
from daemon.run.runner import run_projects
from daemon.store import Store
from tests.support.git import GitRepo
from tests.support.http_server import HttpServer, Reply
from tests.support.paths import FIXTURES

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def write_config(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "store": "pw.db", **body}, sort_keys=False))
    return path


def test_fifty_sources_one_hanging_finish_in_about_its_timeout(tmp_path, http_server: HttpServer):
    slow = 0.2
    for i in range(50):
        http_server.route(f"/svc{i}", Reply(200, {"ok": True}, delay=30 if i == 17 else slow))
    sources = [{"id": f"s{i}", "kind": "http", "url": f"{http_server.url}/svc{i}", "timeout_seconds": 1} for i in range(50)]
    criteria = [{"id": f"c{i}", "title": f"Service {i} answers", "checks": [{"source": f"s{i}", "signal": "status"}]} for i in range(50)]
    cfg = load_config(write_config(tmp_path, {"concurrency": 10, "projects": [
        {"id": "fleet", "sources": sources, "pillars": [{"id": "up", "title": "Up", "criteria": criteria}]}]}))
    started = time.monotonic()
    (snap,) = run_projects(cfg, cfg.projects, store=None, now=NOW)
    elapsed = time.monotonic() - started
    # One after the other this would take at least 49 x 0.2 s plus the hang's timeout.
    assert elapsed < 49 * slow, elapsed
    states = {s.id: s for s in snap.sources}
    assert states["s17"].error is not None and states["s17"].error.kind == "timeout"
    assert all(s.answered for sid, s in states.items() if sid != "s17")
    assert snap.pillars[0].criteria[17].status == "unknown"
    assert [c.score for i, c in enumerate(snap.pillars[0].criteria) if i != 17] == [1.0] * 49


def junit_config(tmp_path: Path, url: str) -> Path:
    return write_config(tmp_path, {"projects": [{
        "id": "svc",
        "sources": [{"id": "reports", "kind": "junit", "url": url, "timeout_seconds": 2}],
        "pillars": [
            {"id": "quality", "title": "Quality", "criteria": [
                {"id": "tests-pass", "title": "Tests pass", "checks": [{"source": "reports", "signal": "tests"}]},
                {"id": "manual", "title": "Reviewed", "manual": {"score": 0.5, "reason": "review", "expires": "2099-01-01"}},
            ]},
        ],
    }]})


def test_failing_source_after_a_good_run_goes_stale_and_the_pillar_does_not_fall(tmp_path, http_server: HttpServer):
    report = (FIXTURES / "junit_pytest_failure_skipped.xml").read_bytes()
    http_server.route("/report.xml", Reply(200, report, {"Content-Type": "application/xml"}))
    cfg = load_config(junit_config(tmp_path, f"{http_server.url}/report.xml"))
    with Store.open(cfg.store_path) as store:
        (good,) = run_projects(cfg, cfg.projects, store=store, now=NOW)
        assert good.complete
        tests_pass = good.pillars[0].criteria[0]
        assert tests_pass.status == "ok" and tests_pass.score == 0.75  # 3 passed of 4 that ran
        for fault in (Reply(500, "boom"), Reply(200, report[: len(report) // 2], {"Content-Type": "application/xml"})):
            http_server.route("/report.xml", fault)
            (bad,) = run_projects(cfg, cfg.projects, store=store, now=NOW + timedelta(hours=1))
            c = bad.pillars[0].criteria[0]
            assert (c.status, c.score) == ("stale", 0.75)
            assert c.scored_at == NOW
            assert bad.pillars[0].score == good.pillars[0].score
            assert not bad.complete
            assert c.evidence[0].error.kind in ("http_status", "malformed")


def test_document_in_a_failed_git_source_fails_with_the_reason(tmp_path):
    cfg = load_config(write_config(tmp_path, {"projects": [{
        "id": "svc",
        "sources": [{"id": "repo", "kind": "git", "path": "missing"}, {"id": "status", "kind": "doc", "git": "repo", "path": "STATUS.md"}],
        "pillars": [{"id": "p", "title": "P", "criteria": [{"id": "c", "title": "C", "checks": [{"source": "status", "signal": "declared_score"}]}]}],
    }]}))
    (snap,) = run_projects(cfg, cfg.projects, store=None, now=NOW)
    status = next(s for s in snap.sources if s.id == "status")
    assert not status.answered
    assert "git source 'repo' did not answer: repository not found" in status.error.message


def test_documents_and_reports_in_git_are_read_at_the_commit_just_collected(tmp_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("STATUS.md", "Tests pass: 0.40\n")
    repo.write("reports/junit.xml", (FIXTURES / "junit_pytest_failure_skipped.xml").read_text())
    sha = repo.commit("one")
    repo.write("STATUS.md", "Tests pass: 0.90\n")  # not committed: must not be seen
    cfg = load_config(write_config(tmp_path, {"projects": [{
        "id": "svc",
        "sources": [
            {"id": "repo", "kind": "git", "path": "repo"},
            {"id": "status", "kind": "doc", "git": "repo", "path": "STATUS.md"},
            {"id": "reports", "kind": "junit", "git": "repo", "glob": "reports/*.xml"},
        ],
        "pillars": [{"id": "p", "title": "P", "criteria": [
            {"id": "c", "title": "Tests pass", "checks": [{"source": "status", "signal": "declared_score"}, {"source": "reports", "signal": "tests"}]},
        ]}],
    }]}))
    (snap,) = run_projects(cfg, cfg.projects, store=None, now=NOW)
    c = snap.pillars[0].criteria[0]
    assert [k.score for k in c.checks] == [0.4, 0.75]
    assert {e.provenance.commit for e in c.evidence} == {sha}


def test_commands_run_only_when_allowed(tmp_path):
    marker = tmp_path / "ran"
    body = {"projects": [{
        "id": "svc",
        "sources": [{"id": "cmd", "kind": "command", "argv": ["sh", "-c", f"touch {marker}; echo coverage 87.5"]}],
        "pillars": [{"id": "p", "title": "P", "criteria": [
            {"id": "c", "title": "Coverage", "checks": [{"source": "cmd", "signal": "stdout_number", "regex": r"coverage (\S+)", "transform": {"scale": [50, 100]}}]},
        ]}],
    }]}
    cfg = load_config(write_config(tmp_path, body))
    (snap,) = run_projects(cfg, cfg.projects, store=None, now=NOW)
    assert not marker.exists()
    assert snap.pillars[0].criteria[0].checks[0].error.kind == "unsupported"
    cfg = load_config(write_config(tmp_path, {**body, "allow_commands": True}))
    (snap,) = run_projects(cfg, cfg.projects, store=None, now=NOW)
    assert marker.exists()
    assert snap.pillars[0].criteria[0].score == 0.75
