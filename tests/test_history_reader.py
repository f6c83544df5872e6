"""A git source read along its history answers, at every commit, exactly what a fresh collection at that commit does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from collectors import git_history
from collectors.evidence import EvidenceRequest
from collectors.git import GitSource, collect
from collectors.gitrepo import Repository
from collectors.history_reader import Walker, collect_history
from daemon.config.loading import load_config
from daemon.run.backfill import backfill
from daemon.run.jobs import requests_by_source
from daemon.scoring.score import score_project
from daemon.store import Store
from tests.support.git import GitRepo

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)

REQUESTS = [
    EvidenceRequest(signal="file_exists", params={"path": "README.md"}),
    EvidenceRequest(signal="file_exists", params={"path": "src"}),
    EvidenceRequest(signal="file_exists", params={"glob": "tests/**/test_*.py"}),
    EvidenceRequest(signal="file_count", params={"glob": "src/**/*.py"}),
    EvidenceRequest(signal="file_count", params={"glob": "**"}),
    EvidenceRequest(signal="content_match", params={"glob": "**/*.py", "regex": "TODO"}),
    EvidenceRequest(signal="content_match", params={"glob": "**", "regex": "^x"}),
    EvidenceRequest(signal="test_cases", params={}),
    EvidenceRequest(signal="test_cases", params={"match": "retry"}),
    EvidenceRequest(signal="file_age", params={"path": "README.md"}),
    EvidenceRequest(signal="file_age", params={"path": "src"}),
    EvidenceRequest(signal="file_age", params={"path": "never.txt"}),
    EvidenceRequest(signal="commits_since", params={"days": 3}),
    EvidenceRequest(signal="commits_since", params={"days": 30}),
    EvidenceRequest(signal="commits_since", params={"days": 5, "path": "README.md"}),
    EvidenceRequest(signal="head", params={}),
    EvidenceRequest(signal="file_count", params={"pattern": "no such parameter"}),
]


@pytest.fixture
def history(git_repo: GitRepo) -> GitRepo:
    """Files added, changed, deleted and renamed, links in and out of the tree, a binary and a too large file,
    a merged branch, an empty commit and a commit dated before its parent."""
    r = git_repo
    day = 0

    def commit(message: str, days: float = 1) -> None:
        nonlocal day
        day += days
        r.commit(message, when=T0 + timedelta(days=day))

    r.write("README.md", "x readme\n")
    r.write("src/a.py", "# TODO one\n# TODO two\n")
    r.write("src/b.py", "x = 1\n")
    r.write("tests/test_a.py", "def test_restart():\n    pass\n")
    r.write("data.bin", b"x\0binary")
    r.write("big.py", "# TODO\n" * 100)
    r.symlink("docs/readme.md", "../README.md")
    r.symlink("out.py", "../../etc/passwd")
    commit("one")
    r.write("src/a.py", "# TODO one\n")
    r.remove("src/b.py")
    r.rename("tests/test_a.py", "tests/unit/test_a.py")
    commit("change, delete, rename")
    r.write("README.md", "x readme, changed\n")  # a new blob under the same path
    commit("readme")
    commit("empty")
    r.git("checkout", "-q", "-b", "side")
    r.write("src/c.py", "# TODO side\n")
    r.write("tests/test_retry.py", "def test_retry():\n    pass\n")
    commit("side", 0.5)
    r.git("checkout", "-q", "main")
    r.write("README.md", "x readme on main\n")
    commit("main moves on", 0.2)
    r.git("merge", "-q", "--no-ff", "--no-edit", "-X", "ours", "side",
          env={"GIT_AUTHOR_DATE": (T0 + timedelta(days=day + 1)).isoformat(),
               "GIT_COMMITTER_DATE": (T0 + timedelta(days=day + 1)).isoformat()})
    day += 1
    r.git("rm", "-q", "docs/readme.md", "out.py")
    for i in range(25):  # more than an answer lists
        r.write(f"src/gen/f{i:02d}.py", f"# TODO {i}\n")
    commit("no links, many files")
    r.write("src/gen/f03.py", "x\n")
    r.write("src/gen/f04.py", b"# TODO\0 now binary")
    r.write("src/gen/f05.py", "# TODO\n" * 60)  # now too large
    r.write("tests/unit/test_a.py", "def test_restart():\n    pass\n\ndef test_retry():\n    pass\n")
    commit("dated before its parent", -3)
    r.remove("README.md")
    commit("readme gone", 5)
    r.write("README.md", "x back\n")
    commit("readme back")
    return r


def source(repo: GitRepo) -> GitSource:
    return GitSource(id="svc", path=str(repo.path), branch="main", max_file_bytes=300)


def dumped(results) -> list[list[dict]]:
    return [[e.model_dump() for e in r.evidence] + [r.fingerprint, r.settings, r.holds_until] for r in results]


def fresh(src: GitSource, commits: list[tuple[str, datetime]], tmp_path: Path):
    return [collect(src, REQUESTS, now=when, cache_dir=tmp_path, commit=sha) for sha, when in commits]


def test_every_commit_of_the_history_reads_as_a_fresh_collection_there(history: GitRepo, tmp_path: Path):
    src = source(history)
    commits = git_history.first_parent_log(src, cache_dir=tmp_path)
    assert len(commits) == 10
    along = list(collect_history(src, REQUESTS, commits, cache_dir=tmp_path))
    assert dumped(along) == dumped(fresh(src, commits, tmp_path))
    # The history did move the answers (so equality means something): README came and went, links went.
    counts = [r.evidence[3].value["count"] for r in along]
    assert counts[0] == 2 and counts[-1] == 27
    assert [r.evidence[0].value["exists"] for r in along][-3:] == [True, False, True]
    assert along[0].evidence[5].value["skipped"] == [{"path": "big.py", "reason": "too_large"},
                                                      {"path": "out.py", "reason": "symlink_outside"}]


def test_commits_skipped_out_of_order_and_later_than_now_read_the_same(history: GitRepo, tmp_path: Path):
    src = source(history)
    log = git_history.first_parent_log(src, cache_dir=tmp_path)
    side = history.git("rev-parse", "side")
    # Some commits left out, one off the first-parent line, one twice, read at other times than their own.
    commits = [log[1], log[4], (side, log[5][1]), log[6], log[6], log[2], (log[9][0], log[9][1] + timedelta(days=40))]
    along = list(collect_history(src, REQUESTS, commits, cache_dir=tmp_path))
    assert dumped(along) == dumped(fresh(src, commits, tmp_path))


def test_a_commit_that_cannot_be_read_fails_as_the_collector_fails_it(history: GitRepo, tmp_path: Path):
    src = source(history)
    log = git_history.first_parent_log(src, cache_dir=tmp_path)
    commits = [log[0], ("0" * 40, log[1][1]), log[2]]
    along = list(collect_history(src, REQUESTS, commits, cache_dir=tmp_path))
    assert along[1].error is not None
    assert dumped(along) == dumped(fresh(src, commits, tmp_path))


def test_each_blob_is_read_once_along_the_history(history: GitRepo, tmp_path: Path):
    src = source(history)
    log = git_history.first_parent_log(src, cache_dir=tmp_path)
    walker = Walker(Repository(src, tmp_path, sync=False), src, REQUESTS, log)
    try:
        for sha, when in log:
            walker.result(sha, when)
    finally:
        walker.repo.close()
    assert walker.blobs.reads and set(walker.blobs.reads.values()) == {1}


def test_backfilled_snapshots_hold_what_a_fresh_collection_at_each_commit_scores(history: GitRepo, tmp_path: Path):
    fresh_within = {"transform": {"fresh_within_days": [1, 30]}}
    checks = [{"source": "repo", **r.params, "signal": r.signal, **(fresh_within if r.signal in ("file_age", "head") else {})}
              for r in REQUESTS[:-1]]
    body = {"store": str(tmp_path / "pw.db"), "projects": [{
        "id": "svc", "sources": [{"id": "repo", "kind": "git", "path": str(history.path), "branch": "main",
                                  "max_file_bytes": 300}],
        "pillars": [{"id": "all", "title": "All", "criteria": [
            {"id": f"c{i}", "title": f"check {i}", "checks": [check]} for i, check in enumerate(checks)]}]}]}
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    config = load_config(tmp_path / "pw.yaml")
    project = config.projects[0]
    store = Store.open(tmp_path / "pw.db")
    try:
        assert backfill(store, config, project, commits=100).added == 10
        stored = [store.get(s.id) for s in store.history("svc")]  # type: ignore[arg-type]
    finally:
        store.close()
    requests = requests_by_source(project)["repo"]
    src = source(history).model_copy(update={"id": "repo"})
    for snapshot in stored:
        sha = snapshot.sources[0].fingerprint
        assert sha is not None
        fresh = collect(src, requests, now=snapshot.taken_at, cache_dir=tmp_path, commit=sha)
        expected = score_project(project, [fresh], previous=None, now=snapshot.taken_at)
        got = [c.model_dump(mode="json") for c in snapshot.pillars[0].criteria]
        want = [c.model_dump(mode="json") for c in expected.pillars[0].criteria]
        assert got == want
