"""The fast paths of reading a repository give what the old paths gave.

Blobs read in one batch, globs matched by one compiled expression, git
waited for without polling. The old paths are kept as oracles:
:meth:`Repository.blob` (one blob at a time through GitPython) and wcmatch's
own matcher (``glob.globmatch``).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wcmatch import glob

from collectors import gitcommand
from collectors.evidence import EvidenceRequest, SourceFault
from collectors.git import collect
from collectors.gitrepo import BINARY_PROBE, GLOB_FLAGS, LINK_MODE, Deadline, Entry, GitSource, Repository, Tree
from collectors.globs import GlobMatcher, glob_matcher
from collectors.regex import compile_regex
from collectors.testcases import expand_glob
from tests.support.git import GitRepo

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=timezone.utc)
MAX_BYTES = 300

PATHS = [
    "README.md", ".env", ".github/workflows/ci.yml", "src/app.py", "src/.hidden.py", "src/sub dir/b c.py",
    "src/naïve/ünï.py", "src/日本/テスト.py", "src/pkg/deep/er/mod.py", "src/[x].py", "src/a{b}.py", "tests/test_app.py",
    "tests/unit/test_x.py", "tests/unit/x_test.go", "docs/guide.md", "docs/a/b.md", "a b/c d.txt", "x/y/z", "x",
    "spec/app.spec.ts", "src/!bang.py", "src/-dash.py", "src.py", "srcx/a.py", "src-/a.py", "src/\udcff.py",
]
GLOBS = [
    "**", "*", "**/*.py", "src/**/*.py", "src/**", "{src,tests}/**/*.py", "**/.env", ".*", "**/.*", "*.{md,txt}",
    "docs/*.md", "docs/**/*.md", "a b/*.txt", "src/naïve/**", "src/日本/*.py", "**/[!t]*.py", "src/[[]x].py",
    "src/a{b}.py", "@tests", "x/**/z", "x/**", "**/unit/*", "src/!*.py", "**/*.{py,go}", "src/*/*/*/*.py",
]


@pytest.mark.parametrize("pattern", GLOBS)
def test_glob_matcher_agrees_with_wcmatch(pattern: str) -> None:
    matcher = glob_matcher(pattern)
    expected = [path for path in sorted(PATHS) if glob.globmatch(path, expand_glob(pattern), flags=GLOB_FLAGS)]
    assert matcher.select(sorted(PATHS)) == expected
    assert [path for path in sorted(PATHS) if matcher(path)] == expected


_SEGMENT = st.text(alphabet="ab.-_ é{}*?[]!,/", min_size=1, max_size=5)
_NAME = st.text(alphabet="ab.-_ é{}*!,", min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(pattern=st.lists(st.one_of(_SEGMENT, st.just("**")), min_size=1, max_size=4).map("/".join),
       paths=st.lists(st.lists(_NAME, min_size=1, max_size=4).map("/".join), max_size=8))
def test_glob_matcher_agrees_with_wcmatch_on_any_glob(pattern: str, paths: list[str]) -> None:
    names = sorted(set(paths))
    try:
        expected = [path for path in names if glob.globmatch(path, pattern, flags=GLOB_FLAGS)]
    except ValueError:  # a pattern wcmatch refuses is refused by both
        with pytest.raises(ValueError):
            GlobMatcher(pattern)
        return
    assert GlobMatcher(pattern).select(names) == expected


def _repo(git_repo: GitRepo, tmp_path: Path) -> tuple[GitRepo, str, str]:
    """Files of every kind a content read meets; the second commit deletes one and changes another."""
    r = git_repo
    (tmp_path / "outside.py").write_text("TODO outside\n")
    r.write("src/app.py", "# TODO one\nprint('hi')  # TODO two\n")
    r.write("src/sub dir/b c.py", "x = 1\n# TODO spaced\n")
    r.write("src/naïve/ünï.py", "# TODO ünïcode\n")
    r.write("src/.hidden.py", "# TODO hidden\n")
    r.write("src/bin.py", b"TODO\0binary\n")
    r.write("src/late_nul.py", b"TODO\n" + b"x" * (BINARY_PROBE + 10) + b"\0")  # NUL past the probe: text, but too large
    r.write("src/big.py", "# TODO\n" * 100)  # over MAX_BYTES
    r.write("src/latin1.py", "# TODO caf\xe9\n".encode("latin-1"))
    r.write("src/empty.py", "")
    r.write("src/deleted.py", "# TODO gone\n")
    r.write("tests/test_app.py", "def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    r.write("tests/test_gone.py", "def test_gone():\n    pass\n")
    r.write("tests/bin_test.py", b"\0\0")
    r.symlink("src/link.py", "app.py")
    r.symlink("src/out.py", str(tmp_path / "outside.py"))
    r.symlink("src/broken.py", "nowhere.py")
    first = r.commit("c1", when=NOW - timedelta(days=20))
    r.remove("src/deleted.py")
    r.remove("tests/test_gone.py")
    r.write("src/app.py", "# TODO one\n# TODO three\n")
    second = r.commit("c2", when=NOW - timedelta(days=10))
    return r, first, second


def _source(repo: GitRepo) -> GitSource:
    return GitSource(id="svc", path=str(repo.path), max_file_bytes=MAX_BYTES)


def _content_match_one_at_a_time(repo: Repository, sha: str, pattern: str, regex_text: str) -> dict[str, Any]:
    """The content_match answer as the collector computed it before the batch: each blob read alone."""
    tree = Tree(repo, sha)
    regex = compile_regex(regex_text, multiline=True)
    matched, skipped, total = [], [], 0
    for path in tree.glob(pattern, sorted(set(tree.files) | tree.outside)):
        entry = tree.files.get(path)
        reason = ("symlink_outside" if entry is None else "symlink_broken" if entry.mode == LINK_MODE
                  else "too_large" if entry.size > MAX_BYTES else None)
        data = None if entry is None or reason else repo.blob(entry.sha, path)
        if data is None or b"\0" in data[:BINARY_PROBE]:
            skipped.append({"path": path, "reason": reason or "binary"})
            continue
        found = list(regex.finditer(data.decode("utf-8", errors="replace")))
        if found:
            matched.append(path)
            total += len(found)
    return {"files": len(matched), "matches": total, "paths": matched, "skipped": skipped}


@pytest.mark.parametrize(("pattern", "regex"), [
    ("**", "TODO"), ("src/**/*.py", r"TODO \w+"), ("**/*.py", "^#"), ("{src,tests}/**", "caf.|ünï"),
    ("src/sub dir/*.py", "TODO"), ("**/.*", "TODO"), ("tests/**", "def test_"), ("src/*.py", "(?s)one.*three"),
])
def test_batched_content_match_equals_one_blob_at_a_time(git_repo: GitRepo, tmp_path: Path, pattern: str,
                                                         regex: str) -> None:
    repo, first, second = _repo(git_repo, tmp_path)
    opened = Repository(_source(repo), None, sync=False)
    try:
        for commit in (first, second):  # the deleted file is read at the first commit only
            result = collect(_source(repo), [EvidenceRequest(signal="content_match", params={"glob": pattern, "regex": regex})],
                             now=NOW, commit=commit)
            value = result.evidence[0].value
            assert value is not None, result.evidence[0].error
            assert value == _content_match_one_at_a_time(opened, commit, pattern, regex)
    finally:
        opened.close()


def test_content_match_sees_deletions_and_skips_what_it_cannot_read(git_repo: GitRepo, tmp_path: Path) -> None:
    repo, first, _ = _repo(git_repo, tmp_path)
    request = [EvidenceRequest(signal="content_match", params={"glob": "src/**", "regex": "TODO"})]
    old = collect(_source(repo), request, now=NOW, commit=first).evidence[0].value
    new = collect(_source(repo), request, now=NOW).evidence[0]
    assert "src/deleted.py" in old["paths"] and "src/deleted.py" not in new.value["paths"]
    assert new.value["paths"] == ["src/.hidden.py", "src/app.py", "src/latin1.py", "src/link.py", "src/naïve/ünï.py",
                                  "src/sub dir/b c.py"]
    assert new.value["matches"] == 8 and new.provenance.path == "src/.hidden.py" and new.provenance.line == 1
    assert new.value["skipped"] == [{"path": "src/big.py", "reason": "too_large"}, {"path": "src/bin.py", "reason": "binary"},
                                    {"path": "src/broken.py", "reason": "symlink_broken"},
                                    {"path": "src/late_nul.py", "reason": "too_large"},
                                    {"path": "src/out.py", "reason": "symlink_outside"}]


def test_batched_test_cases_see_deletions(git_repo: GitRepo, tmp_path: Path) -> None:
    repo, first, _ = _repo(git_repo, tmp_path)
    request = [EvidenceRequest(signal="test_cases", params={"glob": "tests/**"})]
    old = collect(_source(repo), request, now=NOW, commit=first).evidence[0].value
    new = collect(_source(repo), request, now=NOW).evidence[0].value
    assert old["names"] == ["tests/test_app.py::test_one", "tests/test_app.py::test_two", "tests/test_gone.py::test_gone"]
    assert new["names"] == ["tests/test_app.py::test_one", "tests/test_app.py::test_two"]
    assert new["skipped"] == old["skipped"] == [{"path": "tests/bin_test.py", "reason": "binary"}]


def test_blobs_equal_blob_for_every_file(git_repo: GitRepo, tmp_path: Path) -> None:
    repo, first, _ = _repo(git_repo, tmp_path)
    opened = Repository(_source(repo), None, sync=False)
    try:
        raw = opened.ls_tree(first)
        wanted = [(e, path) for path, e in sorted(raw.items())] * 2  # every blob, each asked twice
        assert list(opened.blobs(wanted)) == [opened.blob(e.sha, path) for e, path in wanted]
        assert list(opened.blobs([])) == []
    finally:
        opened.close()


def test_blobs_more_than_a_pipe_holds(git_repo: GitRepo) -> None:
    # 3,000 ids are 120 KB to write while the answers (about 3 MB) come back: neither side may block the other.
    for i in range(3000):
        git_repo.write(f"f/{i:04d}.txt", f"{i}\n" + "x" * 1000)
    git_repo.commit("many", when=NOW)
    opened = Repository(_source(git_repo), None, sync=False)
    try:
        raw = opened.ls_tree(git_repo.git("rev-parse", "HEAD"))
        wanted = [(e, path) for path, e in sorted(raw.items())]
        assert [data.split(b"\n")[0] for data in opened.blobs(wanted)] == [str(i).encode() for i in range(3000)]
        reader = opened.blobs(wanted)
        assert next(reader).startswith(b"0\n")
        reader.close()  # stopped early: git is ended, nothing hangs
    finally:
        opened.close()


def test_blobs_missing_object_and_deadline(git_repo: GitRepo) -> None:
    git_repo.write("a.txt", "a\n")
    git_repo.commit("a", when=NOW)
    sha = git_repo.git("rev-parse", "HEAD:a.txt")
    opened = Repository(_source(git_repo), None, sync=False)
    try:
        with pytest.raises(SourceFault) as info:
            list(opened.blobs([(Entry("100644", sha, 2), "a.txt"), (Entry("100644", "0" * 40, 2), "gone.txt")]))
        assert info.value.error.kind == "malformed"
        assert info.value.error.message == f"{git_repo.path}: cannot read gone.txt: object {'0' * 12} is corrupt"
        opened.deadline = Deadline(time.monotonic() - 1, 5)
        with pytest.raises(SourceFault) as late:
            list(opened.blobs([(Entry("100644", sha, 2), "a.txt")]))
        assert late.value.error.kind == "timeout"
    finally:
        opened.close()


def test_blobs_split_into_batches_by_size(git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(50):
        git_repo.write(f"f/{i:02d}.txt", f"{i}\n" + "y" * (100 * i))  # one of them larger than a whole batch
    git_repo.commit("sizes", when=NOW)
    monkeypatch.setattr(gitcommand, "_BATCH_BYTES", 2500)
    opened = Repository(_source(git_repo), None, sync=False)
    try:
        raw = opened.ls_tree(git_repo.git("rev-parse", "HEAD"))
        wanted = [(e, path) for path, e in sorted(raw.items())]
        assert list(opened.blobs(wanted)) == [opened.blob(e.sha, path) for e, path in wanted]
    finally:
        opened.close()


# -- waiting for git without polling (run_status) ------------------------------


def test_run_status_keeps_output_and_status(git_repo: GitRepo) -> None:
    git_repo.write("a.txt", "a\n")
    sha = git_repo.commit("a", when=NOW)
    assert gitcommand.run_status(git_repo.path, "rev-parse", "HEAD", timeout=30) == (0, sha, "")
    status, out, err = gitcommand.run_status(git_repo.path, "cat-file", "-t", "0" * 40, timeout=30)
    assert status == 128 and out == "" and "fatal:" in err


@pytest.mark.parametrize("alias", ["!sleep 5", "!sleep 5 & :"])  # git itself slow; git gone, its child holding the pipes
def test_run_status_times_out(git_repo: GitRepo, alias: str) -> None:
    status, out, err = gitcommand.run_status(git_repo.path, "-c", f"alias.hold={alias}", "hold", timeout=0.5)
    assert status == -9 and out == "" and err.startswith("Timeout: git hold did not complete in 0.5 secs.")
