"""A real git repository in a temporary folder, driven by the git CLI."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path


class GitRepo:
    """A real git repository in a temporary folder, driven by the git CLI.

    Commits get explicit author/committer dates so that age and history
    signals are deterministic: ``commit("msg", when=datetime(...))``.
    """

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "Test")
        self.git("config", "user.email", "test@example.invalid")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = {**os.environ, **(env or {})}
        out = subprocess.run(
            ["git", *args], cwd=self.path, check=True, capture_output=True, text=True, env=full_env
        )
        return out.stdout.strip()

    def write(self, rel: str, content: str | bytes) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        return target

    def symlink(self, rel: str, target: str) -> None:
        link = self.path / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", rel)

    def rename(self, old: str, new: str) -> None:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def commit(self, message: str, *, when: datetime | None = None) -> str:
        when = when or datetime.now(timezone.utc)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S%z")
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message, env=env)
        return self.git("rev-parse", "HEAD")


def durability_repo(path: Path) -> GitRepo:
    """A service repository whose one commit holds tests/test_restart.py and tests/test_retry.py."""
    repo = GitRepo(path)
    repo.write("tests/test_restart.py", "def test_restart():\n    pass\n")
    repo.write("tests/test_retry.py", "def test_retry():\n    pass\n")
    repo.commit("tests")
    return repo
