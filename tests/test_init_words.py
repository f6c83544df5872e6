"""The word matching behind `init`'s drafts: significant words, stems, overlap, and the pure drafting of checks."""

from __future__ import annotations

import pytest

from daemon.run.draft import FoundTest, RepoView, StatusDoc, criterion_checks, draft_criteria, slug
from daemon.run.words import STOP_WORDS, match_regex, overlap, stems, words_of


@pytest.mark.parametrize(("text", "expected"), [
    ("Survive restart without semantic drift", {"surviv", "restart", "semant", "drift"}),
    ("test_restarts_are_recovered", {"restart", "recov"}),
    ("TestRestartAfterCrash", {"restart", "crash"}),
    ("HTTPServer_timeouts", {"http", "server", "timeout"}),
    ("Retry/timer/resume explicit and test-covered", {"retri", "timer", "resum", "explicit", "cover"}),
    ("test_it_should_work_when_given_a_case", set()),  # nothing but stop words and short words
    ("v2 of the 100 checks", set()),  # numbers and short words carry no meaning
])
def test_stems_are_the_significant_words_stemmed(text: str, expected: set[str]):
    assert stems(text) == expected


def test_stop_words_hold_what_every_test_name_says():
    assert {"test", "should", "the", "when", "with"} <= STOP_WORDS
    assert not {"restart", "retry", "tenant", "timeout"} & STOP_WORDS


def test_overlap_counts_shared_stems_against_the_title():
    found = overlap("Survive restart without semantic drift", "test_restart_keeps_state")
    assert found.shared == {"restart"} and found.share == pytest.approx(0.25)
    assert overlap("Tenant isolation consistency", "TestTenantIsolation").share == pytest.approx(2 / 3)
    assert overlap("Traceable lineage", "test_provenance_file").shared == set()
    assert overlap("", "anything").share == 0.0


def test_the_match_regex_names_the_words_as_written_not_their_stems():
    wanted = stems("Retry and backoff")
    assert words_of("test_retry_and_retries_backoff", wanted) == {"retry", "retries", "backoff"}
    assert match_regex({"retry", "retries", "a.b"}) == r"(?i)a\.b|retries|retry"


def test_slugs_are_ids_and_unique():
    taken: set[str] = set()
    assert slug("Durability (Temporal-inspired)", taken) == "durability-temporal-inspired"
    assert slug("Durability (Temporal-inspired)", taken) == "durability-temporal-inspired-2"
    assert slug("Ünïcode — only!!") == "n-code-only"
    assert slug("!!!") == "untitled"
    assert len(slug("word " * 30)) <= 40


def _view(**kw: object) -> RepoView:
    return RepoView(name="svc", commit="0" * 40, files=list(kw.pop("files", [])), **kw)  # type: ignore[arg-type]


def test_named_tests_give_a_test_cases_check_scaled_to_twice_their_count():
    tests = [FoundTest(path="pkg/test_engine.py", line=1, name="test_restart_keeps_state"),
             FoundTest(path="pkg/test_engine.py", line=4, name="test_restarts_twice", scope="TestEngine"),
             FoundTest(path="tests/test_api.py", line=1, name="test_list_users")]
    checks = criterion_checks("Survive restart without drift", [], [], _view(tests=tests, tests_signal=True), {})
    (named,) = checks
    assert named.check == {"source": "repo", "signal": "test_cases", "match": "(?i)restart|restarts",
                           "transform": {"scale": [0, 4]}}
    assert named.start == 0.5
    assert "2 test case(s) share the words restart, restarts with the title" in named.reason


def test_a_criterion_whose_evidence_is_all_present_gets_one_that_can_still_rise():
    view = _view(files=["LICENSE"], texts={"tests/test_a.py": "def test_audit():\n    pass\n"})
    checks = criterion_checks("Audit licence", [(3, "see LICENSE")], [], view, {"LICENSE": ["LICENSE"]})
    assert [c.check["signal"] for c in checks] == ["file_exists", "content_match"]
    assert checks[0].start == 1.0 and checks[1].start == 0.5
    assert checks[1].reason == "the title's words (audit, licence) in test files: 1 file(s) at HEAD"


def test_a_ratio_line_goes_to_the_criterion_sharing_most_words_and_a_full_one_reads_its_numerator():
    status = [StatusDoc(path="docs/STATUS.md", text="# S\n- Tenant isolation suite: 5/5 pass\n- Restart: 1/4 passing\n"
                                                  "- Unrelated thing: 2/2 pass\n- Budget: 3/4\n")]
    drafted, sources = draft_criteria([["Survive restart", "Tenant isolation consistency"]], [[[], []]], _view(), status)
    restart, tenant = drafted[0]
    assert restart[0].check == {"source": "status", "signal": "ratio", "label": "Restart"} and restart[0].start == 0.25
    assert tenant[0].check == {"source": "status", "signal": "ratio", "label": "Tenant isolation suite",
                               "field": "numerator", "transform": {"scale": [0, 10]}}
    assert sources == {"status": "docs/STATUS.md"}


def test_mentions_are_files_and_test_names_that_exist_at_head():
    view = _view(files=["pkg/test_a.py", "README.md"],
                 texts={"pkg/test_a.py": "def test_quote():\n    pass\n\n\ndef test_other():\n    pass\n"})
    near = [(4, "Evidence: `test_a.py`, test_quote, README.md; testing ongoing; pkg/missing.py, Durability")]
    checks = criterion_checks("Quote marks", near, [], view, {"test_a.py": ["pkg/test_a.py"], "README.md": ["README.md"]})
    assert [(c.check["signal"], c.check.get("glob") or c.check.get("path"), c.start) for c in checks] == [
        ("content_match", "pkg/test_a.py", 0.5),  # the file, by its name alone: its two test definitions
        ("content_match", "pkg/test_a.py", 0.5),  # the test name, where it is defined
        ("file_exists", "README.md", 1.0),
    ]
    assert checks[0].check["transform"] == {"scale": [0, 4]}
    assert checks[0].reason == "document line 4 names pkg/test_a.py: 2 test definition(s) there at HEAD"
    assert checks[1].check["regex"] == r"\btest_quote\b"


def test_with_the_test_cases_signal_a_mentioned_file_and_name_count_test_cases():
    tests = [FoundTest(path="t/test_x.py", line=1, name="test_quote"),
             FoundTest(path="t/test_x.py", line=4, name="test_other")]
    view = _view(files=["t/test_x.py"], tests=tests, tests_signal=True)
    checks = criterion_checks("Quoting", [(2, "t/test_x.py and test_quote")], [], view, {"test_x.py": ["t/test_x.py"]})
    assert [c.check for c in checks[:2]] == [
        {"source": "repo", "signal": "test_cases", "glob": "t/test_x.py", "transform": {"scale": [0, 4]}},
        {"source": "repo", "signal": "test_cases", "match": "^test_quote$", "transform": {"scale": [0, 2]}},
    ]
    assert checks[1].reason == "document line 2 names test test_quote: 1 test case(s) of that name at HEAD, in t/test_x.py"
