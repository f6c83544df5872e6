"""Git plumbing shared by the git collector and the history readers: safe git
invocations, URL checks, mirrors of remote repositories, one opened repository.

Private to :mod:`collectors`; nothing here knows about evidence requests.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from git import Git, Repo
from git.exc import (
    GitCommandError,
    GitError,
    InvalidGitRepositoryError,
    NoSuchPathError,
    ODBError,
    UnsafeProtocolError,
)

from collectors.evidence import ErrorKind, SourceFault

if TYPE_CHECKING:
    from collectors.git import GitSource

_SCHEMES = ("https", "http", "ssh", "git", "file")
_HELPER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9+.-]*)?::")  # <transport>::<address>
_SCP = re.compile(r"^[A-Za-z0-9._~+-]+@[A-Za-z0-9][A-Za-z0-9.-]*:.+$")
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

def _redact(text: str) -> str:
    """Drop user:password@ from any URL in a message."""
    return _CREDENTIALS.sub("", text)


def _url_problem(url: str) -> str | None:
    """Why `url` must not be handed to git, or None when it is safe."""
    shown = f"unsafe git URL '{_CONTROL.sub('?', _redact(url))}'"  # messages stay one line
    if url.startswith("-"):
        return f"{shown}: looks like a command-line option"
    helper = _HELPER.match(url)
    if helper:
        return f"{shown}: remote helpers ({helper.group(0)}) are refused"
    if _CONTROL.search(url):
        return f"{shown}: contains control characters"
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme.lower() not in _SCHEMES:
            return f"{shown}: scheme '{parts.scheme}' is not one of {', '.join(_SCHEMES)}"
        host = parts.hostname or ""
        if parts.scheme.lower() != "file" and (not host or host.startswith("-")):
            return f"{shown}: missing or invalid host"
        return None
    if _SCP.match(url):
        return None
    return f"{shown}: not a {', '.join(_SCHEMES)} or user@host:path URL"


def _repo_path(value: str) -> str:
    """Normalise a path relative to the repository root; refuse ones leaving it."""
    norm = posixpath.normpath(value.lstrip("/"))
    if norm in (".", "") or norm == ".." or norm.startswith("../"):
        raise ValueError(f"path '{value}' does not name a file inside the repository")
    return norm




# Where git looks for a ref named by a short name, in its order (`git help revisions`).
_REF_RULES = ("%s", "refs/%s", "refs/tags/%s", "refs/heads/%s", "refs/remotes/%s", "refs/remotes/%s/HEAD")
_REF_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")
_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_LINK_HOPS = 5
# The bytes a tree listing may take per allowed entry: long names cannot lift the memory bound.
_ENTRY_BYTES = 512


def _packed_refs(common: Path) -> dict[str, str]:
    """Ref name -> SHA from a repository's packed-refs file (empty when it has none)."""
    try:
        lines = (common / "packed-refs").read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return {}
    refs = {}
    for line in lines:
        if line and line[0] not in "#^":  # comments and peeled tags
            sha, _, name = line.partition(" ")
            refs[name.strip()] = sha
    return refs


class _Entry(NamedTuple):
    mode: str
    sha: str
    size: int  # -1 when git cannot read the blob (corrupt)


def _env() -> dict[str, str]:
    # Never prompt (a daemon has no terminal), only the transports we allow, and
    # paths are literal paths, not pathspec magic.
    # Messages in English (they are parsed), as GitPython runs git.
    env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C",
           "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": ":".join(_SCHEMES), "GIT_LITERAL_PATHSPECS": "1"}
    if "GIT_SSH_COMMAND" not in os.environ and "GIT_SSH" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def _exec(cwd: str | os.PathLike[str], *args: str, timeout: float) -> tuple[int, str, str]:
    # subprocess, not GitPython's execute: its watchdog thread per command cost
    # more than the command itself for most calls (see docs/BENCHMARKS.md). In a
    # session of its own, git and its helpers (ssh, upload-pack) die together on a timeout.
    command = [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args]
    with subprocess.Popen(command, cwd=cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return -signal.SIGKILL, "", f"Timeout: git {args[-1] if args else ''} did not complete in {timeout:g} secs."
    return proc.returncode, _text(out), _text(err)


def _text(data: bytes) -> str:
    """Output as GitPython gave it: decoded, undecodable bytes kept as surrogates, one final newline dropped."""
    text = data.decode("utf-8", errors="surrogateescape")
    return text[:-1] if text.endswith("\n") else text


def _fail(status: int, err: str, what: str, timeout: float, kind: ErrorKind = "malformed") -> SourceFault:
    """The fault for a failed git command, from its stderr."""
    if err.startswith("Timeout:"):  # killed by _exec's timeout
        return SourceFault("timeout", f"{what}: timed out after {timeout:g}s", retryable=True)
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    # clone prints "Cloning into ..." first; the reason is the fatal/error line.
    line = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else "")
    message = _redact(f"{what}: {line or f'git exited with {status}'}")
    return SourceFault(kind, message, retryable=kind == "unreachable")


def _run(cwd: str | os.PathLike[str], *args: str, timeout: float, what: str, kind: ErrorKind = "malformed",
         limit: float | None = None) -> str:
    """git's output; `timeout` is what is left of the collection's `limit` (named in a timeout's message)."""
    status, out, err = _exec(cwd, *args, timeout=timeout)
    if status != 0:
        raise _fail(status, err, what, timeout if limit is None else limit, kind)
    return out


def _where(source: GitSource) -> str:
    return _redact(source.url) if source.url else str(source.path)


def _mirror(source: GitSource, cache_dir: Path, *, sync: bool, timeout: float) -> Path:
    """The bare mirror of a URL source: cloned on first use, fetched when `sync`, within `timeout` seconds."""
    url, cache_dir = str(source.url), cache_dir.resolve()  # git runs in other folders: no relative paths
    try:
        Git.check_unsafe_protocols(url)  # GitPython's own guard, kept on
    except UnsafeProtocolError as exc:
        raise SourceFault("unsafe", _redact(f"unsafe git URL: {exc}")) from None
    dest = cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".git")
    where = _where(source)
    if dest.exists():
        if sync:
            # An explicit --git-dir: a damaged mirror must fail, not let git find an enclosing repository.
            _run(dest, f"--git-dir={dest}", "fetch", "--prune", "origin", timeout=timeout, what=f"fetch {where}",
                 kind="unreachable", limit=source.timeout_seconds)
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Clone beside the target and rename, so an interrupted clone never looks like a mirror.
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=cache_dir))
    try:
        _run(cache_dir, "clone", "--mirror", "--", url, str(tmp), timeout=timeout, what=f"clone {where}",
             kind="unreachable", limit=source.timeout_seconds)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.exists():  # otherwise a concurrent clone won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@dataclass(frozen=True)
class Deadline:
    """When a collection must be done (monotonic clock), and the limit that set it, named in a timeout."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)


class _Repo:
    """An opened repository and what every git call on it needs.

    Every git call, blob read and tree listing shares one deadline:
    ``timeout_seconds`` bounds the whole collection, not each command.
    """

    def __init__(self, source: GitSource, cache_dir: Path, *, sync: bool, deadline: Deadline | None = None):
        problem = _url_problem(source.url) if source.url else None
        if problem:  # the model checks too, but model_construct skips validation
            raise SourceFault("unsafe", problem)
        self.deadline = Deadline.after(source.timeout_seconds) if deadline is None else deadline
        self.source, self.where, self.timeout = source, _where(source), self.deadline.seconds
        path = _mirror(source, cache_dir, sync=sync, timeout=self.remaining()) if source.url else Path(str(source.path))
        if not path.exists():
            raise SourceFault("not_found", f"repository not found: {path}")
        # Neither GitPython nor git tells a folder it may not read from one that holds no repository.
        denied = _unreadable(path)
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
        return _run(self.cwd, self.git_dir, *args, timeout=self.remaining(), what=self.where, limit=self.timeout)

    def resolve(self, rev: str, what: str = "branch") -> tuple[str, int]:
        """(commit SHA, commit time) of `rev`; a corrupt commit is malformed, not missing."""
        status, ref, err = _exec(self.cwd, self.git_dir, "rev-parse", "--verify", "--quiet", "--end-of-options",
                                 rev, timeout=self.remaining())
        if status == 0 and ref.strip() == rev.lower():
            # A full SHA "verifies" without existing; a missing ref target is corruption instead.
            status, _, err = _exec(self.cwd, self.git_dir, "cat-file", "-e", ref.strip(), timeout=self.remaining())
        if status != 0 and not err.strip():  # --quiet: an unknown name fails silently
            raise SourceFault("not_found", f"{what} '{rev}' not found in {self.where}")
        if status != 0:
            raise _fail(status, err, self.where, self.timeout)
        sha, stamp = self.run("log", "-1", "--format=%H %ct", ref.strip(), "--").split()
        return sha, int(stamp)

    def peek(self, rev: str) -> str | None:
        """The SHA the ref `rev` points at, read from the ref files in git's order, without running git.

        None when `rev` is not a plain ref name or names no ref that could be
        read: ask git (:meth:`resolve`) then.
        """
        if not _REF_NAME.match(rev) or ".." in rev or "//" in rev or rev.endswith((".lock", "/")):
            return None
        git_dir, common = self._git_dir, self._common_dir
        packed: dict[str, str] | None = None
        for form in _REF_RULES:
            name = form % rev
            for _ in range(_LINK_HOPS):  # symbolic refs (HEAD -> refs/heads/main), a few deep at most
                try:  # refs/ is shared by worktrees; HEAD and its kind belong to each
                    text = ((common if name.startswith("refs/") else git_dir) / name).read_text().strip()
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    packed = _packed_refs(common) if packed is None else packed
                    text = packed.get(name, "")
                except (OSError, UnicodeDecodeError):
                    return None
                if not text.startswith("ref: "):
                    break
                name = text[5:].strip()
            else:
                return None
            if _SHA.match(text):
                return text
        return None

    def ls_tree(self, sha: str, *paths: str) -> dict[str, _Entry]:
        """Blob entries at `sha`: the whole tree (no paths) or just the given paths.

        A tree of more than ``max_tree_entries`` entries is ``too_large``: a small
        repository can hold a tree of 10**10 files (a "git bomb").
        """
        flags = () if paths else ("-r",)
        entries: dict[str, _Entry] = {}
        for record in self._records("ls-tree", *flags, "-l", "-z", "--full-tree", sha, "--", *paths):
            if record:
                meta, path = record.split("\t", 1)
                mode, kind, obj, size = meta.split()
                if kind == "blob":  # trees and submodule commits are not files
                    entries[path] = _Entry(mode, obj, int(size) if size.isdigit() else -1)
        return entries

    def _records(self, *args: str) -> list[str]:
        """The NUL-terminated records git prints, read as they come, at most ``max_tree_entries`` of them."""
        cap = self.source.max_tree_entries
        max_bytes = cap * _ENTRY_BYTES
        records: list[str] = []
        pending, size = b"", 0
        command = [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", self.git_dir, *args]
        with subprocess.Popen(command, cwd=self.cwd, env=_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True) as proc, \
                selectors.DefaultSelector() as selector:
            assert proc.stdout is not None and proc.stderr is not None
            try:
                selector.register(proc.stdout, selectors.EVENT_READ)
                while True:
                    if not selector.select(self.remaining()):
                        self.remaining()  # raises, unless the deadline was not quite reached
                        continue
                    chunk = os.read(proc.stdout.fileno(), 1 << 16)
                    if not chunk:
                        break
                    size += len(chunk)
                    *done, pending = (pending + chunk).split(b"\0")
                    records += (_text(r) for r in done)
                    if len(records) > cap or size > max_bytes:
                        raise SourceFault("too_large", f"{self.where}: the tree has more than {cap} entries"
                                          f" or {max_bytes} bytes of names (max_tree_entries)")
                err = proc.stderr.read()  # git's messages are short: they wait in the pipe until stdout ends
            finally:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait()
        if status != 0:
            raise _fail(status, _text(err), self.where, self.timeout)
        return records

    def blob(self, sha: str, path: str) -> bytes:
        self.remaining()
        try:
            return bytes(self.repo.odb.stream(bytes.fromhex(sha)).read())
        except (ValueError, ODBError):  # GitPython reports a missing/corrupt object as ValueError
            raise SourceFault("malformed", f"{self.where}: cannot read {path}: object {sha[:12]} is corrupt") from None


def _unreadable(path: Path) -> Path | None:
    """The first folder of a repository at `path` this process may not read, if any."""
    for folder in (path, path / ".git", path / ".git" / "objects", path / "objects"):  # a work tree, or a bare repository
        try:
            if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
                return folder
        except PermissionError:
            return folder
    return None


def _fault(exc: Exception, source: GitSource) -> SourceFault:
    if isinstance(exc, SourceFault):
        return exc
    # GitCommandError's str() is a multi-line report; its stderr holds the reason.
    text = str(exc.stderr).strip().removeprefix("stderr: '") if isinstance(exc, GitCommandError) else str(exc)
    first = (text.strip().rstrip("'").splitlines() or [type(exc).__name__])[0]
    return SourceFault("malformed", _redact(f"{_where(source)}: {first}"))


_FAULTS = (SourceFault, GitError, ODBError, OSError)


