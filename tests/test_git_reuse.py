"""An unchanged git source is not read again: its previous evidence is reused, brought up to date for the new time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from collectors import gitrepo
from collectors.evidence import EvidenceRequest
from collectors.git import GitSource, collect
from daemon.config.loading import load_config
from daemon.run.runner import run_projects
from daemon.store import Store
from tests.support.git import GitRepo

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LATER = T0 + timedelta(days=3, seconds=17, microseconds=250)

REQUESTS = [
    EvidenceRequest(signal="file_exists", params={"path": "README.md"}),
    EvidenceRequest(signal="file_count", params={"glob": "src/**/*.py"}),
    EvidenceRequest(signal="content_match", params={"glob": "**/*.py", "regex": "TODO"}),
    EvidenceRequest(signal="file_age", params={"path": "README.md"}),
    EvidenceRequest(signal="file_age", params={"path": "never.txt"}),
    EvidenceRequest(signal="commits_since", params={"days": 2.0}),
    EvidenceRequest(signal="head", params={}),
]


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write("README.md", "# svc\n")
    git_repo.write("src/a.py", "# TODO\n")
    git_repo.commit("one", when=T0 - timedelta(days=10))
    git_repo.write("src/big.py", "# TODO\n" * 100)
    git_repo.commit("two", when=T0 - timedelta(days=1, seconds=3))
    return git_repo


def source(repo: GitRepo, **kw: object) -> GitSource:
    return GitSource(id="svc", path=str(repo.path), **kw)


def dumps(result) -> list[dict]:
    return [e.model_dump() for e in result.evidence]


def test_unchanged_branch_reuses_evidence_without_walking_the_tree(repo: GitRepo, tmp_path: Path, monkeypatch) -> None:
    first = collect(source(repo), REQUESTS, now=T0, cache_dir=tmp_path)
    fresh = collect(source(repo), REQUESTS, now=LATER, cache_dir=tmp_path)

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("the tree was read again")

    monkeypatch.setattr(gitrepo.Repository, "ls_tree", refuse)
    monkeypatch.setattr(gitrepo.Repository, "resolve", refuse)
    monkeypatch.setattr(gitrepo.Repository, "blob", refuse)
    again = collect(source(repo), REQUESTS, now=LATER, cache_dir=tmp_path, previous=first)
    assert again.fingerprint == first.fingerprint
    # The same answers as a full read at the same moment, to the last bit (ages and windows included).
    assert dumps(again) == dumps(fresh)
    assert all(e.observed_at == LATER for e in again.evidence)


def test_moved_branch_is_read_again(repo: GitRepo, tmp_path: Path) -> None:
    first = collect(source(repo), REQUESTS, now=T0, cache_dir=tmp_path)
    repo.write("src/b.py", "x = 1  # TODO\n")
    repo.commit("three", when=T0 + timedelta(hours=1))
    again = collect(source(repo), REQUESTS, now=LATER, cache_dir=tmp_path, previous=first)
    assert again.fingerprint != first.fingerprint
    assert dumps(again) == dumps(collect(source(repo), REQUESTS, now=LATER, cache_dir=tmp_path))
    assert again.evidence[1].value["count"] == 3


def test_other_settings_read_the_tree_again(repo: GitRepo, tmp_path: Path) -> None:
    first = collect(source(repo), REQUESTS, now=T0, cache_dir=tmp_path)
    small = source(repo, max_file_bytes=100)  # src/big.py is now too large to read
    again = collect(small, REQUESTS, now=LATER, cache_dir=tmp_path, previous=first)
    assert dumps(again) == dumps(collect(small, REQUESTS, now=LATER, cache_dir=tmp_path))
    assert again.evidence[2].value["skipped"] == [{"path": "src/big.py", "reason": "too_large"}]


def test_failed_or_foreign_previous_results_are_not_reused(repo: GitRepo, tmp_path: Path) -> None:
    missing = collect(GitSource(id="svc", path=str(tmp_path / "nowhere")), REQUESTS, now=T0, cache_dir=tmp_path)
    assert missing.error is not None
    fresh = collect(source(repo), REQUESTS, now=LATER, cache_dir=tmp_path)
    assert dumps(collect(source(repo), REQUESTS, now=LATER, cache_dir=tmp_path, previous=missing)) == dumps(fresh)
    # A result claiming this commit but read for another source id is not this source's.
    other = collect(GitSource(id="other", path=str(repo.path)), REQUESTS, now=T0, cache_dir=tmp_path)
    assert dumps(collect(source(repo), REQUESTS, now=LATER, cache_dir=tmp_path, previous=other)) == dumps(fresh)


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "main..other", "-x", "main@{1}", "HEAD~1", "a//b", "x.lock"])
def test_peek_reads_only_plain_ref_names(repo: GitRepo, tmp_path: Path, name: str) -> None:
    opened = gitrepo.Repository(source(repo), tmp_path, sync=False)
    try:
        assert opened.peek(name) is None
        assert opened.peek("main") == opened.peek("HEAD") == opened.peek("refs/heads/main") == repo.git("rev-parse", "main")
    finally:
        opened.close()


def test_collect_command_hands_the_previous_result_to_the_collector(repo: GitRepo, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "store": "pw.db", "projects": [{
        "id": "svc", "sources": [{"id": "repo", "kind": "git", "path": str(repo.path)}],
        "pillars": [{"id": "p", "title": "P", "criteria": [
            {"id": "readme", "title": "README", "checks": [{"source": "repo", "signal": "file_exists", "path": "README.md"}]},
            {"id": "age", "title": "Age", "checks": [{"source": "repo", "signal": "file_age", "path": "README.md",
                                                      "transform": {"fresh_within_days": [5, 50]}}]},
        ]}]}]}))
    config = load_config(path)
    with Store.open(config.store_path) as store:
        (first,) = run_projects(config, config.projects, store=store, now=T0)
        monkeypatch.setattr(gitrepo.Repository, "ls_tree", lambda *a, **k: (_ for _ in ()).throw(AssertionError("tree read")))
        (second,) = run_projects(config, config.projects, store=store, now=LATER)
    assert second.pillars[0].criteria[0].score == 1.0
    assert second.pillars[0].criteria[1].score < first.pillars[0].criteria[1].score  # the README aged three days


def test_peek_reads_packed_refs_and_symbolic_refs_as_git_does(repo: GitRepo, tmp_path: Path) -> None:
    repo.git("tag", "v1")
    repo.git("pack-refs", "--all")
    repo.git("symbolic-ref", "refs/heads/alias", "refs/heads/main")
    opened = gitrepo.Repository(source(repo), tmp_path, sync=False)
    try:
        sha = repo.git("rev-parse", "main")
        assert [opened.peek(n) for n in ("main", "HEAD", "alias", "v1", "refs/tags/v1")] == [sha] * 5
        assert opened.peek("no-such-branch") is None
    finally:
        opened.close()


def test_commits_since_is_reused_until_its_count_can_change(git_repo: GitRepo, tmp_path: Path) -> None:
    """The window slides with the clock: the count holds until its oldest commit leaves or a later-dated one enters."""
    git_repo.write("a.txt", "1\n")
    git_repo.commit("old", when=T0 - timedelta(days=5))
    git_repo.write("a.txt", "2\n")
    git_repo.commit("recent", when=T0 - timedelta(days=1))
    git_repo.write("a.txt", "3\n")
    git_repo.commit("dated in the future", when=T0 + timedelta(hours=6))  # a skewed clock
    src = GitSource(id="svc", path=str(git_repo.path))
    window = [EvidenceRequest(signal="commits_since", params={"days": 2.0})]
    key = 'svc:commits_since:{"days":2.0}'

    first = collect(src, window, now=T0, cache_dir=tmp_path)
    assert first.evidence[0].value == {"count": 1}
    assert first.holds_until == {key: T0 + timedelta(hours=6)}  # the future-dated commit enters first

    # A forged count shows which answers were reused and which asked git again.
    forged = first.model_copy(update={"evidence": [first.evidence[0].model_copy(update={"value": {"count": 99}})]})
    before = collect(src, window, now=T0 + timedelta(hours=5, minutes=59), cache_dir=tmp_path, previous=forged)
    assert before.evidence[0].value == {"count": 99} and before.holds_until == first.holds_until
    after = collect(src, window, now=T0 + timedelta(hours=6), cache_dir=tmp_path, previous=forged)
    assert after.evidence[0].value == {"count": 2}
    assert after.holds_until == {key: T0 + timedelta(days=1)}  # when "recent" leaves the two days

    # Reused along a chain of collections, every answer equals a fresh read at the same moment.
    previous = first
    for hours in range(0, 24 * 4, 5):
        now = T0 + timedelta(hours=hours, seconds=1)
        chained = collect(src, window, now=now, cache_dir=tmp_path, previous=previous)
        fresh = collect(src, window, now=now, cache_dir=tmp_path)
        assert chained.evidence[0].value == fresh.evidence[0].value, now
        previous = chained
    assert previous.evidence[0].value == {"count": 0} and previous.holds_until == {key: None}  # holds for good now
