"""Many file ages read from one `git log` equal what `git log -1 -- FILE` says of each file."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from collectors.evidence import EvidenceRequest
from collectors.git import collect
from collectors.gitrepo import GitSource
from tests.support.git import GitRepo

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = START + timedelta(days=100)
NAMES = [f"src/m{i}.py" for i in range(12)] + ["docs/a file.md", "docs/café.md", "notes.txt"]


def _history(path: Path, *, merge: bool) -> GitRepo:
    repo = GitRepo(path)
    for name in NAMES:
        repo.write(name, f"{name}\n")
    repo.commit("all files", when=START)
    for day, name in enumerate(NAMES[::3], start=1):
        repo.write(name, f"{name} changed\n")
        repo.commit(f"change {name}", when=START + timedelta(days=day))
    repo.rename("src/m1.py", "src/renamed.py")
    repo.commit("rename", when=START + timedelta(days=20))
    repo.remove("notes.txt")
    repo.commit("delete", when=START + timedelta(days=21))
    if merge:
        repo.git("checkout", "-q", "-b", "side", "HEAD~3")
        repo.write("src/m2.py", "changed on a side branch\n")
        repo.commit("side", when=START + timedelta(days=22))
        repo.git("checkout", "-q", "-")
        repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side",
                 env={"GIT_AUTHOR_DATE": (START + timedelta(days=23)).isoformat(),
                      "GIT_COMMITTER_DATE": (START + timedelta(days=23)).isoformat()})
    repo.write("src/m4.py", "last change\n")
    repo.commit("last", when=START + timedelta(days=30))
    return repo


@pytest.mark.parametrize("merge", [False, True], ids=["linear", "with-a-merge"])
def test_file_ages_at_once_equal_one_git_log_per_file(tmp_path: Path, merge: bool) -> None:
    repo = _history(tmp_path / "repo", merge=merge)
    asked = [*NAMES, "src/renamed.py", "src", "never.txt"]
    requests = [EvidenceRequest(signal="file_age", params={"path": name}) for name in asked]
    result = collect(GitSource(id="repo", kind="git", path=str(repo.path)), requests, now=NOW,
                     cache_dir=tmp_path / "cache")
    assert result.error is None
    for name, evidence in zip(asked, result.evidence):
        out = repo.git("log", "-1", "--format=%H %ct", "HEAD", "--", name).split()
        expected = {"exists": (repo.path / name).is_file(),
                    "days": (NOW.timestamp() - int(out[1])) / 86400 if out else None,
                    "last_commit": out[0] if out else None}
        assert evidence.value == expected, name
