"""Test cases as evidence: where each language keeps them, counted as its own lister counts them.

The Python count is checked against ``pytest --collect-only`` over a real generated tree, the Go count
against ``go test -list`` where a Go toolchain is installed; JavaScript, Java, Kotlin and Rust against
plain-text fixtures whose tests are known.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wcmatch import glob

from collectors.evidence import EvidenceRequest
from collectors.git import GitSource, collect
from collectors.gitrepo import GLOB_FLAGS
from collectors.testcases import TESTS_PRESET, find_test_cases, language_of
from tests.support.cli import run_cli
from tests.support.git import GitRepo
from tests.support.listers import go_tests, pytest_functions
from tests.support.sample_tests import (
    JAVA,
    JAVA_CASES,
    KOTLIN,
    KOTLIN_CASES,
    RUST,
    RUST_CASES,
    TYPESCRIPT,
    TYPESCRIPT_CASES,
)

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _ask(path: Path, **params: object):
    result = collect(GitSource(id="repo", path=str(path)), [EvidenceRequest(signal="test_cases", params=params)], now=NOW)
    (item,) = result.evidence
    assert item.error is None, item.error
    return item


# -- which files are test files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "language"), [
    ("test_app.py", "python"), ("pkg/test_core.py", "python"), ("pkg/core_test.py", "python"),
    ("tests/helpers.py", "python"), ("a/b/test/unit/x.py", "python"), ("pkg/core.py", None), ("latest.py", None),
    ("pkg/server_test.go", "go"), ("pkg/server.go", None),
    ("src/cart.test.ts", "javascript"), ("src/cart.spec.jsx", "javascript"), ("web/__tests__/cart.js", "javascript"),
    ("lib/x.test.mjs", "javascript"), ("src/cart.ts", None), ("src/cart.test.css", None),
    ("svc/src/test/java/a/Orders.java", "java"), ("OrdersTest.java", "java"), ("OrdersTests.java", "java"),
    ("app/OrdersTest.kt", "java"), ("src/main/java/a/Orders.java", None),
    ("src/lib.rs", "rust"), ("tests/api.rs", "rust"), ("README.md", None),
])
def test_language_of_follows_each_convention_at_any_depth(path: str, language: str | None) -> None:
    assert language_of(path) == language


_SEGMENT = st.sampled_from(["src", "test", "tests", "pkg", "__tests__", "main", "java", "a.b", "x"])
_NAME = st.sampled_from(["test_a", "a_test", "a", "a.test", "a.spec", "FooTest", "FooTests", "Foo", "latest", "contest"])
_EXT = st.sampled_from(["py", "go", "js", "jsx", "ts", "tsx", "mjs", "cjs", "java", "kt", "rs", "md", "css", ""])


@given(st.lists(_SEGMENT, max_size=4), _NAME, _EXT)
def test_the_tests_preset_is_the_same_conventions_as_language_of(folders: list[str], name: str, ext: str) -> None:
    path = "/".join([*folders, f"{name}.{ext}" if ext else name])
    matched = glob.compile(TESTS_PRESET, flags=GLOB_FLAGS).match(path)
    assert matched == (language_of(path) is not None), path


# -- the language's own lister ----------------------------------------------------------------------------------------

_PYTHON_TREE = {
    "pkg/__init__.py": "",
    "pkg/core.py": "def test_like_but_not_a_test_file():\n    pass\n",
    "pkg/test_core.py": """\
        import pytest

        def test_adds():
            assert 1 + 1 == 2

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_parametrised_counts_once(n):
            assert n

        def helper():
            pass

        class TestCore:
            def test_in_class(self):
                pass

            def helper(self):
                pass

            class TestNested:
                def test_nested(self):
                    pass

        class TestWithInit:
            def __init__(self):
                pass

            def test_never_collected(self):
                pass
        """,
    "pkg/sub/parse_test.py": """\
        async def test_async_function():
            pass

        def testnoseparator():
            pass
        """,
    "test_root.py": """\
        import sys

        if sys.version_info >= (3, 0):
            def test_under_if():
                pass

        def test_at_the_root():
            pass
        """,
    "tests/conftest.py": "import pytest\n\n@pytest.fixture\ndef value():\n    return 1\n",
    "tests/test_api.py": """\
        import unittest

        class ApiChecks(unittest.TestCase):
            def test_get(self):
                pass

            def test_post(self):
                pass

            def setUp(self):
                pass

        class AsyncChecks(unittest.IsolatedAsyncioTestCase):
            async def test_async_method(self):
                pass

        class NotCollected:
            def test_plain_class(self):
                pass
        """,
    "tests/unit/test_core.py": """\
        class TestSameFileName:
            @staticmethod
            def test_static():
                pass

            def test_duplicate(self):
                pass

            def test_duplicate(self):  # noqa: F811 -- redefined: one test, the last definition
                pass
        """,
    "tests/unit/test_broken_is_skipped.py": "",
}


def test_python_count_equals_the_functions_pytest_collects(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "svc")
    for path, text in _PYTHON_TREE.items():
        repo.write(path, textwrap.dedent(text))
    repo.commit("a service with tests beside its code, at its root and in tests/")
    collected = pytest_functions(repo.path)
    item = _ask(repo.path)
    assert item.value["count"] == len(collected) == 13
    assert set(item.value["names"]) == collected  # the same ids: path::Class::function
    assert item.value["files"] == len({node.split("::")[0] for node in collected}) == 5
    python_only = _ask(repo.path, language="python")
    assert python_only.value["count"] == len(collected)


_GO_TREE = {
    "go.mod": "module example.com/shop\n\ngo 1.19\n",
    "cart/cart.go": "package cart\n\nfunc Total(xs []int) int {\n\tt := 0\n\tfor _, x := range xs {\n\t\tt += x\n\t}\n\treturn t\n}\n",
    "cart/cart_test.go": """\
        package cart

        import "testing"

        func TestTotal(t *testing.T) {
        \tif Total([]int{1, 2}) != 3 {
        \t\tt.Fatal("sum")
        \t}
        }

        func TestEmpty(t *testing.T) {}

        func Test_underscore(t *testing.T) {}

        func Testlowercase(t *testing.T) {}

        func BenchmarkTotal(b *testing.B) {}

        func TestMain(m *testing.M) { m.Run() }

        func helper(t *testing.T) {}
        """,
    "api/api_test.go": "package api\n\nimport \"testing\"\n\nfunc TestServe(t *testing.T) {}\n",
}
_GO_NAMES = ["TestEmpty", "TestServe", "TestTotal", "Test_underscore"]


def test_go_count_is_what_go_test_list_lists(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "shop")
    for path, text in _GO_TREE.items():
        repo.write(path, textwrap.dedent(text))
    repo.commit("go")
    item = _ask(repo.path, language="go")
    assert sorted(c["name"] for c in item.value["cases"]) == _GO_NAMES
    listed = go_tests(repo.path)
    if listed is None:
        pytest.skip("no Go toolchain here (`command -v go`): checked against the known names only")
    assert listed == _GO_NAMES


# -- plain-text fixtures ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "text", "expected"), [
    ("web/cart.test.ts", TYPESCRIPT, TYPESCRIPT_CASES),
    ("shop/src/test/java/shop/OrderServiceTest.java", JAVA, JAVA_CASES),
    ("app/src/test/kotlin/CartTest.kt", KOTLIN, KOTLIN_CASES),
    ("src/lib.rs", RUST, RUST_CASES),
], ids=["typescript", "java", "kotlin", "rust"])
def test_line_based_languages_find_their_known_tests(path: str, text: str, expected: list) -> None:
    found = find_test_cases(path, text)
    assert [(c.line, c.scope, c.name) for c in found] == expected
    assert {c.path for c in found} == {path}


def test_a_python_file_that_does_not_parse_defines_no_test_and_other_files_none() -> None:
    assert find_test_cases("tests/test_x.py", "def test_broken(:\n") == []
    assert find_test_cases("tests/test_x.py", "def test_nul():\n    pass\n\0") == []
    # Deeper than CPython's parser goes (RecursionError, MemoryError inside ast.parse): no test, no crash.
    assert find_test_cases("tests/test_x.py", "def test_a():\n    pass\nx = " + "+".join(["1"] * 200_000)) == []
    assert find_test_cases("tests/test_x.py", "def test_a():\n    pass\nx = " + "-" * 500_000 + "1") == []
    assert find_test_cases("src/app.py", "def test_not_a_test_file():\n    pass\n") == []


# -- the signal ---------------------------------------------------------------------------------------------------------


def test_test_cases_match_language_fields_and_provenance(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "mixed")
    repo.write("pkg/test_restart.py", "import os\n\ndef test_survives():\n    pass\n\ndef test_other():\n    pass\n")
    repo.write("tests/test_io.py", "\n\nclass TestRetry:\n    def test_backoff(self):\n        pass\n")
    repo.write("web/cart.test.ts", TYPESCRIPT)
    repo.write("src/lib.rs", RUST)
    repo.write("tests/blob.py", b"\0\0def test_binary(): pass\n")
    repo.write("docs/restart.md", "def test_in_docs(): pass\n")
    repo.commit("mixed")
    every = _ask(repo.path)
    assert every.value["count"] == 3 + len(TYPESCRIPT_CASES) + len(RUST_CASES)
    assert every.value["files"] == 4
    assert every.value["skipped"] == [{"path": "tests/blob.py", "reason": "binary"}]
    assert every.value["names"] == sorted(every.value["names"])
    assert "web/cart.test.ts::cart > totals::rounds half up" in every.value["names"]
    assert every.provenance.path == "pkg/test_restart.py" and every.provenance.line == 3
    by_path = _ask(repo.path, match="restart")  # the path names it
    assert [c["name"] for c in by_path.value["cases"]] == ["test_survives", "test_other"]
    by_scope = _ask(repo.path, match="Retry$|totals")  # a class, a describe
    assert by_scope.value["count"] == 3 and by_scope.value["files"] == 2
    assert (by_scope.provenance.path, by_scope.provenance.line) == ("tests/test_io.py", 4)
    by_name = _ask(repo.path, match="(?i)^SURVIVES|^test_surv")
    assert by_name.value["cases"] == [{"path": "pkg/test_restart.py", "line": 3, "name": "test_survives"}]
    rust = _ask(repo.path, language="rust")
    assert rust.value["count"] == 3 and rust.value["names"][0] == "src/lib.rs::panics"
    narrowed = _ask(repo.path, glob="tests/**")
    assert narrowed.value["count"] == 1
    none = _ask(repo.path, match="nothing-matches-this")
    assert none.value["count"] == 0 and none.provenance.path is None and none.provenance.line is None


def test_lists_are_bounded_and_a_second_collection_at_the_same_commit_reuses_the_answer(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "big")
    repo.write("tests/test_many.py", "".join(f"def test_{i:03}():\n    pass\n" for i in range(120)))
    repo.commit("many")
    source = GitSource(id="repo", path=str(repo.path))
    ask = [EvidenceRequest(signal="test_cases", params={}), EvidenceRequest(signal="test_cases", params={"match": "1"})]
    first = collect(source, ask, now=NOW)
    every, ones = first.evidence
    assert every.value["count"] == 120 and len(every.value["names"]) == len(every.value["cases"]) == 50
    assert every.value["cases"][-1] == {"path": "tests/test_many.py", "line": 99, "name": "test_049"}
    assert ones.value["count"] == len([i for i in range(120) if "1" in f"test_{i:03}"])
    again = collect(source, ask, now=NOW, previous=first)
    assert [e.value for e in again.evidence] == [e.value for e in first.evidence]
    assert [e.provenance for e in again.evidence] == [e.provenance for e in first.evidence]


def test_the_tests_preset_serves_any_glob_and_an_unknown_preset_is_refused(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "p")
    repo.write("pkg/test_a.py", "def test_a():\n    pass\n")
    repo.write("pkg/a.py", "x = 1\n")
    repo.write("web/__tests__/a.js", "it('a', () => {})\n")
    repo.commit("p")
    source = GitSource(id="repo", path=str(repo.path))
    asked = [EvidenceRequest(signal="file_count", params={"glob": "@tests"}),
             EvidenceRequest(signal="content_match", params={"glob": "@tests", "regex": "a"}),
             EvidenceRequest(signal="file_exists", params={"glob": "@test"})]
    count, content, unknown = collect(source, asked, now=NOW).evidence
    assert count.value["paths"] == ["pkg/test_a.py", "web/__tests__/a.js"]
    assert content.value["files"] == 2
    assert unknown.error is not None and unknown.error.kind == "malformed"
    assert "unknown glob preset '@test' (known: @tests)" in unknown.error.message


def test_check_refuses_an_unknown_preset_and_language_in_one_line(tmp_path: Path) -> None:
    GitRepo(tmp_path / "repo").commit("empty")
    for bad, says in [('glob: "@test"', "unknown glob preset '@test' (known: @tests)"),
                      ("language: cobol", "language: input should be 'python', 'go', 'javascript', 'java' or 'rust'")]:
        (tmp_path / "pw.yaml").write_text(textwrap.dedent(f"""\
            version: 1
            store: pw.db
            projects:
              - id: svc
                sources:
                  - {{id: repo, kind: git, path: repo}}
                pillars:
                  - id: p
                    title: P
                    criteria:
                      - id: c
                        title: C
                        checks:
                          - {{source: repo, signal: test_cases, {bad}}}
            """))
        proc = run_cli("check", "--config", "pw.yaml", cwd=tmp_path, code=2)
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("pw.yaml:14: projects[0].pillars[0].criteria[0].checks[0]."), line
        assert says in line, line
