"""JUnit collector on real reports: the shared fixtures, a folder, a git repository, a URL."""

from __future__ import annotations

import codecs
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from collectors.evidence import EvidenceRequest
from collectors.gitrepo import GitSource, list_files
from collectors.junit import SIGNALS, JUnitSource, collect
from tests.support.git import GitRepo
from tests.support.http_server import Reply
from tests.support.paths import FIXTURES

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
TRUNCATED = "junit_pytest_truncated_malformed.xml"

# (tests, passed, failures, errors, skipped), counted by hand from each file's <testcase> elements.
EXPECTED = {
    "junit_pytest_failure_skipped.xml": (5, 3, 1, 0, 1),
    "junit_mocha_junit_reporter.xml": (109, 109, 0, 0, 0),
    "TEST-org.apache.maven.surefire.test.FailingTest.xml": (2, 0, 2, 0, 0),
    "junit_jest_junit_failures.xml": (6, 1, 4, 0, 1),
    "junit_python_unittest_fail_error_skip.xml": (8, 4, 1, 1, 2),
    "junit_go_junit_report_pass_fail_skip.xml": (5, 2, 1, 0, 2),
    "junit_nested_testsuites_junitparser.xml": (3, 1, 1, 0, 1),
}

NESTED = """<?xml version="1.0"?>
<testsuites name="all">
  <testsuite name="unit">
    <testcase classname="app.core" name="test_add"/>
    <testcase classname="app.core" name="test_sub"><failure message="off by one"/></testcase>
  </testsuite>
  <testsuite name="integration">
    <testcase classname="app.db" name="test_connect"/>
    <testsuite name="retry">
      <testcase classname="app.retry" name="test_retry_backoff"/>
      <testcase classname="app.retry" name="test_retry_gives_up"/>
      <testcase classname="app.retry" name="test_retry_jitter"><skipped/></testcase>
    </testsuite>
    <testcase classname="app.db" name="test_retry_on_deadlock"><error message="boom"/></testcase>
  </testsuite>
</testsuites>
"""

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuite name="bomb"><testcase classname="x" name="&lol9;"/></testsuite>
"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite name="x"><testcase classname="x" name="&secret;"/></testsuite>
"""


def _tests(**params: object) -> EvidenceRequest:
    return EvidenceRequest(signal="tests", params=params)


def _folder(path: Path, glob: str, *requests: EvidenceRequest, **settings: object):
    source = JUnitSource(id="junit", path=str(path), glob=glob, **settings)
    return collect(source, list(requests) or [_tests()], now=NOW, cache_dir=path / ".cache")


def _counts(value: dict) -> tuple[int, int, int, int, int]:
    return value["tests"], value["passed"], value["failures"], value["errors"], value["skipped"]


def test_every_junit_fixture_is_covered():
    on_disk = {p.name for p in FIXTURES.glob("junit_*.xml")} | {p.name for p in FIXTURES.glob("TEST-*.xml")}
    assert on_disk == set(EXPECTED) | {TRUNCATED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_counts_come_from_testcases(name):
    result = _folder(FIXTURES, name)
    assert result.answered, result.error
    value = result.evidence[0].value
    tests, passed, failures, errors, skipped = EXPECTED[name]
    assert _counts(value) == EXPECTED[name]
    assert value["files"] == 1
    assert value["pass_ratio"] == pytest.approx(passed / (tests - skipped))
    assert len(value["failed_tests"]) == failures + errors
    assert result.evidence[0].provenance.path == str(FIXTURES / name)
    assert result.fingerprint and len(result.fingerprint) == 64


def test_failed_tests_are_named_classname_dot_name():
    value = _folder(FIXTURES, "junit_python_unittest_fail_error_skip.xml").evidence[0].value
    assert value["failed_tests"] == ["TestAcme.test_always_fail", "TestAcme.test_error"]
    jest = _folder(FIXTURES, "junit_jest_junit_failures.xml").evidence[0].value
    assert "Timeout test" in jest["failed_tests"]  # an empty classname adds no dot


def test_failed_tests_list_is_capped_at_twenty(tmp_path):
    cases = "".join(f'<testcase classname="c" name="t{i}"><failure/></testcase>' for i in range(30))
    (tmp_path / "r.xml").write_text(f'<testsuite name="s">{cases}</testsuite>')
    value = _folder(tmp_path, "r.xml").evidence[0].value
    assert value["failures"] == 30 and value["failed_tests"] == [f"c.t{i}" for i in range(20)]


def test_a_truncated_report_is_malformed_and_named(tmp_path):
    shutil.copy(FIXTURES / TRUNCATED, tmp_path)
    shutil.copy(FIXTURES / "junit_pytest_failure_skipped.xml", tmp_path)
    result = _folder(tmp_path, "*.xml", _tests(), _tests(name="x"))
    assert result.error.kind == "malformed"
    assert TRUNCATED in result.error.message and "\n" not in result.error.message
    assert [e.error.kind for e in result.evidence] == ["malformed", "malformed"]


@pytest.mark.parametrize("text", [BOMB, XXE], ids=["billion-laughs", "external-entity"])
def test_entity_tricks_are_refused_fast(tmp_path, text):
    (tmp_path / "TEST-bomb.xml").write_text(text)
    started = time.monotonic()
    result = _folder(tmp_path, "TEST-*.xml")
    assert time.monotonic() - started < 0.5
    assert result.error.kind == "malformed"
    assert "TEST-bomb.xml" in result.error.message and "\n" not in result.error.message
    assert "root:" not in result.model_dump_json()


@pytest.mark.parametrize("text", ["", "not xml at all", "<html><body/></html>", "<testsuite"])
def test_other_garbage_is_malformed(tmp_path, text):
    (tmp_path / "r.xml").write_text(text)
    result = _folder(tmp_path, "r.xml")
    assert result.error.kind == "malformed" and "r.xml" in result.error.message


def test_deep_nesting_does_not_crash(tmp_path):
    depth = 5000
    (tmp_path / "r.xml").write_text('<testsuite name="s">' * depth + '<testcase classname="c" name="deep"/>'
                                    + "</testsuite>" * depth)
    assert _counts(_folder(tmp_path, "r.xml").evidence[0].value) == (1, 1, 0, 0, 0)


@pytest.mark.parametrize(
    ("params", "counts"),
    [
        ({}, (7, 4, 1, 1, 1)),
        ({"suite": "^retry$"}, (3, 2, 0, 0, 1)),  # the nearest enclosing suite, not "integration"
        ({"suite": "^integration$"}, (2, 1, 0, 1, 0)),
        ({"classname": r"^app\.core$"}, (2, 1, 1, 0, 0)),
        ({"name": "retry"}, (4, 2, 0, 1, 1)),
        ({"suite": "retry", "name": "gives_up"}, (1, 1, 0, 0, 0)),
    ],
)
def test_filters_select_test_cases(tmp_path, params, counts):
    (tmp_path / "r.xml").write_text(NESTED)
    assert _counts(_folder(tmp_path, "r.xml", _tests(**params)).evidence[0].value) == counts


def test_retry_tests_pass_can_be_a_check(tmp_path):
    (tmp_path / "r.xml").write_text(NESTED)
    result = _folder(tmp_path, "r.xml", _tests(suite="^retry$"), _tests(classname=r"^app\.core$"))
    assert result.evidence[0].value["pass_ratio"] == 1.0
    assert result.evidence[1].value["pass_ratio"] == 0.5
    assert result.evidence[1].value["failed_tests"] == ["app.core.test_sub"]


def test_nothing_matched_or_all_skipped_is_not_found(tmp_path):
    (tmp_path / "r.xml").write_text(NESTED)
    result = _folder(tmp_path, "r.xml", _tests(suite="nope"), _tests(name="jitter"), _tests())
    assert result.answered
    assert [e.error.kind for e in result.evidence[:2]] == ["not_found", "not_found"]
    assert result.evidence[0].error.message.startswith("no tests matched suite~'nope'")
    assert result.evidence[1].error.message.endswith("that were not skipped (1 skipped)")
    assert result.evidence[2].ok


def test_bad_params_and_unknown_signals_are_per_item_errors(tmp_path):
    (tmp_path / "r.xml").write_text(NESTED)
    result = _folder(tmp_path, "r.xml", _tests(suite="("), _tests(bogus=1), EvidenceRequest(signal="coverage"))
    assert [e.error.kind for e in result.evidence] == ["malformed", "malformed", "unsupported"]


def test_a_folder_glob_sums_every_matching_file(tmp_path):
    for sub, name in [("a", "TEST-org.apache.maven.surefire.test.FailingTest.xml"),
                      ("b/c", "junit_python_unittest_fail_error_skip.xml")]:
        (tmp_path / sub).mkdir(parents=True)
        shutil.copy(FIXTURES / name, tmp_path / sub / f"TEST-{sub.replace('/', '-')}.xml")
    (tmp_path / "a" / "ignored.txt").write_text("<testsuite/>")
    result = _folder(tmp_path, "**/TEST-*.xml")
    value = result.evidence[0].value
    assert _counts(value) == (10, 4, 3, 1, 2)
    assert value["files"] == 2
    assert result.evidence[0].provenance.path == str(tmp_path / "a" / "TEST-a.xml")
    before = result.fingerprint
    assert _folder(tmp_path, "**/TEST-*.xml").fingerprint == before
    (tmp_path / "a" / "TEST-a.xml").write_text('<testsuite name="s"><testcase classname="c" name="t"/></testsuite>')
    assert _folder(tmp_path, "**/TEST-*.xml").fingerprint != before


def test_no_matching_files_or_no_folder_is_not_found(tmp_path):
    assert _folder(tmp_path, "*.xml").error.kind == "not_found"
    assert _folder(tmp_path / "missing", "*.xml").error.kind == "not_found"


def test_a_file_over_max_bytes_is_malformed_and_named(tmp_path):
    shutil.copy(FIXTURES / "junit_mocha_junit_reporter.xml", tmp_path)
    result = _folder(tmp_path, "*.xml", max_bytes=1000)
    assert result.error.kind == "malformed" and "junit_mocha_junit_reporter.xml" in result.error.message


def test_a_symlink_out_of_the_folder_is_unsafe(tmp_path):
    outside, folder = tmp_path / "outside", tmp_path / "reports"
    outside.mkdir()
    folder.mkdir()
    shutil.copy(FIXTURES / "junit_mocha_junit_reporter.xml", outside / "r.xml")
    (folder / "r.xml").symlink_to(outside / "r.xml")
    assert _folder(folder, "*.xml").error.kind == "unsafe"
    assert _folder(folder, "../outside/*.xml").error.kind == "unsafe"


# --- git ---------------------------------------------------------------------------------------


def _git(repo: GitRepo, glob: str, commit: str | None, *requests: EvidenceRequest, tmp_path: Path):
    source = JUnitSource(id="junit", git="repo", glob=glob)
    return collect(source, list(requests) or [_tests()], now=NOW, cache_dir=tmp_path / "cache",
                   repo=GitSource(id="repo", path=str(repo.path)), commit=commit)


def test_reports_committed_in_git_are_read_at_a_commit_without_checkout(git_repo, tmp_path):
    git_repo.write("reports/TEST-unit.xml", (FIXTURES / "junit_pytest_failure_skipped.xml").read_text())
    old = git_repo.commit("failing run")
    git_repo.write("reports/TEST-unit.xml", NESTED)
    git_repo.write("reports/more/TEST-mocha.xml", (FIXTURES / "junit_mocha_junit_reporter.xml").read_text())
    new = git_repo.commit("green run")
    git_repo.write("reports/TEST-unit.xml", "uncommitted garbage <")  # the working tree is never read

    older = _git(git_repo, "reports/**/TEST-*.xml", old, tmp_path=tmp_path)
    assert _counts(older.evidence[0].value) == (5, 3, 1, 0, 1)
    assert older.fingerprint == old
    assert older.evidence[0].provenance.commit == old
    assert older.evidence[0].provenance.path == "reports/TEST-unit.xml"

    newer = _git(git_repo, "reports/**/TEST-*.xml", new, _tests(suite="^retry$"), tmp_path=tmp_path)
    assert newer.evidence[0].value["files"] == 2
    assert _counts(newer.evidence[0].value) == (3, 2, 0, 0, 1)
    tip = _git(git_repo, "reports/**/TEST-*.xml", None, tmp_path=tmp_path)
    assert tip.fingerprint == new and _counts(tip.evidence[0].value) == (116, 113, 1, 1, 1)


def test_git_faults_are_evidence_errors(git_repo, tmp_path):
    git_repo.write("reports/TEST-bad.xml", "<testsuite><testcase")
    sha = git_repo.commit("bad report")
    bad = _git(git_repo, "reports/*.xml", sha, tmp_path=tmp_path)
    assert bad.error.kind == "malformed" and "reports/TEST-bad.xml" in bad.error.message
    assert _git(git_repo, "nothing/*.xml", sha, tmp_path=tmp_path).error.kind == "not_found"
    assert _git(git_repo, "reports/*.xml", "0" * 40, tmp_path=tmp_path).error.kind == "not_found"
    missing = collect(JUnitSource(id="j", git="repo", glob="*.xml"), [_tests()], now=NOW, cache_dir=tmp_path,
                      repo=GitSource(id="repo", path=str(tmp_path / "nowhere")))
    assert missing.error.kind == "not_found"
    unwired = collect(JUnitSource(id="j", git="repo", glob="*.xml"), [_tests()], now=NOW, cache_dir=tmp_path)
    assert unwired.error.kind == "unsupported"


def test_list_files_skips_links_that_cannot_be_read(git_repo, tmp_path):
    git_repo.write("r/a.xml", "<testsuite/>")
    git_repo.symlink("r/out.xml", "../../etc/passwd")
    git_repo.symlink("r/broken.xml", "nowhere.xml")
    git_repo.symlink("r/link.xml", "a.xml")
    sha = git_repo.commit("links")
    source = GitSource(id="repo", path=str(git_repo.path))
    assert list_files(source, "r/*.xml", cache_dir=tmp_path) == (["r/a.xml", "r/link.xml"], sha)


# --- url ---------------------------------------------------------------------------------------


def _url(url: str, *requests: EvidenceRequest, **settings: object):
    return collect(JUnitSource(id="junit", url=url, **settings), list(requests) or [_tests()], now=NOW,
                   cache_dir=Path("/nonexistent"))


def test_a_report_fetched_over_http(http_server):
    body = (FIXTURES / "junit_jest_junit_failures.xml").read_bytes()
    http_server.route("/TEST-jest.xml", Reply(200, body, {"Content-Type": "application/xml"}))
    result = _url(http_server.url.replace("http://", "http://ci:pw@") + "/TEST-jest.xml")
    assert _counts(result.evidence[0].value) == (6, 1, 4, 0, 1)
    assert result.evidence[0].provenance.url == http_server.url + "/TEST-jest.xml"
    assert "pw@" not in result.model_dump_json()


def test_url_faults_are_evidence_errors(http_server):
    http_server.route("/big.xml", Reply(200, (FIXTURES / "junit_mocha_junit_reporter.xml").read_bytes()))
    http_server.route("/bad.xml", Reply(200, (FIXTURES / TRUNCATED).read_bytes()))
    http_server.route("/flaky.xml", Reply(502, "bad gateway"))
    http_server.route("/slow.xml", Reply(200, NESTED, delay=2))
    assert _url(http_server.url + "/missing.xml").error.kind == "not_found"
    flaky = _url(http_server.url + "/flaky.xml").error
    assert flaky.kind == "http_status" and flaky.retryable
    big = _url(http_server.url + "/big.xml", max_bytes=500).error
    assert big.kind == "malformed" and "/big.xml" in big.message
    bad = _url(http_server.url + "/bad.xml").error
    assert bad.kind == "malformed" and "/bad.xml" in bad.message
    assert _url(http_server.url + "/slow.xml", timeout_seconds=0.3).error.kind == "timeout"


@pytest.mark.parametrize(
    "settings",
    [
        {"glob": "*.xml"},
        {"path": "/r"},
        {"git": "repo", "path": "/r", "glob": "*.xml"},
        {"url": "https://ci/x.xml", "glob": "*.xml"},
        {"url": "ftp://ci/x.xml"},
        {"path": "/r", "glob": "*.xml", "extra": 1},
        {"path": "/r", "glob": ""},
    ],
)
def test_source_validation(settings):
    with pytest.raises(ValidationError):
        JUnitSource(id="junit", **settings)


def test_signal_model_defaults():
    assert (SIGNALS["tests"].default_field, SIGNALS["tests"].default_transform) == ("pass_ratio", "ratio")


@pytest.mark.parametrize(("declared", "encode"), [
    ("UTF-16", lambda text: text.encode("utf-16")),  # little-endian, with its BOM
    ("UTF-16", lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be")),
    ("utf-8", lambda text: text.encode("utf-8-sig")),
], ids=["utf-16le-bom", "utf-16be-bom", "utf-8-bom"])
def test_a_report_with_a_bom_reads_the_same_from_a_folder_and_from_git(git_repo, tmp_path, declared, encode):
    # Windows tools (PowerShell's Out-File, some .NET reporters) write UTF-16 with a byte order mark.
    text = (FIXTURES / "junit_pytest_failure_skipped.xml").read_text().replace('encoding="utf-8"', f'encoding="{declared}"')
    data = encode(text)
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "TEST-win.xml").write_bytes(data)
    git_repo.write("reports/TEST-win.xml", data)
    sha = git_repo.commit("a report written on Windows")

    from_folder = _folder(folder, "*.xml")
    from_git = _git(git_repo, "reports/*.xml", sha, tmp_path=tmp_path)
    assert from_folder.answered, from_folder.error
    assert from_git.answered, from_git.error
    assert _counts(from_git.evidence[0].value) == _counts(from_folder.evidence[0].value) == EXPECTED["junit_pytest_failure_skipped.xml"]
    assert from_git.evidence[0].value == from_folder.evidence[0].value
