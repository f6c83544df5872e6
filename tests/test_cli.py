"""The real `pillarwatch` command, run as a subprocess over real repositories."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.git import GitRepo

CONFIG = """\
version: 1
store: pw.db
display: {decimals: 1}
projects:
  - id: svc
    title: My service
    sources:
      - {id: repo, kind: git, path: repo}
      - {id: status, kind: doc, git: repo, path: docs/STATUS.md}
    pillars:
      - id: durability
        title: Durability
        criteria:
          - id: restart
            title: Survive restart without semantic drift
            checks:
              - {source: repo, signal: file_exists, glob: "tests/test_restart*.py"}
          - id: retry
            title: Retry/timer/resume explicit and test-covered
            checks:
              - {source: repo, signal: content_match, glob: "tests/**/*.py", regex: "def test_.*retry", transform: {scale: [0, 2]}}
      - id: dx
        title: Developer experience
        criteria:
          - id: declared
            title: Docs/examples parity-validated
            checks:
              - {source: status, signal: declared_score}
          - id: roadmap
            title: Roadmap delivered
            checks:
              - {source: status, signal: checklist, heading: Roadmap}
"""

STATUS = """\
# Status

Docs/examples parity-validated: 0.60

## Roadmap

- [x] one
- [ ] two
"""


def run(*args: str, cwd: Path, check_code: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    if check_code is not None:
        assert proc.returncode == check_code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, GitRepo]:
    repo = GitRepo(tmp_path / "repo")
    repo.write("tests/test_restart.py", "def test_restart_keeps_state():\n    pass\n")
    repo.write("tests/test_io.py", "def test_retry_on_timeout():\n    pass\n")
    repo.write("docs/STATUS.md", STATUS)
    repo.commit("first", when=datetime(2026, 11, 1, tzinfo=timezone.utc))
    (tmp_path / "pw.yaml").write_text(CONFIG)
    return tmp_path, repo


def test_collect_stores_a_snapshot_and_status_json_has_the_design_shape(workspace):
    ws, repo = workspace
    out = run("collect", "--config", "pw.yaml", cwd=ws).stdout
    assert "svc: overall" in out and "stored in" in out
    snap = json.loads(run("status", "--config", "pw.yaml", "--json", cwd=ws).stdout)
    assert set(snap) >= {"id", "project", "taken_at", "rules_hash", "complete", "overall", "pillars"}
    assert snap["project"] == "svc" and snap["complete"] is True
    assert snap["taken_at"].endswith("Z")
    durability, dx = snap["pillars"]
    assert set(durability) >= {"id", "title", "score", "coverage", "criteria"}
    restart, retry = durability["criteria"]
    assert set(restart) >= {"id", "title", "score", "status", "evidence"}
    assert (restart["score"], restart["status"]) == (1.0, "ok")
    assert restart["evidence"][0]["provenance"]["commit"] == repo.git("rev-parse", "HEAD")
    assert retry["score"] == 0.5  # one matching test of the two the scale asks for
    assert durability["score"] == 75.0
    declared, roadmap = dx["criteria"]
    assert declared["score"] == 0.6
    assert declared["evidence"][0]["provenance"]["line"] == 3
    assert roadmap["score"] == 0.5
    assert dx["score"] == pytest.approx(55.0)
    assert snap["overall"] == pytest.approx(65.0)


def test_repeat_collect_is_a_cheap_repeat_and_a_change_is_a_new_snapshot(workspace):
    ws, repo = workspace
    run("collect", "--config", "pw.yaml", cwd=ws)
    run("collect", "--config", "pw.yaml", cwd=ws)
    db = sqlite3.connect(ws / "pw.db")
    assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM snapshot_repeats").fetchone()[0] == 1
    repo.remove("tests/test_restart.py")
    deleted_in = repo.commit("drop restart test")
    run("collect", "--config", "pw.yaml", cwd=ws)
    assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 2
    snap = json.loads(run("status", "--config", "pw.yaml", "--json", cwd=ws).stdout)
    restart = snap["pillars"][0]["criteria"][0]
    assert restart["score"] == 0.0
    assert restart["evidence"][0]["provenance"]["commit"] == deleted_in


def test_dry_run_stores_nothing_and_fail_under_gates(workspace):
    ws, _ = workspace
    out = run("collect", "--config", "pw.yaml", "--dry-run", cwd=ws).stdout
    assert "dry run" in out
    assert not (ws / "pw.db").exists()
    gate = run("collect", "--config", "pw.yaml", "--dry-run", "--fail-under", "80", cwd=ws, check_code=1)
    assert "below --fail-under 80" in gate.stderr
    run("collect", "--config", "pw.yaml", "--dry-run", "--fail-under", "50", cwd=ws, check_code=0)


def test_explain_shows_checks_with_provenance(workspace):
    ws, repo = workspace
    run("collect", "--config", "pw.yaml", cwd=ws)
    body = json.loads(run("explain", "durability/retry", "--config", "pw.yaml", "--json", cwd=ws).stdout)
    (check,) = body["checks"]
    assert check["signal"] == "content_match" and check["value"] == 1 and check["score"] == 0.5
    assert body["evidence"][0]["provenance"]["commit"] == repo.git("rev-parse", "HEAD")
    text = run("explain", "declared", "--config", "pw.yaml", cwd=ws).stdout
    assert "docs/STATUS.md:3" in text
    missing = run("explain", "nope", "--config", "pw.yaml", cwd=ws, check_code=2)
    assert missing.stderr.startswith("pillarwatch: error: no criterion 'nope'")
    assert len(missing.stderr.strip().splitlines()) == 1


def test_report_markdown_is_verifiable_and_ranks_missing_next(workspace):
    ws, _ = workspace
    run("collect", "--config", "pw.yaml", cwd=ws)
    md = run("report", "--config", "pw.yaml", cwd=ws).stdout
    assert "## Method" in md and "Pillar completion: 75.0%" in md and "Main gaps:" in md
    assert "Overall target architecture completion: 65.0%" in md
    assert "## What is missing next" in md
    # The report is written in the hand-written shape, so verify-doc agrees with it.
    (ws / "report.md").write_text(md)
    run("verify-doc", "report.md", cwd=ws, check_code=0)
    body = json.loads(run("report", "--config", "pw.yaml", "--format", "json", cwd=ws).stdout)
    gains = body["missing_next"]
    # retry and roadmap (0.5 -> 1.0) add 25 pillar points, 12.5 overall; declared (0.6) adds 10.
    assert [(g["criterion"], round(g["gain"], 6)) for g in gains] == [("retry", 12.5), ("roadmap", 12.5), ("declared", 10.0)]


def test_status_before_any_collect_is_a_one_line_error(workspace):
    ws, _ = workspace
    proc = run("status", "--config", "pw.yaml", cwd=ws, check_code=2)
    assert proc.stderr.strip().count("\n") == 0 and "run `pillarwatch collect` first" in proc.stderr


def test_bad_config_exits_2_naming_the_line(workspace):
    ws, _ = workspace
    (ws / "bad.yaml").write_text(CONFIG.replace("title: Durability\n", "title: Durability\n        colour: blue\n"))
    for command in ("check", "collect", "status"):
        proc = run(command, "--config", "bad.yaml", cwd=ws, check_code=2)
        assert proc.stderr.strip() == "bad.yaml:13: projects[0].pillars[0].colour: unknown key"
    assert "ok: project svc" in run("check", "--config", "pw.yaml", cwd=ws).stdout


def test_missing_repository_is_stale_evidence_not_a_crash(workspace):
    ws, _repo = workspace
    run("collect", "--config", "pw.yaml", cwd=ws)
    before = json.loads(run("status", "--config", "pw.yaml", "--json", cwd=ws).stdout)
    (ws / "pw.yaml").write_text(CONFIG.replace("path: repo}", "path: gone}"))
    out = run("collect", "--config", "pw.yaml", cwd=ws).stdout  # exits 0
    assert "partial" in out
    assert "source repo did not answer (not_found): repository not found" in out
    snap = json.loads(run("status", "--config", "pw.yaml", "--json", cwd=ws).stdout)
    assert snap["complete"] is False
    # Nothing falls: every pillar keeps its figure from the stale scores.
    assert [p["score"] for p in snap["pillars"]] == [p["score"] for p in before["pillars"]]
    assert snap["overall"] == before["overall"]
    statuses = {c["id"]: (c["status"], c["score"]) for p in snap["pillars"] for c in p["criteria"]}
    assert statuses["restart"] == ("stale", 1.0)
    assert statuses["declared"] == ("stale", 0.6)
    human = run("status", "--config", "pw.yaml", cwd=ws).stdout
    assert "repository not found" in human


def test_usage_errors_exit_2(workspace):
    ws, _ = workspace
    assert run("collect", "--bogus", cwd=ws, check_code=2).returncode == 2
    assert run("report", "--config", "pw.yaml", "--format", "pdf", cwd=ws, check_code=2).stderr.startswith("pillarwatch: error: --format 'pdf'")


VERIFY_DOC = textwrap.dedent(
    """\
    ### 1) Durability (Temporal-inspired)
    Criteria scoring:
    1. Survive restart without semantic drift: 0.89
    2. Retry/timer/resume explicit and test-covered: 0.94
    3. Checkpoint/replay API backward compatibility: 0.90
    Pillar completion: {claimed}%
    Overall target architecture completion: 91%
    """
)


def test_verify_doc_exit_status_and_json(tmp_path):
    good = tmp_path / "good.md"
    good.write_text(VERIFY_DOC.format(claimed=91))
    assert "every figure agrees" in run("verify-doc", str(good), cwd=tmp_path).stdout
    bad = tmp_path / "bad.md"
    bad.write_text(VERIFY_DOC.format(claimed=92))
    proc = run("verify-doc", str(bad), "--json", cwd=tmp_path, check_code=1)
    body = json.loads(proc.stdout)
    assert body["ok"] is False
    (wrong,) = [f for f in body["figures"] if f["agrees"] is False]
    assert (wrong["line"], wrong["claimed"], wrong["computed"]) == (6, 92, pytest.approx(91.0))
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\0\1\2")
    assert "binary file" in run("verify-doc", str(binary), cwd=tmp_path, check_code=2).stderr
    assert "not found" in run("verify-doc", str(tmp_path / "none.md"), cwd=tmp_path, check_code=2).stderr


def _refused(*args: str, cwd: Path) -> str:
    """The one-line error of a command that must refuse its input at once (exit 2)."""
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=30)  # a FIFO read would block for good: fail here instead
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr


def test_verify_doc_reads_regular_files_within_the_document_size_limit(tmp_path):
    assert "not a regular file: /dev/zero" in _refused("verify-doc", "/dev/zero", cwd=tmp_path)
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    assert f"not a regular file: {fifo}" in _refused("verify-doc", str(fifo), cwd=tmp_path)
    huge = tmp_path / "huge.md"
    huge.write_text(VERIFY_DOC.format(claimed=91) + "prose\n" * 200_000)
    assert f"too large: {huge}" in _refused("verify-doc", str(huge), cwd=tmp_path)
    assert "limit 1000000 bytes" in _refused("verify-doc", str(huge), cwd=tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("title: Durability\n", "title: Durability\n        colour: blue\n", "bad.yaml:13: projects[0].pillars[0].colour: unknown key"),
        ("title: Durability\n", "title: Durability\n        weight: heavy\n", "bad.yaml:13: projects[0].pillars[0].weight: input should be a valid number"),
        ('regex: "def test_.*retry"', 'regex: "def test_(retry"', "bad.yaml:21: projects[0].pillars[0].criteria[1].checks[0].regex: invalid regex"),
        ("{source: status, signal: declared_score}", "{source: wiki, signal: declared_score}", "bad.yaml:28: projects[0].pillars[1].criteria[0].checks[0].source: no source 'wiki'"),
        ("    title: My service\n", "    title: [My service\n", "bad.yaml:7: YAML syntax error"),
    ],
    ids=["unknown-key", "wrong-type", "bad-regex", "missing-source", "yaml-syntax"],
)
def test_each_bad_config_exits_2_with_one_line_naming_the_line(workspace, old, new, expected):
    ws, _ = workspace
    assert old in CONFIG
    (ws / "bad.yaml").write_text(CONFIG.replace(old, new, 1))
    proc = run("check", "--config", "bad.yaml", cwd=ws, check_code=2)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr


def test_diff_markdown_compares_a_dry_run_with_the_latest_stored_snapshot(workspace):
    """The CI gate's pull-request comment: the branch, collected without storing, against main's latest snapshot."""
    ws, repo = workspace
    run("collect", "--config", "pw.yaml", cwd=ws)
    repo.remove("tests/test_restart.py")
    deleted_in = repo.commit("drop restart test")
    branch = run("collect", "--config", "pw.yaml", "--dry-run", "--fail-under", "50", "--json", cwd=ws, check_code=1)
    assert "overall 40.00% is below --fail-under 50" in branch.stderr
    (ws / "branch.json").write_text(branch.stdout)
    md = run("diff", "--config", "pw.yaml", "--snapshot-file", "branch.json", "--format", "markdown", cwd=ws).stdout
    lines = md.splitlines()
    assert lines[0] == "### pillarwatch: svc"
    assert lines[2].startswith("#1 (") and "→ this run (" in lines[2]
    assert "| Overall | 65.0 % | 40.0 % | -25.0 |" in lines
    assert "| Durability | 75.0 % | 25.0 % | -50.0 |" in lines
    assert "| durability/restart Survive restart without semantic drift | 1.00 | 0.00 | ok |" in lines
    assert f"| repo | tests/test_restart.py deleted in {deleted_in[:7]} |" in lines
    stored = json.loads(run("history", "--config", "pw.yaml", "--json", cwd=ws).stdout)
    assert stored["total"] == 1  # the dry run and the diff stored nothing
    as_json = json.loads(run("diff", "--config", "pw.yaml", "--snapshot-file", "branch.json", "--json", cwd=ws).stdout)
    assert (as_json["a"], as_json["b"], as_json["overall"]["after"]) == (1, None, pytest.approx(40.0))


def test_diff_markdown_of_two_stored_snapshots_escapes_table_cells(workspace):
    ws, repo = workspace
    (ws / "pw.yaml").write_text(CONFIG.replace("title: Durability", "title: 'Durability | restarts'"))
    run("collect", "--config", "pw.yaml", cwd=ws)
    repo.remove("tests/test_restart.py")
    repo.commit("drop restart test")
    run("collect", "--config", "pw.yaml", cwd=ws)
    md = run("diff", "--config", "pw.yaml", "--format", "markdown", cwd=ws).stdout
    assert "#1 (" in md and "→ #2 (" in md
    assert "| Durability \\| restarts | 75.0 % | 25.0 % | -50.0 |" in md.splitlines()


def test_diff_snapshot_file_refuses_bad_input_in_one_line(workspace):
    ws, _ = workspace
    run("collect", "--config", "pw.yaml", cwd=ws)
    (ws / "other.json").write_text('{"project": "another"}')
    (ws / "broken.json").write_text('{"project": "svc", "taken_at": "yesterday"}')
    (ws / "text.json").write_text("not json")
    for args, needle in [
        (("--snapshot-file", "missing.json"), "--snapshot-file missing.json: cannot read it"),
        (("--snapshot-file", "text.json"), "--snapshot-file text.json: not JSON"),
        (("--snapshot-file", "other.json"), "no snapshot of project 'svc' in it"),
        (("--snapshot-file", "broken.json"), "--snapshot-file broken.json: not a snapshot: taken_at"),
        (("1", "2", "--snapshot-file", "other.json"), "give at most snapshot A"),
        (("--format", "rst"), "--format 'rst': use text, markdown or json"),
    ]:
        proc = run("diff", "--config", "pw.yaml", *args, cwd=ws, check_code=2)
        assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
