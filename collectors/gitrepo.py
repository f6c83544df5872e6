"""A git repository read one commit at a time: the git source, an opened repository, a commit's tree, its files.

Everything is read from commit objects (trees and blobs), never from a
working tree. :class:`Tree` is the one way to get a commit's files (in-tree
symlinks followed, links leaving the repository set apart);
:func:`read_text`, :func:`read_bytes` and :func:`list_files` read single
files for the document, JUnit and history readers. Faults are
:class:`~collectors.evidence.SourceFault`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import posixpath
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from git import Repo
from git.exc import GitCommandError, GitError, InvalidGitRepositoryError, NoSuchPathError, ODBError

from collectors import gitcommand
from collectors.evidence import SourceFault
from collectors.globs import GLOB_FLAGS, glob_matcher
from collectors.models.git import GitSource, repo_path, url_problem
from collectors.secrets import strip_credentials

__all__ = ["BINARY_PROBE", "FAULTS", "GLOB_FLAGS", "LINK_MODE", "Deadline", "Entry", "GitSource", "Repository", "Tree",
           "as_fault", "list_files", "location", "open_at", "read_bytes", "read_text", "repo_path"]

LINK_MODE = "120000"
BINARY_PROBE = 8000  # git's own heuristic: a NUL byte in the first 8000 bytes
_LINK_HOPS = 8
# The bytes a tree listing may take per allowed entry: long names cannot lift the memory bound.
_ENTRY_BYTES = 512


def location(source: GitSource) -> str:
    """The repository as messages name it: its URL without credentials, or its path."""
    return strip_credentials(source.url) if source.url else str(source.path)


class Entry(NamedTuple):
    """A blob of a tree: its mode, object id and size."""

    mode: str
    sha: str
    size: int  # -1 when git cannot read the blob (corrupt)


@dataclass(frozen=True)
class Deadline:
    """When a collection must be done (monotonic clock), and the limit that set it, named in a timeout."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)


class Repository:
    """An opened repository and what every git call on it needs.

    Every git call, blob read and tree listing shares one deadline:
    ``timeout_seconds`` bounds the whole collection, not each command.
    """

    def __init__(self, source: GitSource, cache_dir: Path | None, *, sync: bool, deadline: Deadline | None = None):
        problem = url_problem(source.url) if source.url else None
        if problem:  # the model checks too, but model_construct skips validation
            raise SourceFault("unsafe", problem)
        self.deadline = Deadline.after(source.timeout_seconds) if deadline is None else deadline
        self.source, self.where, self.timeout = source, location(source), self.deadline.seconds
        if not source.url:
            path = Path(str(source.path))
        elif cache_dir is None:
            raise SourceFault("unsupported", f"{self.where}: a repository by URL needs a cache folder for its mirror")
        else:
            path = gitcommand.mirror(source.url, cache_dir, sync=sync, timeout=self.remaining(), where=self.where,
                                     limit=source.timeout_seconds)
        if not path.exists():
            raise SourceFault("not_found", f"repository not found: {path}")
        # Neither GitPython nor git tells a folder it may not read from one that holds no repository.
        denied = gitcommand.unreadable(path)
        if denied is not None:
            raise SourceFault("unreachable", f"cannot read repository {path}: permission denied on {denied}",
                              retryable=True)
        self._repo: Repo | None = None
        self._path = path
        if source.url:
            # Our own bare mirror: opened by GitPython only when a blob is read. Opening it (reading
            # its configuration) cost as much as the rest of re-collecting an unchanged source.
            if not ((path / "HEAD").is_file() and (path / "objects").is_dir()):
                raise SourceFault("malformed", f"not a git repository: {path}")
            self.cwd, self._git_dir, self._common_dir = str(path), path, path
        else:
            repo = self.repo
            self.cwd, self._git_dir, self._common_dir = repo.working_dir, Path(repo.git_dir), Path(repo.common_dir)
        # Name the repository explicitly: a GIT_DIR in the environment must not redirect us.
        self.git_dir = f"--git-dir={self._git_dir}"

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            try:
                self._repo = Repo(self._path)
            except (InvalidGitRepositoryError, NoSuchPathError):
                raise SourceFault("malformed", f"not a git repository: {self._path}") from None
        return self._repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()  # ends GitPython's persistent cat-file processes

    def remaining(self) -> float:
        """Seconds left before the deadline; past it, the collection fails with a timeout."""
        left = self.deadline.at - time.monotonic()
        if left <= 0:
            raise SourceFault("timeout", f"{self.where}: timed out after {self.timeout:g}s", retryable=True)
        return left

    def run(self, *args: str) -> str:
        return gitcommand.run(self.cwd, self.git_dir, *args, timeout=self.remaining(), what=self.where, limit=self.timeout)

    def resolve(self, rev: str, what: str = "branch") -> tuple[str, int]:
        """(commit SHA, commit time) of `rev` (a ref read by :meth:`peek` needs no rev-parse); a corrupt commit is
        malformed, not missing."""
        peeked = self.peek(rev)
        status, ref, err = (0, peeked, "") if peeked else gitcommand.run_status(
            self.cwd, self.git_dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev, timeout=self.remaining())
        if status == 0 and not peeked and ref.strip() == rev.lower():
            # A full SHA "verifies" without existing; a missing ref target is corruption instead.
            status, _, err = gitcommand.run_status(self.cwd, self.git_dir, "cat-file", "-e", ref.strip(), timeout=self.remaining())
        if status != 0 and not err.strip():  # --quiet: an unknown name fails silently
            raise SourceFault("not_found", f"{what} '{rev}' not found in {self.where}")
        if status != 0:
            raise gitcommand.fault(status, err, self.where, self.timeout)
        sha, stamp = self.run("log", "-1", "--format=%H %ct", ref.strip(), "--").split()
        return sha, int(stamp)

    def peek(self, rev: str) -> str | None:
        """The SHA the ref `rev` points at, read from the ref files without running git (:func:`gitcommand.read_ref`).

        None when it cannot be read that way: ask git (:meth:`resolve`) then.
        """
        return gitcommand.read_ref(self._git_dir, self._common_dir, rev)

    def ls_tree(self, sha: str, *paths: str) -> dict[str, Entry]:
        """Blob entries at `sha`: the whole tree (no paths) or just the given paths.

        A tree of more than ``max_tree_entries`` entries is ``too_large``: a small
        repository can hold a tree of 10**10 files (a "git bomb").
        """
        cap, entries = self.source.max_tree_entries, {}
        for record in gitcommand.records(self.cwd, self.git_dir, "ls-tree", *(() if paths else ("-r",)), "-l", "-z",
                                         "--full-tree", sha, "--", *paths, cap=cap, max_bytes=cap * _ENTRY_BYTES,
                                         remaining=self.remaining, what=self.where, limit=self.timeout):
            meta, _, path = record.partition("\t")
            fields = meta.split()  # mode, kind, object id, size
            if len(fields) == 4 and fields[1] == "blob":  # trees and submodule commits are not files
                entries[path] = Entry(fields[0], fields[2], int(fields[3]) if fields[3].isdigit() else -1)
        return entries

    def blobs(self, wanted: Sequence[tuple[Entry, str]]) -> Iterator[bytes]:
        """The content of each (blob, path) in `wanted`, in order, read through ``git cat-file --batch``
        (:func:`gitcommand.blobs`). A blob git cannot read fails like :meth:`blob`; so does the deadline."""
        self.remaining()
        answers = gitcommand.blobs(self.cwd, self.git_dir, ids=[e.sha for e, _ in wanted],
                                   sizes=[e.size for e, _ in wanted], remaining=self.remaining)
        with contextlib.closing(answers):
            for (entry, path), data in itertools.zip_longest(wanted, answers):
                if data is None:  # git has no such object, or stopped at a corrupt one
                    raise SourceFault("malformed", f"{self.where}: cannot read {path}: object {entry.sha[:12]} is corrupt")
                yield data

    def blob(self, sha: str, path: str) -> bytes:
        self.remaining()
        try:
            return bytes(self.repo.odb.stream(bytes.fromhex(sha)).read())
        except (ValueError, ODBError):  # GitPython reports a missing/corrupt object as ValueError
            raise SourceFault("malformed", f"{self.where}: cannot read {path}: object {sha[:12]} is corrupt") from None


def as_fault(exc: Exception, source: GitSource) -> SourceFault:
    if isinstance(exc, SourceFault):
        return exc
    # GitCommandError's str() is a multi-line report; its stderr holds the reason.
    text = str(exc.stderr).strip().removeprefix("stderr: '") if isinstance(exc, GitCommandError) else str(exc)
    first = (text.strip().rstrip("'").splitlines() or [type(exc).__name__])[0]
    return SourceFault("malformed", strip_credentials(f"{location(source)}: {first}"))


FAULTS = (SourceFault, GitError, ODBError, OSError)


def follow(path: str, lookup: Callable[[str], Entry | None], read: Callable[[str, str], bytes]) -> tuple[str, str]:
    """Follow symlinks from `path` inside the tree: ("ok"|"outside"|"broken", final path).

    Only the tree is consulted, never the filesystem, so a link cannot read outside.
    """
    current, hops = path, 0
    while True:
        entry = lookup(current)
        if entry is None:
            return "broken", current
        if entry.mode != LINK_MODE:
            return "ok", current
        if hops == _LINK_HOPS:
            return "broken", current
        hops += 1
        target = os.fsdecode(read(entry.sha, current))
        current = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
        if target.startswith("/") or current == ".." or current.startswith("../"):
            return "outside", current


class Tree:
    """The files of one commit: in-tree symlinks map to their target blob, links leaving the repository are set apart.

    The tree is listed (and its links followed) once, when first asked.
    """

    def __init__(self, repo: Repository, sha: str):
        self.repo, self.sha = repo, sha

    @functools.cached_property
    def _read(self) -> tuple[dict[str, Entry], frozenset[str]]:
        raw = self.repo.ls_tree(self.sha)
        files = dict(raw)
        outside: set[str] = set()
        for path in [p for p, entry in raw.items() if entry.mode == LINK_MODE]:  # only links are followed
            state, final = follow(path, raw.get, self.repo.blob)
            if state == "outside":
                outside.add(path)
                del files[path]
            elif state == "ok":  # a broken link stays a link entry: content reads skip it
                files[path] = raw[final]
        return files, frozenset(outside)

    @property
    def files(self) -> dict[str, Entry]:
        """Path -> blob of every file, a broken link as its own link entry."""
        return self._read[0]

    @property
    def outside(self) -> frozenset[str]:
        """The links that point outside the repository."""
        return self._read[1]

    @functools.cached_property
    def _sorted(self) -> list[str]:
        return sorted(self.files)

    def glob(self, pattern: str, names: list[str] | None = None) -> list[str]:
        """The paths of `names` (sorted; default: every file's) matching the glob `pattern` or the preset it names
        (`@tests`)."""
        return glob_matcher(pattern).select(self._sorted if names is None else names)


def open_at(source: GitSource, cache_dir: Path | None, commit: str | None,
             deadline: Deadline | None) -> tuple[Repository, str, int]:
    """The opened repository and (SHA, commit time) of `commit` (default: the branch tip)."""
    repo = Repository(source, cache_dir, sync=commit is None, deadline=deadline)
    try:
        if commit is not None and source.url:
            try:  # a commit the mirror has not seen yet: fetch once
                repo.resolve(commit, "commit")
            except SourceFault:
                repo.close()
                repo = Repository(source, cache_dir, sync=True, deadline=repo.deadline)  # one deadline for the read
        return (repo, *repo.resolve(commit or source.branch, "commit" if commit else "branch"))
    except BaseException:
        repo.close()
        raise


def read_text(
    source: GitSource, path: str, *, cache_dir: Path | None, commit: str | None = None, max_bytes: int | None = None,
    strict: bool = False, deadline: Deadline | None = None,
) -> tuple[str, str]:
    """(text, commit SHA) of the file `path` at `commit` (default: the branch tip).

    Bytes that are not UTF-8 become U+FFFD, or with `strict` fail the read
    (malformed), as documents read from disk do. `deadline` (default: the git
    source's ``timeout_seconds`` from now) bounds the read; a caller reading many
    files passes one deadline to all of them.

    A URL source is fetched unless `commit` is already in its mirror. Raises
    SourceFault (not_found, malformed, unsafe, unreachable, timeout).
    """
    data, sha = read_bytes(source, path, cache_dir=cache_dir, commit=commit, max_bytes=max_bytes, deadline=deadline)
    where, name = f"{location(source)} at {sha[:12]}", repo_path(path)
    if b"\0" in data[:BINARY_PROBE]:
        raise SourceFault("malformed", f"{where}: {name} is a binary file")
    try:
        return data.decode("utf-8", errors="strict" if strict else "replace"), sha
    except UnicodeDecodeError as exc:
        raise SourceFault("malformed", f"{where}: {name} is not UTF-8 text (byte {exc.start})") from None


def read_bytes(
    source: GitSource, path: str, *, cache_dir: Path | None, commit: str | None = None, max_bytes: int | None = None,
    deadline: Deadline | None = None,
) -> tuple[bytes, str]:
    """(content, commit SHA) of the file `path` at `commit`, as stored: for formats that name their
    own encoding (XML's byte order mark and declaration), which a text reader would mistake for binary.

    Raises SourceFault like :func:`read_text`.
    """
    limit = source.max_file_bytes if max_bytes is None else max_bytes
    try:
        name = repo_path(path)
    except ValueError as exc:
        raise SourceFault("unsafe", f"{location(source)}: {exc}") from None
    try:
        repo, sha, _ = open_at(source, cache_dir, commit, deadline)
        try:
            where = f"{repo.where} at {sha[:12]}"

            def lookup(candidate: str) -> Entry | None:
                return repo.ls_tree(sha, candidate).get(candidate)

            state, final = follow(name, lookup, repo.blob)
            entry = lookup(final) if state == "ok" else None
            if state == "outside":
                raise SourceFault("unsafe", f"{where}: {name} is a symlink pointing outside the repository")
            if entry is None:
                raise SourceFault("not_found", f"{where}: no file {name}")
            if entry.size > limit:
                raise SourceFault("malformed", f"{where}: {name} is too large ({entry.size} > {limit} bytes)")
            data = repo.blob(entry.sha, name)
        finally:
            repo.close()
    except FAULTS as exc:
        raise as_fault(exc, source) from None
    return data, sha


def list_files(
    source: GitSource, pattern: str, *, cache_dir: Path | None, commit: str | None = None, deadline: Deadline | None = None,
) -> tuple[list[str], str]:
    """(sorted paths matching the glob `pattern`, commit SHA) at `commit` (default: the branch tip).

    Links leaving the repository and broken links are not listed: `read_text`
    could not read them. Raises SourceFault like `read_text`.
    """
    try:
        repo, sha, _ = open_at(source, cache_dir, commit, deadline)
        try:
            tree = Tree(repo, sha)
            return [path for path in tree.glob(pattern) if tree.files[path].mode != LINK_MODE], sha
        finally:
            repo.close()
    except FAULTS as exc:
        raise as_fault(exc, source) from None

