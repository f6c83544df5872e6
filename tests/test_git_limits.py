"""A git source's hard limits: `timeout_seconds` bounds the whole collection, and
a tree too large to list (a "git bomb") is an evidence error, not unbounded memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from collectors.evidence import EvidenceRequest
from collectors.git import GitSource, collect
from tests.support.git import GitRepo

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
GUARD_SECONDS = 120  # a hang fails the test instead of freezing the suite


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, text=True, check=True).stdout.strip()


def git_bomb(path: Path, width: int = 10, depth: int = 10) -> Path:
    """A repository whose one commit holds width**depth files in a few hundred bytes of objects:
    each tree is `width` entries naming the same tree one level down."""
    GitRepo(path)
    obj = _git(path, "hash-object", "-w", "--stdin", stdin="boom\n")
    mode, kind = "100644", "blob"
    for _ in range(depth):
        listing = "".join(f"{mode} {kind} {obj}\t{'f' if kind == 'blob' else 'd'}{i}\n" for i in range(width))
        obj = _git(path, "mktree", stdin=listing)
        mode, kind = "040000", "tree"
    commit = _git(path, "commit-tree", obj, "-m", "bomb")
    _git(path, "update-ref", "refs/heads/main", commit)
    return path


def _limit_memory() -> None:  # a safety net for the machine: the test measures far less than this
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


COLLECT_BOMB = """
import json, resource, sys
from datetime import datetime, timezone
from pathlib import Path
from collectors.evidence import EvidenceRequest
from collectors.git import GitSource, collect
source = GitSource(id="bomb", path=sys.argv[1], timeout_seconds=60)
requests = [EvidenceRequest(signal="file_count", params={"glob": "**"}),
            EvidenceRequest(signal="content_match", params={"glob": "d0/d0/**", "regex": "boom"})]
result = collect(source, requests, now=datetime.now(timezone.utc), cache_dir=Path(sys.argv[2]))
print(json.dumps({"result": result.model_dump(mode="json"),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_a_git_bomb_is_too_large_with_bounded_memory(tmp_path):
    bomb = git_bomb(tmp_path / "bomb")
    assert _git(bomb, "count-objects", "-v").count("\n") > 0  # a real repository of a handful of objects
    proc = subprocess.run([sys.executable, "-c", COLLECT_BOMB, str(bomb), str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=GUARD_SECONDS, preexec_fn=_limit_memory)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    error = out["result"]["error"]
    assert error["kind"] == "too_large", error
    assert "max_tree_entries" in error["message"]
    assert all(e["error"]["kind"] == "too_large" for e in out["result"]["evidence"])
    # The default cap keeps the listing to a few hundred MB at most, not the 10**10 entries git would list.
    assert out["max_rss_mb"] < 512, out["max_rss_mb"]


def test_a_lower_max_tree_entries_refuses_a_large_tree_and_allows_one_within(git_repo: GitRepo, tmp_path: Path):
    for i in range(30):
        git_repo.write(f"f{i:02}.txt", "x\n")
    git_repo.commit("thirty files", when=NOW)
    request = [EvidenceRequest(signal="file_count", params={"glob": "**"})]
    small = collect(GitSource(id="r", path=str(git_repo.path), max_tree_entries=29), request, now=NOW,
                    cache_dir=tmp_path / "cache")
    assert small.error is not None and small.error.kind == "too_large"
    assert "more than 29 entries" in small.error.message
    enough = collect(GitSource(id="r", path=str(git_repo.path), max_tree_entries=30), request, now=NOW,
                     cache_dir=tmp_path / "cache")
    assert enough.error is None and enough.evidence[0].value["count"] == 30


@pytest.fixture
def long_history(tmp_path: Path) -> Path:
    """A repository of 30,000 commits: each `git log -- PATH` over it walks them all."""
    path = tmp_path / "history"
    GitRepo(path)
    stream = "".join(
        f"commit refs/heads/main\nmark :{i + 1}\ncommitter T <t@example.invalid> {1_600_000_000 + i} +0000\n"
        f"data 1\nx\n" + (f"from :{i}\n" if i else "") + f"M 100644 inline f.txt\ndata {len(str(i))}\n{i}\n\n"
        for i in range(30_000))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=stream, text=True, check=True)
    return path


def test_timeout_seconds_bounds_the_whole_collection_not_each_git_command(long_history: Path, tmp_path: Path):
    # Forty history walks: each well within the limit, together far beyond it.
    requests = [EvidenceRequest(signal="file_age", params={"path": f"missing/{i}.txt"}) for i in range(40)]
    source = GitSource(id="slow", path=str(long_history), branch="main", timeout_seconds=1)
    result = collect(source, requests, now=NOW, cache_dir=tmp_path / "cache")
    assert result.error is not None and result.error.kind == "timeout", result.error
    assert result.error.retryable
    assert "1s" in result.error.message
    assert all(e.error is not None and e.error.kind == "timeout" for e in result.evidence)
    # One walk alone answers: the limit is not simply too small for this repository.
    alone = collect(source, requests[:1], now=NOW, cache_dir=tmp_path / "cache")
    assert alone.error is None and alone.evidence[0].value["days"] is None


def test_timeout_seconds_bounds_a_junit_source_read_through_git(tmp_path: Path):
    # Hundreds of small reports: each read well within the limit, together far beyond it.
    from collectors.junit import JUnitSource
    from collectors.junit import collect as collect_junit

    repo = GitRepo(tmp_path / "reports")
    for i in range(400):
        repo.write(f"reports/r{i}.xml", f'<testsuite name="s{i}"><testcase name="t{i}"/></testsuite>\n')
    repo.commit("reports", when=NOW)
    git = GitSource(id="code", path=str(repo.path), branch="main", timeout_seconds=60)
    request = [EvidenceRequest(signal="tests", params={})]
    junit = JUnitSource(id="ci", git="code", glob="reports/*.xml", timeout_seconds=0.5)
    result = collect_junit(junit, request, now=NOW, cache_dir=tmp_path / "cache", repo=git)
    assert result.error is not None and result.error.kind == "timeout", result.error
    assert result.error.retryable and "0.5s" in result.error.message
    # A few reports alone are read: the limit is not simply too small for this repository.
    few = collect_junit(junit.model_copy(update={"glob": "reports/r1.xml"}), request, now=NOW,
                        cache_dir=tmp_path / "cache", repo=git)
    assert few.error is None and few.evidence[0].value["tests"] == 1
