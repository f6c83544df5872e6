"""A git source's trees along its history, kept up to date commit by commit, and its blobs read once.

Backfill reads one source at many commits. Listing every tree and reading
every matching blob again at every commit costs commits × files; here the
first commit's tree is listed once, and each later commit of the first-parent
chain is applied as its difference from its first parent, all of them read
from one ``git log --raw``. Blobs are read once per history and what is asked
of them is kept by blob id (:class:`Blobs`); which files a glob matches is kept
by path (:class:`TreeState`). :mod:`collectors.history_reader` answers the
requests from these.
"""

from __future__ import annotations

import subprocess
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from wcmatch import glob as wcglob

from collectors import gitcommand
from collectors.evidence import SourceFault
from collectors.gitrepo import BINARY_PROBE, GLOB_FLAGS, LINK_MODE, Entry, Repository, follow
from collectors.testcases import expand_glob

__all__ = ["Blobs", "Change", "ChainCommit", "TreeState", "chain", "commit_graph", "sizes"]

_TEXTS_KEPT = 64
_FETCH_BYTES = 64 << 20  # blobs read ahead, at most, per history
_GITLINK = "160000"  # a submodule's commit: not a file, but a change `git log -- path` sees


@dataclass(frozen=True)
class Change:
    """One path changed by a commit against its first parent: its new entry, or None when it was deleted."""

    path: str
    entry: Entry | None
    gitlink: bool = False  # a submodule: touches the path for `git log`, no file of the tree


@dataclass
class ChainCommit:
    """A commit of the first-parent chain: its id, parents, commit time and changes against its first parent."""

    sha: str
    parents: list[str]
    time: int
    changes: list[Change] = field(default_factory=list)


def chain(repo: Repository, first: str, last: str) -> dict[str, ChainCommit]:
    """The commits after `first` up to `last` on `last`'s first-parent line, by id, each with its changes."""
    out = repo.run("log", "--first-parent", "--no-renames", "--raw", "-z", "--no-abbrev", "--diff-merges=first-parent",
                   "--format=%x01%H %P %ct", last, f"^{first}", "--")
    commits: dict[str, ChainCommit] = {}
    for block in out.split("\x01")[1:]:
        header, _, body = block.partition("\0")
        sha, *parents, stamp = header.split()
        commit = ChainCommit(sha, parents, int(stamp))
        fields = body.lstrip("\n").split("\0")
        for meta, path in zip(fields[0::2], fields[1::2]):
            if not meta.startswith(":"):
                continue
            _, new_mode, _, new_sha, status = meta[1:].split(" ")
            if status.startswith("D"):
                commit.changes.append(Change(path, None))
            elif new_mode == _GITLINK:
                commit.changes.append(Change(path, None, gitlink=True))
            else:
                commit.changes.append(Change(path, Entry(new_mode, new_sha, -1)))
        commits[sha] = commit
    # Sizes, as ``ls-tree -l`` has them: one ``cat-file --batch-check`` for every blob the chain adds.
    known = sizes(repo, (c.entry.sha for commit in commits.values() for c in commit.changes if c.entry is not None))
    for commit in commits.values():
        commit.changes = [c if c.entry is None else Change(c.path, c.entry._replace(size=known[c.entry.sha]))
                          for c in commit.changes]
    return commits


def sizes(repo: Repository, ids: Iterable[str]) -> dict[str, int]:
    """Blob id -> size, -1 when git cannot read it, as ``ls-tree -l`` gives them; one ``cat-file --batch-check``."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    out = _batch(repo, "--batch-check=%(objectname) %(objectsize)", wanted)
    found = {}
    for line in out.decode().splitlines():
        sha, _, size = line.partition(" ")
        found[sha] = int(size) if size.isdigit() else -1
    return {sha: found.get(sha, -1) for sha in wanted}


def _batch(repo: Repository, mode: str, ids: list[str]) -> bytes:
    """What ``git cat-file <mode>`` prints for these object ids, within the repository's deadline."""
    try:
        return subprocess.run(gitcommand.command(repo.git_dir, "cat-file", mode), cwd=repo.cwd,
                              env=gitcommand.environment(), input="\n".join(ids).encode() + b"\n", capture_output=True,
                              timeout=repo.remaining(), start_new_session=True, check=False).stdout
    except subprocess.TimeoutExpired:
        raise SourceFault("timeout", f"{repo.where}: timed out after {repo.timeout:g}s", retryable=True) from None


def commit_graph(repo: Repository, tips: Iterable[str], oldest: int) -> dict[str, tuple[int, list[str]]]:
    """Commit -> (commit time, parents) of the commits ``git log --max-age=oldest tips...`` walks to.

    That walk stops at a commit older than `oldest` without going to its
    parents; so a parent missing from the graph is older than `oldest`.
    """
    out = repo.run("log", f"--max-age={oldest}", "--format=%H %ct %P", *sorted(tips), "--")
    graph: dict[str, tuple[int, list[str]]] = {}
    for line in out.splitlines():
        sha, stamp, *parents = line.split()
        graph[sha] = (int(stamp), parents)
    return graph


class Blobs:
    """Blob contents read once per history, and what was asked of each, by blob id."""

    def __init__(self, repo: Repository):
        self.repo = repo
        self._answers: dict[tuple[Any, str], Any] = {}
        self._texts: OrderedDict[str, str | None] = OrderedDict()  # the last blobs read: the next question is often theirs
        self._fetched: dict[str, bytes] = {}
        self.reads: Counter[str] = Counter()  # blob id -> times read from git

    def read(self, sha: str, path: str) -> bytes:
        if sha in self._fetched:
            return self._fetched[sha]
        self.reads[sha] += 1
        return self.repo.blob(sha, path)

    def fetch(self, entries: Iterable[Entry]) -> None:
        """Read these blobs ahead, all in one ``git cat-file --batch`` (up to :data:`_FETCH_BYTES` in all)."""
        wanted, total = [], 0
        for entry in sorted(set(entries)):
            if entry.sha not in self._fetched and entry.size >= 0 and total + entry.size <= _FETCH_BYTES:
                wanted.append(entry.sha)
                total += entry.size
        if not wanted:
            return
        out, at = _batch(self.repo, "--batch", wanted), 0
        while at < len(out):  # "<id> blob <size>\n<content>\n", or "<id> missing\n" (read later, and failed then)
            end = out.find(b"\n", at)
            sha, kind, *size = out[at:end if end >= 0 else len(out)].decode(errors="replace").split(" ")
            if end < 0 or kind != "blob" or not size or not size[0].isdigit():
                if kind == "missing":
                    at = end + 1
                    continue
                return  # not what git prints: what is left is read one blob at a time
            at = end + 1
            length = int(size[0])
            self._fetched[sha] = out[at:at + length]
            self.reads[sha] += 1
            at += length + 1

    def link(self, sha: str, path: str) -> bytes:
        """A symlink's target (a small blob), read once."""
        return self.answer("link", sha, path, lambda _: self.read(sha, path), text=False)

    def text(self, sha: str, path: str) -> str | None:
        """The blob's text (bytes that are not UTF-8 as U+FFFD), or None for a binary file, as the collector reads it."""
        if sha in self._texts:
            self._texts.move_to_end(sha)
            return self._texts[sha]
        data = self.read(sha, path)
        text = None if b"\0" in data[:BINARY_PROBE] else data.decode("utf-8", errors="replace")
        self._texts[sha] = text
        if len(self._texts) > _TEXTS_KEPT:
            self._texts.popitem(last=False)
        return text

    def answer(self, key: Any, sha: str, path: str, work: Callable[[str | None], Any], *, text: bool = True) -> Any:
        """``work(text)`` of blob `sha` for the question `key` (hashable), worked out once per blob."""
        slot = (key, sha)
        if slot not in self._answers:
            self._answers[slot] = work(self.text(sha, path) if text else None)
        return self._answers[slot]


class TreeState:
    """The files of one commit, moved from commit to commit by the changes between them.

    ``raw`` is every blob entry as ``ls-tree -r`` lists it; ``files`` and
    ``outside`` are what :class:`collectors.gitrepo.Tree` makes of them (in-tree
    links followed, links leaving the repository apart). Which paths each glob
    matches is kept per glob and updated by each change.
    """

    def __init__(self, sha: str, raw: dict[str, Entry], read: Callable[[str, str], bytes],
                 verdicts: dict[str, dict[str, bool]] | None = None):
        self.sha, self.raw, self._read_link = sha, raw, read
        self._links = {p for p, e in raw.items() if e.mode == LINK_MODE}
        self._matchers: dict[str, Any] = {}
        self._matched: dict[str, set[str]] = {}
        # glob -> path -> matched, kept across states: the same paths come back commit after commit
        self._verdicts = {} if verdicts is None else verdicts
        self._resolved: tuple[dict[str, Entry], frozenset[str]] | None = None

    @property
    def has_links(self) -> bool:
        return bool(self._links)

    def apply(self, sha: str, changes: list[Change]) -> None:
        """Move to commit `sha`, whose changes against the current commit are `changes`."""
        for change in changes:
            if change.entry is None:
                if self.raw.pop(change.path, None) is not None:
                    self._links.discard(change.path)
                    for matched in self._matched.values():
                        matched.discard(change.path)
                continue
            if change.path not in self.raw:
                for pattern, matched in self._matched.items():
                    if self.matches(pattern, change.path):
                        matched.add(change.path)
            self.raw[change.path] = change.entry
            if change.entry.mode == LINK_MODE:
                self._links.add(change.path)
            else:
                self._links.discard(change.path)
        self.sha, self._resolved = sha, None

    def matches(self, pattern: str, path: str) -> bool:
        """Whether the glob `pattern` (or the preset it names) matches `path`, worked out once per path."""
        verdicts = self._verdicts.setdefault(pattern, {})
        if path not in verdicts:
            if pattern not in self._matchers:
                self._matchers[pattern] = wcglob.compile(expand_glob(pattern), flags=GLOB_FLAGS)
            verdicts[path] = bool(self._matchers[pattern].match(path))
        return verdicts[path]

    def matched(self, pattern: str) -> set[str]:
        """The paths of every entry (files and links leaving the repository) that the glob `pattern` matches."""
        if pattern not in self._matched:
            self._matched[pattern] = {p for p in self.raw if self.matches(pattern, p)}
        return self._matched[pattern]

    def _resolve(self) -> tuple[dict[str, Entry], frozenset[str]]:
        if self._resolved is None:
            if not self._links:
                self._resolved = self.raw, frozenset()
            else:  # as collectors.gitrepo.Tree does
                files: dict[str, Entry] = {}
                outside: set[str] = set()
                for path, entry in self.raw.items():
                    state, final = follow(path, self.raw.get, self._read_link) if path in self._links else ("ok", path)
                    if state == "outside":
                        outside.add(path)
                    else:
                        files[path] = self.raw[final] if state == "ok" else entry
                self._resolved = files, frozenset(outside)
        return self._resolved

    @property
    def files(self) -> dict[str, Entry]:
        return self._resolve()[0]

    @property
    def outside(self) -> frozenset[str]:
        return self._resolve()[1]
