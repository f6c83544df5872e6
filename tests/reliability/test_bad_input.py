"""Bad input catalogue: every kind of bad input gets its one-line error and loses nothing stored.

One row per case, in four tables:

- ``CLI``: the command line over a bad configuration, a bad document or a
  bad parameter. Each row runs the real entry point, ``daemon.cli.main``
  (in this process, for speed; the ``process`` rows in a subprocess, as the
  console script runs), and expects exit status 2, exactly one line on
  stderr (the expected line, or one that contains its essential part),
  nothing on stdout, and no traceback. The rows share one workspace whose
  database holds two snapshots: after every row it holds the same rows,
  whole (nothing already stored is lost).
- ``USAGE``: options the command line parser refuses: one line naming the
  command and the fault, pointing to ``--help``, exit 2.
- ``JUNIT``: JUnit XML reports that must not be believed: malformed,
  truncated, empty, binary, the wrong root element, an entity expansion bomb
  (billion laughs) and an external entity, which defusedxml refuses before
  anything expands. Each fails its source with one line naming the file.
- ``API``: bad parameters of the HTTP API served by a real server over the
  same database: 422 for a bad parameter, 404 for an unknown id, each with
  the one error shape and its one-line message.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from collectors.evidence import EvidenceRequest
from collectors.junit import JUnitSource
from collectors.junit import collect as collect_junit
from daemon import cli
from daemon.config.loading import load_config
from daemon.run.runner import run_projects
from daemon.store import Store
from tests.support.api import running
from tests.support.database import store_problems
from tests.support.git import GitRepo
from tests.support.paths import FIXTURES
from tests.support.ports import free_port

pytestmark = pytest.mark.reliability

GOOD = """\
version: 1
store: pw.db
projects:
  - id: svc
    sources:
      - {id: repo, kind: git, path: repo}
      - {id: status, kind: doc, git: repo, path: docs/STATUS.md}
    pillars:
      - id: durability
        title: Durability
        criteria:
          - id: restart
            title: Survive restart
            checks:
              - {source: repo, signal: file_exists, path: tests/test_restart.py}
          - id: declared
            title: Docs parity
            checks:
              - {source: status, signal: declared_score}
"""

PROGRESS = """\
### 1) Durability
Criteria scoring:
1. Survive restart: 0.70
2. Docs parity: 0.50
Pillar completion: 60%
Overall target architecture completion: 60%
"""
# "Billion laughs" in YAML: nine levels of nine aliases stand for 9**9 strings, though the file holds a few hundred bytes.
YAML_BOMB = "lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{n}: &lol{n} [{', '.join([f'*lol{n - 1}'] * 9)}]\n" for n in range(1, 9))
LATIN_1 = PROGRESS.replace("0.70", "0,70 (\xe9t\xe9)").encode("latin-1")  # written by an editor that was not told


# --- a workspace whose database already holds snapshots ------------------------------------------------


@dataclass
class Workspace:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "pw.db"

    def stored(self) -> list[tuple]:
        """Every stored snapshot row, as a later reader sees it."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT id, project, taken_at, overall, content_hash, complete FROM snapshots ORDER BY id").fetchall()
        finally:
            conn.close()


def build_workspace(root: Path) -> Workspace:
    repo = GitRepo(root / "repo")
    repo.write("docs/STATUS.md", "# Status\n\nDocs parity: 0.50\n")
    repo.commit("first", when=datetime(2026, 11, 1, tzinfo=timezone.utc))
    (root / "pw.yaml").write_text(GOOD)
    config = load_config(root / "pw.yaml")
    day = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)
    with Store.open(config.store_path) as store:
        run_projects(config, config.projects, store=store, now=day)
        repo.write("tests/test_restart.py", "def test_restart():\n    pass\n")
        repo.commit("second", when=day)
        run_projects(config, config.projects, store=store, now=day + timedelta(days=1))
    ws = Workspace(root)
    assert [row[3] for row in ws.stored()] == [25.0, 75.0]
    return ws


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = build_workspace(tmp_path_factory.mktemp("bad-input"))
    before = ws.stored()
    yield ws
    assert ws.stored() == before


# --- the command line ------------------------------------------------------------------------------------


def edit(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


@dataclass(frozen=True)
class Row:
    id: str
    args: tuple[str, ...]  # "bad.yaml" is the row's configuration, "doc" its document
    expected: str  # the whole line, or (exact=False) the part it must contain
    config: str | None = None  # the text of bad.yaml
    doc: bytes | None = None  # the bytes of the document
    exact: bool = True
    process: bool = False  # run as the console script runs: a subprocess
    env: dict[str, str] = field(default_factory=dict)


BAD = ("--config", "bad.yaml")
CHECK = ("check", *BAD)

CLI = [
    # configuration
    Row("config-unknown-key", CHECK, "bad.yaml:11: projects[0].pillars[0].colour: unknown key",
        edit("    title: Durability\n", "    title: Durability\n        colour: red\n")),
    Row("config-wrong-type", CHECK,
        "bad.yaml:5: projects[0].complete_share: input should be a valid number, unable to parse string as a number",
        edit("  - id: svc\n", "  - id: svc\n    complete_share: lots\n")),
    Row("config-missing-field", CHECK, "bad.yaml:12: projects[0].pillars[0].criteria[0].title: field required",
        edit("            title: Survive restart\n", "")),
    Row("config-bad-duration", CHECK,
        "bad.yaml:5: projects[0].schedule.every: invalid duration '5 minutes': use a number and a unit, e.g. 15m, 12h, 7d",
        edit("  - id: svc\n", "  - id: svc\n    schedule: {every: 5 minutes}\n")),
    Row("config-bad-cron", CHECK, "bad.yaml:5: projects[0].schedule: invalid cron expression '61 * * * *'",
        edit("  - id: svc\n", "  - id: svc\n    schedule: {cron: \"61 * * * *\"}\n"), exact=False),
    Row("config-unknown-timezone", CHECK, "bad.yaml:5: projects[0].schedule.timezone: unknown timezone 'Mars/Olympus'",
        edit("  - id: svc\n", "  - id: svc\n    schedule: {cron: \"0 9 * * *\", timezone: Mars/Olympus}\n")),
    Row("config-duplicate-id", CHECK, "bad.yaml:16: projects[0].pillars[0].criteria[1].id: duplicate criterion id 'restart'",
        edit("          - id: declared\n", "          - id: restart\n")),
    Row("config-dangling-source", CHECK,
        "bad.yaml:15: projects[0].pillars[0].criteria[0].checks[0].source: no source 'nope' in project 'svc' (have: repo, status)",
        edit("{source: repo, signal: file_exists", "{source: nope, signal: file_exists")),
    Row("config-dangling-git-source", CHECK, "bad.yaml:7: projects[0].sources[1].git: no git source 'nope' in project 'svc'",
        edit("kind: doc, git: repo", "kind: doc, git: nope")),
    Row("config-invalid-yaml", CHECK, "bad.yaml:7: YAML syntax error: expected ',' or '}', but got '{'",
        edit("kind: git, path: repo}", "kind: git, path: repo")),
    Row("config-tab-indent", CHECK, "bad.yaml:3: YAML syntax error: found character '\\t' that cannot start any token",
        edit("store: pw.db\n", "store: pw.db\n\tconcurrency: 2\n")),
    Row("config-yaml-alias-bomb", CHECK, "bad.yaml:26: YAML aliases expand to more than 1,000,000 values", GOOD + YAML_BOMB),
    Row("config-yaml-recursive-alias", CHECK, "bad.yaml:20: a YAML alias refers to a collection that contains it",
        GOOD + "templates: &loop {pillars: {p: *loop}}\n"),
    Row("config-yaml-nested-too-deeply", CHECK, "bad.yaml: YAML nested too deeply", GOOD + "x: " + "[" * 5000 + "]" * 5000 + "\n"),
    Row("config-duplicate-yaml-key", CHECK, "bad.yaml:3: store: duplicate key", edit("store: pw.db\n", "store: pw.db\nstore: other.db\n")),
    Row("config-unset-variable", CHECK,
        "bad.yaml:6: projects[0].sources[0].path: environment variable PW_RELIABILITY_UNSET is not set "
        "(write ${PW_RELIABILITY_UNSET:-default} to give a default)",
        edit("kind: git, path: repo}", "kind: git, path: \"${PW_RELIABILITY_UNSET}\"}")),
    Row("config-route-to-unknown-channel", CHECK, "bad.yaml:21: routes[0].channels[0]: no channel 'pager' (have: none)",
        GOOD + "routes:\n  - {channels: [pager]}\n"),
    Row("config-unknown-source-kind", CHECK, "bad.yaml:6: projects[0].sources[0]: unknown kind 'svn'",
        edit("kind: git, path: repo}", "kind: svn, path: repo}"), exact=False),
    Row("config-signal-of-another-kind", CHECK,
        "bad.yaml:15: projects[0].pillars[0].criteria[0].checks[0].signal: signal 'declared_score' needs a doc source, "
        "but 'repo' is a git source", edit("{source: repo, signal: file_exists, path: tests/test_restart.py}",
                                           "{source: repo, signal: declared_score}")),
    Row("config-bad-regex", CHECK, "bad.yaml:15: projects[0].pillars[0].criteria[0].checks[0].regex: invalid regex '(restart'",
        edit("signal: file_exists, path: tests/test_restart.py}", "signal: content_match, glob: '**', regex: '(restart'}"),
        exact=False),
    Row("config-unsafe-git-url", CHECK, "remote helpers (ext::) are refused",
        edit("kind: git, path: repo}", "kind: git, url: 'ext::sh -c touch% /tmp/pwned'}"), exact=False),
    Row("config-empty-file", CHECK, "bad.yaml:1: the configuration must be a mapping with a 'projects' list", ""),
    Row("config-not-utf8", CHECK, "bad.yaml: cannot read configuration: 'utf-8' codec can't decode byte 0xff",
        GOOD.replace("Durability\n", "Durabilit\udcff\n", 1), exact=False),
    Row("config-file-not-found", ("check", "--config", "absent.yaml"), "absent.yaml: configuration file not found"),
    Row("config-bad-on-collect", ("collect", *BAD), "bad.yaml:11: projects[0].pillars[0].colour: unknown key",
        edit("    title: Durability\n", "    title: Durability\n        colour: red\n")),
    Row("config-token-file-missing-serve", ("serve", *BAD, "--port", "PORT"), "absent-token: cannot read: No such file or directory",
        GOOD + "api: {token_file: absent-token}\n", exact=False, process=True),
    Row("config-token-file-missing-daemon", ("daemon", *BAD, "--port", "PORT"), "absent-token: cannot read: No such file or directory",
        GOOD + "api: {token_file: absent-token}\n", exact=False, process=True),
    # documents
    *[Row(f"{command}-{name}", (command, *(BAD if command == "import" else ()), "doc"), message, GOOD, body,
          process=(name == "binary" and command == "verify-doc"))
      for command in ("verify-doc", "import")
      for name, body, message in [
          ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "pillarwatch: error: document is a binary file: doc"),
          ("not-utf8", LATIN_1, f"pillarwatch: error: document is not UTF-8 text: doc (byte {LATIN_1.index(0xE9)})"),
          ("empty", b"", "pillarwatch: error: doc: no pillars found: not a progress snapshot; no pillar heading has both 'criterion: score' lines "
           "(scores 0-1) and a claimed figure ('Pillar completion: 70%')"),
          ("no-pillars", b"# Notes\n\nNothing measured here.\n",
           "pillarwatch: error: doc: no pillars found: not a progress snapshot; no pillar heading has both 'criterion: score' lines "
           "(scores 0-1) and a claimed figure ('Pillar completion: 70%')"),
          ("missing", None, "pillarwatch: error: document not found: doc"),
      ]],
    Row("import-undated", ("import", *BAD, "doc"), "pillarwatch: error: doc: no 'Date:' line and not in a git repository: "
        "cannot tell when it was written", GOOD, PROGRESS.encode()),
    Row("verify-doc-a-folder", ("verify-doc", "repo"), "pillarwatch: error: document is not a regular file: repo"),
    # parameters
    Row("history-bad-date", ("history", *BAD, "--since", "last tuesday"),
        "pillarwatch: error: --since 'last tuesday': use a date (2026-11-01), a time (2026-11-01T08:00Z) or a duration back from now (7d)",
        GOOD),
    Row("history-unknown-pillar", ("history", *BAD, "--pillar", "nope"),
        "pillarwatch: error: no pillar 'nope' in project 'svc' (have: durability)", GOOD),
    Row("explain-too-many-slashes", ("explain", *BAD, "a/b/c"),
        "pillarwatch: error: no criterion 'a/b/c' in project 'svc' (have: durability/restart, durability/declared)", GOOD),
    Row("diff-unknown-snapshot", ("diff", *BAD, "999999", "1"), "pillarwatch: error: no snapshot 999999", GOOD),
    Row("status-unknown-project", ("status", *BAD, "--project", "nope"),
        "pillarwatch: error: no project 'nope' in the configuration (have: svc)", GOOD),
    Row("report-unknown-format", ("report", *BAD, "--format", "pdf"), "pillarwatch: error: --format 'pdf': use markdown, json or html", GOOD),
]


def prepare(row: Row, ws: Workspace) -> list[str]:
    for name in ("bad.yaml", "doc"):
        (ws.root / name).unlink(missing_ok=True)
    if row.config is not None:
        (ws.root / "bad.yaml").write_bytes(row.config.encode("utf-8", errors="surrogateescape"))
    if row.doc is not None:
        (ws.root / "doc").write_bytes(row.doc)
    return [str(free_port()) if arg == "PORT" else arg for arg in row.args]


def run_in_process(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["pillarwatch", *args])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    out, err = capsys.readouterr()
    code = stopped.value.code
    return (code if isinstance(code, int) else 1 if code else 0), out, err


def run_process(args: list[str], cwd: Path) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("row", CLI, ids=[r.id for r in CLI])
def test_cli_bad_input_is_one_line_exit_2_and_loses_nothing(
    row: Row, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = workspace.stored()
    args = prepare(row, workspace)
    monkeypatch.chdir(workspace.root)
    monkeypatch.delenv("PW_RELIABILITY_UNSET", raising=False)
    code, out, err = run_process(args, workspace.root) if row.process else run_in_process(args, monkeypatch, capsys)
    assert "Traceback" not in err + out, err
    assert code == 2, out + err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    if row.exact:
        assert lines[0] == row.expected
    else:
        assert row.expected in lines[0], lines[0]
    assert workspace.stored() == before
    assert store_problems(workspace.db, pillars=1, criteria=2) == []


USAGE = [
    ("history-negative-limit", ("history", *BAD, "--limit", "-1"), "pillarwatch history: Invalid value for '--limit'"),
    ("history-limit-not-a-number", ("history", *BAD, "--limit", "ten"), "pillarwatch history: Invalid value for '--limit'"),
    ("collect-fail-under-out-of-range", ("collect", *BAD, "--fail-under", "120"),
     "pillarwatch collect: Invalid value for '--fail-under'"),
    ("unknown-option", ("status", *BAD, "--frobnicate"), "pillarwatch status: No such option: --frobnicate"),
    ("missing-argument", ("verify-doc",), "pillarwatch verify-doc: Missing argument 'file'"),
    ("unknown-command", ("frobnicate",), "pillarwatch: No such command 'frobnicate'"),
]


@pytest.mark.parametrize(("args", "expected"), [u[1:] for u in USAGE], ids=[u[0] for u in USAGE])
def test_usage_errors_exit_2_without_a_traceback(
    args: tuple[str, ...], expected: str, workspace: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = workspace.stored()
    (workspace.root / "bad.yaml").write_text(GOOD)
    monkeypatch.chdir(workspace.root)
    code, out, err = run_in_process(list(args), monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [err.rstrip("\n")] and err.startswith(f"pillarwatch: error: {expected}"), err
    assert err.rstrip().endswith("(see --help)")
    assert workspace.stored() == before


# --- JUnit XML that must not be believed ------------------------------------------------------------------

_LAUGHS = "".join(f'  <!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 10))
BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n  <!ENTITY lol0 "lol">\n' + _LAUGHS
                  + ']>\n<testsuite name="lolz"><testcase classname="x" name="&lol9;"/></testsuite>\n')
EXTERNAL_ENTITY = ('<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
                   '<testsuite name="x"><testcase classname="x" name="&secret;"/></testsuite>\n')
REFUSED = "refused XML (EntitiesForbidden: entity or DTD declarations are not allowed in a JUnit report)"

JUNIT = [
    ("malformed", b'<testsuite name="s"><testcase name="a"></testsuite>\n', "not well-formed XML (mismatched tag: line 1, column 41)"),
    ("truncated", (FIXTURES / "junit_pytest_truncated_malformed.xml").read_bytes(), "not well-formed XML (no element found: line 11, column 21)"),
    ("empty", b"", "not well-formed XML (no element found: line 1, column 0)"),
    ("binary", b"\x00\x01\x02PK\x03\x04", "not well-formed XML (not well-formed (invalid token): line 1, column 0)"),
    ("wrong-root", b"<html><body>CI is down</body></html>", "not a JUnit report (root element <html>)"),
    ("billion-laughs", BILLION_LAUGHS.encode(), REFUSED),
    ("external-entity", EXTERNAL_ENTITY.encode(), REFUSED),
]


@pytest.mark.parametrize(("body", "expected"), [j[1:] for j in JUNIT], ids=[j[0] for j in JUNIT])
def test_junit_reports_that_must_not_be_believed(body: bytes, expected: str, tmp_path: Path) -> None:
    (tmp_path / "report.xml").write_bytes(body)
    source = JUnitSource(id="reports", path=str(tmp_path), glob="*.xml")
    started = time.monotonic()
    result = collect_junit(source, [EvidenceRequest(signal="tests")], now=datetime.now(timezone.utc), cache_dir=tmp_path)
    assert time.monotonic() - started < 2  # nothing expanded
    assert result.error is not None and result.error.kind == "malformed"
    assert result.error.message == f"{tmp_path / 'report.xml'}: {expected}"
    assert all(e.error == result.error and e.value is None for e in result.evidence)


def test_an_xml_bomb_in_a_collection_is_evidence_not_a_crash(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(workspace.root, ws.root)
    before = ws.stored()
    (ws.root / "reports").mkdir()
    (ws.root / "reports" / "junit.xml").write_text(BILLION_LAUGHS)
    (ws.root / "pw.yaml").write_text(GOOD.replace(
        "    pillars:\n", "      - {id: reports, kind: junit, path: reports, glob: '*.xml'}\n    pillars:\n").replace(
        "          - id: declared\n", "          - id: tests\n            title: Tests pass\n            checks:\n"
        "              - {source: reports, signal: tests}\n          - id: declared\n"))
    monkeypatch.chdir(ws.root)
    code, out, err = run_in_process(["collect", "--config", "pw.yaml"], monkeypatch, capsys)
    assert code == 0 and "Traceback" not in err, out + err
    after = ws.stored()
    assert after[: len(before)] == before and len(after) == len(before) + 1
    with Store.open(ws.db, readonly=True) as store:
        latest = store.latest("svc")
    assert latest is not None and not latest.complete
    tests = next(c for c in latest.pillars[0].criteria if c.id == "tests")
    assert tests.status == "unknown" and REFUSED in (tests.reason or "")


# --- the HTTP API -------------------------------------------------------------------------------------------

API = [
    ("history-since-not-a-date", "/api/v1/projects/svc/history", {"since": "last tuesday"}, 422,
     "since 'last tuesday': use a date (2026-11-01), a time (2026-11-01T08:00Z) or a duration back from now (7d)"),
    ("history-until-month-13", "/api/v1/projects/svc/history", {"until": "2026-13-45"}, 422,
     "until '2026-13-45': use a date (2026-11-01), a time (2026-11-01T08:00Z) or a duration back from now (7d)"),
    ("history-since-after-until", "/api/v1/projects/svc/history", {"since": "2026-11-04", "until": "2026-11-02"}, 422,
     "since (2026-11-04T00:00:00Z) is after until (2026-11-02T00:00:00Z)"),
    ("history-since-out-of-range", "/api/v1/projects/svc/history", {"since": "0001-01-01T00:00:00+14:00"}, 422,
     "since '0001-01-01T00:00:00+14:00' is out of range"),
    ("history-negative-limit", "/api/v1/projects/svc/history", {"limit": "-1"}, 422,
     "query.limit: Input should be greater than or equal to 1"),
    ("history-limit-not-an-integer", "/api/v1/projects/svc/history", {"limit": "1e3"}, 422,
     "query.limit: Input should be a valid integer, unable to parse string as an integer"),
    ("history-negative-offset", "/api/v1/projects/svc/history", {"offset": "-5"}, 422,
     "query.offset: Input should be greater than or equal to 0"),
    ("history-unknown-pillar", "/api/v1/projects/svc/history", {"pillar": "nope"}, 404,
     "no pillar 'nope' in project 'svc' (have: durability)"),
    ("unknown-project", "/api/v1/projects/nope/snapshots/latest", {}, 404, "no project 'nope' in the configuration (have: svc)"),
    ("unknown-snapshot", "/api/v1/snapshots/999999", {}, 404, "no snapshot 999999"),
    ("negative-snapshot-id", "/api/v1/snapshots/-1", {}, 422, "path.snapshot_id: Input should be greater than or equal to 1"),
    ("snapshot-id-past-sqlite", f"/api/v1/snapshots/{2**63}", {}, 422,
     "path.snapshot_id: Input should be less than or equal to 9223372036854775807"),
    ("criterion-too-many-slashes", "/api/v1/projects/svc/criteria/a/b/c", {}, 404,
     "no criterion 'a/b/c' in project 'svc' (have: durability/restart, durability/declared)"),
    ("criterion-unknown", "/api/v1/projects/svc/criteria/nope", {}, 404,
     "no criterion 'nope' in project 'svc' (have: durability/restart, durability/declared)"),
    ("criterion-unknown-pillar", "/api/v1/projects/svc/criteria/dx/restart", {}, 404,
     "no criterion 'dx/restart' in project 'svc' (have: durability/restart, durability/declared)"),
    ("diff-a-not-an-integer", "/api/v1/projects/svc/diff", {"a": "abc"}, 422,
     "query.a: Input should be a valid integer, unable to parse string as an integer"),
    ("diff-unknown-snapshot", "/api/v1/projects/svc/diff", {"a": "999999"}, 404, "no snapshot 999999"),
    ("alerts-unknown-state", "/api/v1/alerts", {"state": "open"}, 422, "query.state: Input should be 'pending', 'firing' or 'resolved'"),
    ("alerts-negative-limit", "/api/v1/alerts", {"limit": "-3"}, 422, "query.limit: Input should be greater than or equal to 1"),
    ("alerts-unknown-project", "/api/v1/alerts", {"project": "nope"}, 404, "no project 'nope' in the configuration (have: svc)"),
    ("badge-unknown-project", "/badge/nope.svg", {}, 404, "no project 'nope' in the configuration (have: svc)"),
    ("badge-unknown-pillar", "/badge/svc/nope.svg", {}, 404, "no pillar 'nope' in project 'svc'"),
]


@pytest.fixture(scope="module")
def api(workspace: Workspace) -> Iterator[httpx.Client]:
    config = load_config(workspace.root / "pw.yaml")
    with running(config) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(("path", "params", "status", "expected"), [a[1:] for a in API], ids=[a[0] for a in API])
def test_api_bad_parameters_are_one_line_422_or_404(
    path: str, params: dict[str, str], status: int, expected: str, api: httpx.Client, workspace: Workspace
) -> None:
    before = workspace.stored()
    response = api.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.json() == {"error": {"status": status, "message": expected}}
    assert "Traceback" not in response.text
    assert workspace.stored() == before
