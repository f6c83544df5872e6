"""Running git safely: which URLs may reach it, its environment, its commands, ref files, and mirrors of remote
repositories.

Nothing here knows about sources or evidence; :mod:`collectors.gitrepo` opens
repositories with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import select
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from git import Git
from git.exc import UnsafeProtocolError

from collectors.evidence import ErrorKind, SourceFault
from collectors.models.git import SCHEMES, url_problem
from collectors.secrets import strip_credentials

__all__ = ["SCHEMES", "blobs", "command", "decode", "environment", "fault", "mirror", "read_ref", "records", "run",
           "run_status", "unreadable", "url_problem"]

_READ_CHUNK = 1 << 20  # bytes read at a time from git's answers to `cat-file --batch`
_BATCH_BYTES = 64 << 20  # blob bytes one `cat-file --batch` answers at most (unless one blob is larger): its file's size


def environment() -> dict[str, str]:
    """The environment git runs in."""
    # Never prompt (a daemon has no terminal), only the transports we allow, and
    # paths are literal paths, not pathspec magic.
    # Messages in English (they are parsed), as GitPython runs git.
    env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C",
           "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": ":".join(SCHEMES), "GIT_LITERAL_PATHSPECS": "1"}
    if "GIT_SSH_COMMAND" not in os.environ and "GIT_SSH" not in os.environ:
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    return env


def command(*args: str) -> list[str]:
    """The argument vector of ``git args...``, with the git GitPython would run."""
    return [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args]


def run_status(cwd: str | os.PathLike[str], *args: str, timeout: float) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``git args...`` in `cwd`, killed after `timeout` seconds."""
    # subprocess, not GitPython's execute: its watchdog thread per command cost
    # more than the command itself for most calls (see docs/BENCHMARKS.md). In a
    # session of its own, git and its helpers (ssh, upload-pack) die together on a timeout.
    deadline = time.monotonic() + timeout
    with subprocess.Popen(command(*args), cwd=cwd, env=environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        # Not communicate(timeout=...): its wait for the exit sleeps 1, 2, 4... ms between looks, which cost an
        # unchanged source's re-collection as much as everything else beyond its fetch (docs/BENCHMARKS.md).
        output: dict[int, list[bytes]] = {proc.stdout.fileno(): [], proc.stderr.fileno(): []}
        poller, open_pipes = select.poll(), set(output)  # poll: no descriptor of its own to make and close, as epoll
        for fd in open_pipes:
            poller.register(fd, select.POLLIN)
        while open_pipes and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    output[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    open_pipes.discard(fd)
        if open_pipes or not _exited(proc, deadline - time.monotonic()):  # open pipes: the deadline came first
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return -signal.SIGKILL, "", f"Timeout: git {args[-1] if args else ''} did not complete in {timeout:g} secs."
        out, err = b"".join(output[proc.stdout.fileno()]), b"".join(output[proc.stderr.fileno()])
    return proc.returncode, decode(out), decode(err)


def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether `proc` ended (and was reaped) within `timeout` seconds, told by a pidfd rather than by polling."""
    if proc.returncode is not None:
        return True
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3 or later: Popen's own wait, which polls
        try:
            proc.wait(max(timeout, 0))
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(max(timeout, 0) * 1000):
            return False
    finally:
        os.close(pidfd)
    proc.wait()
    return True


def decode(data: bytes) -> str:
    """Output as GitPython gave it: decoded, undecodable bytes kept as surrogates, one final newline dropped."""
    text = data.decode("utf-8", errors="surrogateescape")
    return text[:-1] if text.endswith("\n") else text


def fault(status: int, err: str, what: str, timeout: float, kind: ErrorKind = "malformed") -> SourceFault:
    """The fault for a failed git command, from its stderr."""
    if err.startswith("Timeout:"):  # killed by run_status's timeout
        return SourceFault("timeout", f"{what}: timed out after {timeout:g}s", retryable=True)
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    # clone prints "Cloning into ..." first; the reason is the fatal/error line.
    line = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else "")
    message = strip_credentials(f"{what}: {line or f'git exited with {status}'}")
    return SourceFault(kind, message, retryable=kind == "unreachable")


def run(cwd: str | os.PathLike[str], *args: str, timeout: float, what: str, kind: ErrorKind = "malformed",
        limit: float | None = None) -> str:
    """git's output; `timeout` is what is left of the collection's `limit` (named in a timeout's message)."""
    status, out, err = run_status(cwd, *args, timeout=timeout)
    if status != 0:
        raise fault(status, err, what, timeout if limit is None else limit, kind)
    return out


def records(cwd: str, *args: str, cap: int, max_bytes: int, remaining: Callable[[], float], what: str,
            limit: float) -> list[str]:
    """The NUL-terminated records ``git args...`` prints, read as they come.

    More than `cap` records or `max_bytes` bytes is ``too_large``; `remaining()`
    gives the seconds left (and raises past the deadline).
    """
    records: list[str] = []
    pending, size = b"", 0
    with subprocess.Popen(command(*args), cwd=cwd, env=environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True) as proc, \
            selectors.DefaultSelector() as selector:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while True:
                if not selector.select(remaining()):
                    remaining()  # raises, unless the deadline was not quite reached
                    continue
                chunk = os.read(proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                *done, pending = (pending + chunk).split(b"\0")
                if done:  # decoded at once, each record then as decode() leaves it
                    records += (r[:-1] if r.endswith("\n") else r
                                for r in b"\0".join(done).decode("utf-8", errors="surrogateescape").split("\0"))
                if len(records) > cap or size > max_bytes:
                    raise SourceFault("too_large", f"{what}: the tree has more than {cap} entries"
                                      f" or {max_bytes} bytes of names (max_tree_entries)")
            err = proc.stderr.read()  # git's messages are short: they wait in the pipe until stdout ends
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        status = proc.wait()
    if status != 0:
        raise fault(status, decode(err), what, limit)
    return records


def blobs(cwd: str, *args: str, ids: Sequence[str], sizes: Sequence[int],
          remaining: Callable[[], float]) -> Iterator[bytes | None]:
    """The content of each object in `ids` (of the given `sizes`, -1 when unknown), in their order (None: git has
    no such object), from ``git args... cat-file --batch --buffer``: one process, or one per ``_BATCH_BYTES``.

    git reads the ids from a file and writes its answers to another, which is
    then read in large chunks: through pipes, the kernel's wake-ups and small
    reads cost this process more CPU than splitting the answers does. Both
    files are unnamed temporary files, gone when closed. `remaining()` gives the
    seconds left (and raises past the deadline). When git stops before
    answering every id (a corrupt object), the iterator ends early: the caller
    names the first id left unanswered.
    """
    start = 0
    while start < len(ids):
        end, size = start + 1, max(sizes[start], 0)
        while end < len(ids) and size + max(sizes[end], 0) <= _BATCH_BYTES:
            size += max(sizes[end], 0)
            end += 1
        answered = 0
        for data in _batch(cwd, args, ids[start:end], remaining):
            answered += 1
            yield data
        if answered < end - start:
            return  # git stopped early
        start = end


def _batch(cwd: str, args: tuple[str, ...], ids: Sequence[str], remaining: Callable[[], float]) -> Iterator[bytes | None]:
    """One ``cat-file --batch`` over `ids` (see :func:`blobs`)."""
    with tempfile.TemporaryFile() as asked, tempfile.TemporaryFile(buffering=_READ_CHUNK) as answers:
        asked.write("".join(f"{i}\n" for i in ids).encode())
        asked.seek(0)
        # git's stderr, a pipe, ends when git does: waiting on it needs no polling (Popen.wait with a timeout sleeps).
        with subprocess.Popen(command(*args, "cat-file", "--batch", "--buffer"), cwd=cwd, env=environment(),
                              stdin=asked, stdout=answers, stderr=subprocess.PIPE, start_new_session=True) as proc, \
                selectors.DefaultSelector() as selector:
            assert proc.stderr is not None
            try:
                selector.register(proc.stderr, selectors.EVENT_READ)
                while not selector.select(remaining()) or os.read(proc.stderr.fileno(), 1 << 16):
                    pass  # remaining() raises once the deadline has passed; git's messages are dropped
            finally:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        answers.seek(0)
        for _ in ids:
            header = answers.readline()
            if not header.endswith(b"\n"):
                return  # git stopped before answering every id
            parts = header.split()
            if len(parts) != 3:  # "<id> missing"
                yield None
                continue
            size = int(parts[2])
            data = answers.read(size)
            if len(data) != size or answers.read(1) != b"\n":
                return
            yield data


# Where git looks for a ref named by a short name, in its order (`git help revisions`).
_REF_RULES = ("%s", "refs/%s", "refs/tags/%s", "refs/heads/%s", "refs/remotes/%s", "refs/remotes/%s/HEAD")
_REF_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")
_SHA = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_REF_HOPS = 5


def read_ref(git_dir: Path, common: Path, rev: str) -> str | None:
    """The SHA the ref `rev` points at, read from the ref files in git's order, without running git.

    `git_dir` holds HEAD and its kind, `common` the shared refs/ (they differ
    in a worktree). None when `rev` is not a plain ref name or names no ref
    that could be read.
    """
    if not _REF_NAME.match(rev) or ".." in rev or "//" in rev or rev.endswith((".lock", "/")):
        return None
    packed: dict[str, str] | None = None
    shared, own = os.fspath(common), os.fspath(git_dir)  # plain strings: pathlib cost more than the reads
    for form in _REF_RULES:
        name = form % rev
        for _ in range(_REF_HOPS):  # symbolic refs (HEAD -> refs/heads/main), a few deep at most
            try:  # refs/ is shared by worktrees; HEAD and its kind belong to each
                with open(os.path.join(shared if name.startswith("refs/") else own, name)) as ref:
                    text = ref.read().strip()
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


def unreadable(path: Path) -> Path | None:
    """The first folder of a repository at `path` this process may not read, if any."""
    for folder in (path, path / ".git", path / ".git" / "objects", path / "objects"):  # a work tree, or a bare repository
        try:
            if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
                return folder
        except PermissionError:
            return folder
    return None


def mirror(url: str, cache_dir: Path, *, sync: bool, timeout: float, where: str, limit: float) -> Path:
    """The bare mirror of `url` in `cache_dir`: cloned on first use, fetched when `sync`, within `timeout` seconds.

    `where` names the repository in messages; `limit` is the collection's own
    time limit, named in a timeout.
    """
    cache_dir = cache_dir.resolve()  # git runs in other folders: no relative paths
    try:
        Git.check_unsafe_protocols(url)  # GitPython's own guard, kept on
    except UnsafeProtocolError as exc:
        raise SourceFault("unsafe", strip_credentials(f"unsafe git URL: {exc}")) from None
    dest = cache_dir / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".git")
    if dest.exists():
        if sync:
            # An explicit --git-dir: a damaged mirror must fail, not let git find an enclosing repository.
            run(dest, f"--git-dir={dest}", "fetch", "--prune", "origin", timeout=timeout, what=f"fetch {where}",
                kind="unreachable", limit=limit)
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Clone beside the target and rename, so an interrupted clone never looks like a mirror.
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=cache_dir))
    try:
        run(cache_dir, "clone", "--mirror", "--", url, str(tmp), timeout=timeout, what=f"clone {where}",
            kind="unreachable", limit=limit)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.exists():  # otherwise a concurrent clone won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
