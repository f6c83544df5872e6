"""A git source's past: its commits, the versions of one file, the last change of a file.

Used by backfill and import; like the collector, it reads commit objects only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from wcmatch import glob as wcglob

from collectors.evidence import SourceFault
from collectors.gitcommand import run_status
from collectors.gitrepo import FAULTS, GLOB_FLAGS, GitSource, Repository, as_fault, location, repo_path
from collectors.testcases import expand_glob

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def first_parent_log(
    source: GitSource, *, cache_dir: Path, since: datetime | None = None, max_count: int | None = None
) -> list[tuple[str, datetime]]:
    """(SHA, commit time) of the commits of `source.branch`, oldest first, following first parents.

    Merged branches' own commits are left out: the branch's history is what it
    looked like after each change landed. Raises SourceFault.
    """
    args = ["rev-list", "--first-parent", "--format=%ct"]
    # The integer forms: git's date parser reads a bare number below 100000000 (1973) as
    # something else, and "@<epoch>" as nothing on the git this runs on. No commit predates
    # 1970, so an earlier date is no lower bound.
    if since is not None and since.timestamp() > 0:
        args.append(f"--max-age={math.ceil(since.timestamp())}")
    if max_count is not None:
        args.append(f"--max-count={max_count}")
    try:
        repo = Repository(source, cache_dir, sync=True)
        try:
            sha, _ = repo.resolve(source.branch)
            out = repo.run(*args, sha, "--")
        finally:
            repo.close()
    except FAULTS as exc:
        raise as_fault(exc, source) from None
    # rev-list prints "commit <sha>" and then the formatted line, newest first.
    lines = [line for line in out.splitlines() if line.strip()]
    commits = [(lines[i].split()[1], datetime.fromtimestamp(int(lines[i + 1]), timezone.utc)) for i in range(0, len(lines) - 1, 2)]
    return commits[::-1]


def commit_before(source: GitSource, moment: datetime, *, cache_dir: Path) -> str | None:
    """The last commit of `source.branch` made at or before `moment`, if any. Raises SourceFault."""
    if moment.timestamp() < 0:
        return None  # no commit predates 1970 (and --min-age=-1 would mean no bound)
    try:
        repo = Repository(source, cache_dir, sync=False)
        try:
            sha, _ = repo.resolve(source.branch)
            # The integer form, as in first_parent_log.
            out = repo.run("rev-list", "--first-parent", "-1", f"--min-age={math.floor(moment.timestamp())}", sha, "--")
        finally:
            repo.close()
    except FAULTS as exc:
        raise as_fault(exc, source) from None
    return out.strip() or None


def change_between(source: GitSource, old: str, new: str, *, cache_dir: Path,
                   path: str | None = None, pattern: str | None = None) -> str | None:
    """The commit after ``old``, up to ``new``, that last changed ``path`` (or a file ``pattern`` matches), if any.

    The newest such commit is the one that left the files as ``new`` has them
    (deleted in B, left alone by C and D: B). Bounded by the source's timeout.
    Raises SourceFault.
    """
    if not (_SHA.fullmatch(old) and _SHA.fullmatch(new)) or (path is None) == (pattern is None):
        return None  # not commit ids (they come from stored evidence): nothing to ask git
    try:
        repo = Repository(source, cache_dir, sync=False)
        try:
            if path is not None:
                return repo.run("log", "-1", "--format=%H", f"{old}..{new}", "--", path).strip() or None
            # Pathspecs are literal here (GIT_LITERAL_PATHSPECS), and git's globs are not the
            # collector's: list what each commit changed and match with the collector's glob.
            out = repo.run("-c", "core.quotePath=false", "log", "--format=%x01%H", "--name-only", "--no-renames",
                           f"{old}..{new}", "--")
        finally:
            repo.close()
    except FAULTS as exc:
        raise as_fault(exc, source) from None
    matcher = wcglob.compile(expand_glob(pattern), flags=GLOB_FLAGS)
    for block in out.split("\x01")[1:]:  # newest first
        sha, *names = block.split("\n")
        if any(matcher.match(name) for name in names if name):
            return sha.strip()
    return None


def blamer(sources: list[GitSource], *, cache_dir: Path) -> Callable[[str, str, str, str, bool], str | None]:
    """:func:`change_between` by source id (``pattern`` a glob or a path), remembered; a source that faulted once is not asked again."""
    by_id = {s.id: s for s in sources}
    known: dict[tuple[str, str, str, str, bool], str | None] = {}
    broken: set[str] = set()

    def blame(source: str, old: str, new: str, pattern: str, is_glob: bool) -> str | None:
        key = (source, old, new, pattern, is_glob)
        if key not in known:
            found = None
            if source in by_id and source not in broken:
                where = {"pattern": pattern} if is_glob else {"path": pattern}
                try:
                    found = change_between(by_id[source], old, new, cache_dir=cache_dir, **where)  # type: ignore[arg-type]
                except SourceFault:
                    broken.add(source)
            known[key] = found
        return known[key]

    return blame


def file_versions(source: GitSource, path: str, *, cache_dir: Path) -> list[tuple[str, datetime]]:
    """(SHA, commit time) of every commit of `source.branch` that changed `path`, oldest first. Raises SourceFault."""
    try:
        name = repo_path(path)
    except ValueError as exc:
        raise SourceFault("unsafe", f"{location(source)}: {exc}") from None
    try:
        repo = Repository(source, cache_dir, sync=True)
        try:
            sha, _ = repo.resolve(source.branch)
            out = repo.run("log", "--format=%H %ct", sha, "--", name)
        finally:
            repo.close()
    except FAULTS as exc:
        raise as_fault(exc, source) from None
    versions = [(sha, datetime.fromtimestamp(int(stamp), timezone.utc)) for sha, stamp in (line.split() for line in out.splitlines() if line.strip())]
    return versions[::-1]


def last_change(file: Path, *, timeout: float = 30) -> tuple[str, datetime] | None:
    """(SHA, commit time) of the last commit that changed a file on this machine, if it is in a repository."""
    folder = file.resolve().parent
    status, top, _ = run_status(folder, "rev-parse", "--show-toplevel", timeout=timeout)
    if status != 0:
        return None
    status, out, _ = run_status(top.strip(), "log", "-1", "--format=%H %ct", "--", str(file.resolve()), timeout=timeout)
    if status != 0 or not out.strip():
        return None
    sha, stamp = out.split()
    return sha, datetime.fromtimestamp(int(stamp), timezone.utc)
