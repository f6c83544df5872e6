"""Git collector: facts read from one commit of a repository.

Everything is read from the commit object (trees and blobs), never from a
working tree, so uncommitted files are invisible and nothing is checked out.
Remote repositories are kept as bare mirrors in a cache folder.
"""

from __future__ import annotations

import math
import os
import posixpath
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from wcmatch import glob

from collectors._gitrepo import _FAULTS, Deadline, _Entry, _fault, _Repo, _repo_path, _url_problem, _where
from collectors.evidence import (
    CollectResult,
    Evidence,
    EvidenceError,
    EvidenceRequest,
    Provenance,
    SourceFault,
    evidence_key,
    failed,
    path_from_text,
    path_text,
)
from collectors.regex import compile_regex, regex_param

_GLOB_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.DOTGLOB
_LIST_LIMIT = 20
_LINK_MODE = "120000"
_LINK_HOPS = 8
_BINARY_PROBE = 8000  # git's own heuristic: a NUL byte in the first 8000 bytes
# Signals answered from the commit's tree and blobs alone: at the same commit, the same answer.
_FROM_TREE = frozenset({"file_exists", "file_count", "content_match"})
_RepoPath = Annotated[str, AfterValidator(_repo_path)]
class GitSource(BaseModel):
    """A git repository: a local path or a remote URL, read at one branch."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["git"] = "git"
    id: str
    url: str | None = None
    path: str | None = None
    branch: str = "HEAD"
    max_file_bytes: int = Field(default=1_000_000, gt=0)
    # Bounds the memory of a tree listing: a few hundred bytes an entry.
    max_tree_entries: int = Field(default=500_000, gt=0)
    timeout_seconds: float = Field(default=120, gt=0)

    @model_validator(mode="after")
    def _one_location(self) -> GitSource:
        if self.url and self.path:
            raise ValueError("give either url or path, not both")
        if not self.url and not self.path:
            raise ValueError("give url or path")
        problem = _url_problem(self.url) if self.url else None
        if problem:
            raise ValueError(problem)
        return self


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_field: ClassVar[str]
    default_transform: ClassVar[str | None]


class FileExists(_Params):
    signal: Literal["file_exists"] = "file_exists"
    path: _RepoPath | None = None
    glob: str | None = Field(default=None, min_length=1)
    default_field, default_transform = "exists", "bool"

    @model_validator(mode="after")
    def _path_or_glob(self) -> FileExists:
        if (self.path is None) == (self.glob is None):
            raise ValueError("give exactly one of path or glob")
        return self


class FileCount(_Params):
    signal: Literal["file_count"] = "file_count"
    glob: str = Field(min_length=1)
    default_field, default_transform = "count", "bool"


class ContentMatch(_Params):
    signal: Literal["content_match"] = "content_match"
    glob: str = Field(min_length=1)
    regex: str
    default_field, default_transform = "matches", "bool"

    _re2 = field_validator("regex")(lambda cls, v: regex_param(v))


class FileAge(_Params):
    signal: Literal["file_age"] = "file_age"
    path: _RepoPath
    default_field, default_transform = "days", None


class CommitsSince(_Params):
    signal: Literal["commits_since"] = "commits_since"
    days: float = Field(gt=0)
    path: _RepoPath | None = None
    default_field, default_transform = "count", "bool"


class Head(_Params):
    signal: Literal["head"] = "head"
    default_field, default_transform = "age_days", None


SIGNALS: dict[str, type[BaseModel]] = {
    m.model_fields["signal"].default: m for m in (FileExists, FileCount, ContentMatch, FileAge, CommitsSince, Head)
}


def _shown(value: dict[str, Any], path: str | None) -> tuple[dict[str, Any], str | None]:
    """A fresh answer with its file names as text (:func:`path_text`): names are bytes, evidence is JSON."""
    if "paths" in value:
        value = {**value, "paths": [path_text(p) for p in value["paths"]]}
    if "skipped" in value:
        value = {**value, "skipped": [{**s, "path": path_text(s["path"])} for s in value["skipped"]]}
    return value, None if path is None else path_text(path)


def _follow(path: str, lookup: Callable[[str], _Entry | None], read: Callable[[str, str], bytes]) -> tuple[str, str]:
    """Follow symlinks from `path` inside the tree: ("ok"|"outside"|"broken", final path).

    Only the tree is consulted, never the filesystem, so a link cannot read outside.
    """
    current, hops = path, 0
    while True:
        entry = lookup(current)
        if entry is None:
            return "broken", current
        if entry.mode != _LINK_MODE:
            return "ok", current
        if hops == _LINK_HOPS:
            return "broken", current
        hops += 1
        target = os.fsdecode(read(entry.sha, current))
        current = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
        if target.startswith("/") or current == ".." or current.startswith("../"):
            return "outside", current


class _Reader:
    """Answers requests against one commit; the tree is walked at most once."""

    def __init__(self, repo: _Repo, sha: str, committed: int | None, now: datetime,
                 held: dict[str, datetime | None] | None = None):
        self.repo, self.sha, self._committed, self.now = repo, sha, committed, now.timestamp()
        self._held = held or {}  # the previous result's holds_until, for this same commit
        self.holds_until: dict[str, datetime | None] = {}

    @property
    def committed(self) -> int:
        """The commit's time (asked of git only when it was not known already)."""
        if self._committed is None:
            self._committed = int(self.repo.run("log", "-1", "--format=%ct", self.sha, "--"))
        return self._committed

    @cached_property
    def _tree(self) -> tuple[dict[str, _Entry], frozenset[str]]:
        """(files, links escaping the repository); in-tree links map to their target blob."""
        raw = self.repo.ls_tree(self.sha)
        files: dict[str, _Entry] = {}
        outside: set[str] = set()
        for path, entry in raw.items():
            state, final = _follow(path, raw.get, self.repo.blob)
            if state == "outside":
                outside.add(path)
            else:  # a broken link stays a link entry: content reads skip it
                files[path] = raw[final] if state == "ok" else entry
        return files, frozenset(outside)

    @cached_property
    def _sorted(self) -> list[str]:
        return sorted(self._tree[0])

    def _glob(self, pattern: str, names: list[str] | None = None) -> list[str]:
        matcher = glob.compile(pattern, flags=_GLOB_FLAGS)
        return [name for name in (self._sorted if names is None else names) if matcher.match(name)]

    def evidence(self, request: EvidenceRequest, observed_at: datetime, known: Evidence | None = None) -> Evidence:
        """One request's answer; ``known`` is the answer read from this same commit before, reused where it can be."""

        def item(value: dict[str, Any] | None, error: EvidenceError | None = None, path: str | None = None) -> Evidence:
            return Evidence(source=self.repo.source.id, signal=request.signal, params=request.params, value=value,
                            error=error, provenance=Provenance(commit=self.sha, path=path), observed_at=observed_at)

        model = SIGNALS.get(request.signal)
        if model is None:
            return item(None, EvidenceError(kind="unsupported", message=f"unknown git signal '{request.signal}'"))
        try:
            params = model.model_validate({"signal": request.signal, **request.params})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "params"
            message = f"invalid params for git signal '{request.signal}': {where}: {first['msg']}"
            return item(None, EvidenceError(kind="malformed", message=message))
        if known is not None and known.value is not None and request.signal in _FROM_TREE:
            return item(known.value, path=known.provenance.path)
        if known is not None and known.value is not None and request.signal == "file_age":
            return item(self._file_age_again(known.value, known.observed_at), path=known.provenance.path)
        if isinstance(params, CommitsSince):
            key = evidence_key(self.repo.source.id, request.signal, request.params)
            if known is not None and known.value is not None and key in self._held:
                until = self._held[key]
                if until is None or self.now < until.timestamp():
                    self.holds_until[key] = until
                    return item(known.value, path=known.provenance.path)
            value, path, self.holds_until[key] = self._commits_since(params)
            value, path = _shown(value, path)
            return item(value, path=path)
        value, path = _shown(*getattr(self, "_" + request.signal)(params))
        return item(value, path=path)

    def _file_exists(self, p: FileExists) -> tuple[dict[str, Any], str | None]:
        name = None if p.path is None else path_from_text(p.path)  # a name as evidence shows it
        if name is not None:
            present = [name] if name in self._tree[0] else []
        else:
            present = self._glob(str(p.glob))
        value = {"exists": bool(present), "count": len(present), "paths": present[:_LIST_LIMIT]}
        return value, present[0] if present else name

    def _file_count(self, p: FileCount) -> tuple[dict[str, Any], str | None]:
        present = self._glob(p.glob)
        return {"count": len(present), "paths": present[:_LIST_LIMIT]}, present[0] if present else None

    def _content_match(self, p: ContentMatch) -> tuple[dict[str, Any], str | None]:
        files, outside = self._tree
        regex = compile_regex(p.regex, multiline=True)
        matched: list[str] = []
        skipped: list[dict[str, str]] = []
        total = 0
        for path in self._glob(p.glob, sorted(set(files) | outside)):
            entry = files.get(path)
            reason = ("symlink_outside" if entry is None else "symlink_broken" if entry.mode == _LINK_MODE
                      else "too_large" if entry.size > self.repo.source.max_file_bytes else None)
            data = b"" if entry is None or reason else self.repo.blob(entry.sha, path)
            if not reason and b"\0" in data[:_BINARY_PROBE]:
                reason = "binary"
            if reason:
                skipped.append({"path": path, "reason": reason})
                continue
            count = sum(1 for _ in regex.finditer(data.decode("utf-8", errors="replace")))
            if count:
                matched.append(path)
                total += count
        value = {"files": len(matched), "matches": total, "paths": matched[:_LIST_LIMIT],
                 "skipped": skipped[:_LIST_LIMIT]}
        return value, matched[0] if matched else None

    def _file_age(self, p: FileAge) -> tuple[dict[str, Any], str | None]:
        name = path_from_text(p.path)
        out = self.repo.run("log", "-1", "--format=%H %ct", self.sha, "--", name).split()
        days = (self.now - int(out[1])) / 86400 if out else None
        return {"exists": name in self._tree[0], "days": days, "last_commit": out[0] if out else None}, name

    def _file_age_again(self, value: dict[str, Any], observed_at: datetime) -> dict[str, Any]:
        """A file age read at this commit before, at ``observed_at``, aged to now without asking git again."""
        if value["days"] is None:
            return value
        # Commit times are whole seconds, so the time of the file's last commit comes back exactly.
        committed = round(observed_at.timestamp() - value["days"] * 86400)
        return {**value, "days": (self.now - committed) / 86400}

    def _commits_since(self, p: CommitsSince) -> tuple[dict[str, Any], str | None, datetime | None]:
        """The count, and until when it holds at this commit: the window slides with the clock."""
        # Window (now - days, now] on whole-second commit times, from `now`, never
        # the wall clock. Like `git log --since`, the walk stops at the first
        # commit older than the window, so clock-skewed history may undercount.
        oldest = math.floor(self.now - p.days * 86400) + 1
        name = None if p.path is None else path_from_text(p.path)
        out = self.repo.run("log", "--format=%ct", f"--max-age={oldest}", self.sha, *(["--", name] if name else []))
        stamps = [int(line) for line in out.split()]
        counted = [t for t in stamps if t <= math.floor(self.now)]
        # The count changes when its oldest commit leaves the window, or a commit dated later than now enters it.
        changes = [min(counted) + p.days * 86400] if counted else []
        changes += [t for t in stamps if t > math.floor(self.now)]
        until = datetime.fromtimestamp(math.floor(min(changes)), timezone.utc) if changes else None
        return {"count": len(counted)}, name, until

    def _head(self, p: Head) -> tuple[dict[str, Any], str | None]:
        stamp = datetime.fromtimestamp(self.committed, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"sha": self.sha, "committed_at": stamp, "age_days": (self.now - self.committed) / 86400}, None


def collect(
    source: GitSource,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path,
    commit: str | None = None,
    previous: CollectResult | None = None,
) -> CollectResult:
    """Answer every request from the tip of `source.branch` (or from `commit`); never raises for source faults.

    `previous` is this source's last result. When it was read at the commit
    read now (its fingerprint) with the same settings, the answers that depend
    only on that commit are reused and the tree is not walked again; the ones
    that depend on `now` are brought up to date.
    """
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)  # a naive `now` is UTC
    try:
        repo = _Repo(source, cache_dir, sync=commit is None)
        try:
            rev, what = (commit, "commit") if commit else (source.branch, "branch")
            sha, committed = _unmoved(repo, rev, previous, source) or repo.resolve(rev, what)
            known = _known(previous, source, sha)
            reader = _Reader(repo, sha, committed, now, previous.holds_until if known and previous else None)
            # A corrupt object met while answering fails the whole source: the
            # repository, not the request, is at fault.
            evidence = [reader.evidence(r, now, known.get(evidence_key(source.id, r.signal, r.params))) for r in requests]
        finally:
            repo.close()
    except _FAULTS as exc:
        return failed(source.id, requests, _fault(exc, source).error, now=now)
    return CollectResult(source=source.id, evidence=evidence, fingerprint=sha, settings=_settings(source),
                         holds_until=reader.holds_until)


def _settings(source: GitSource) -> str:
    """The settings of a source that change its answers at a given commit."""
    return f"max_file_bytes={source.max_file_bytes}"


def _unmoved(repo: _Repo, rev: str, previous: CollectResult | None, source: GitSource) -> tuple[str, int | None] | None:
    """(SHA, commit time if known) of `previous` when `rev` still names the commit it was read at.

    Read from the ref files, without running git: the HEAD comparison of an
    unchanged source. None sends the caller to :meth:`_Repo.resolve`.
    """
    if previous is None or previous.fingerprint is None or previous.settings != _settings(source):
        return None
    if repo.peek(rev) != previous.fingerprint:
        return None
    # The commit's time, if a `head` answer of the previous result has it (to the second, as git keeps it).
    stamps = [e.value["committed_at"] for e in previous.evidence
              if e.signal == "head" and e.value and e.provenance.commit == previous.fingerprint]
    committed = datetime.strptime(stamps[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) if stamps else None
    return previous.fingerprint, int(committed.timestamp()) if committed else None


def _known(previous: CollectResult | None, source: GitSource, sha: str) -> dict[str, Evidence]:
    """The answers of `previous` that were read at commit `sha` with the settings of `source`, by evidence key."""
    if previous is None or previous.fingerprint != sha or previous.settings != _settings(source):
        return {}
    return {e.key: e for e in previous.evidence if e.error is None and e.provenance.commit == sha and e.source == source.id}


def _open_at(source: GitSource, cache_dir: Path, commit: str | None,
             deadline: Deadline | None) -> tuple[_Repo, str, int]:
    """The opened repository and (SHA, commit time) of `commit` (default: the branch tip)."""
    repo = _Repo(source, cache_dir, sync=commit is None, deadline=deadline)
    try:
        if commit is not None and source.url:
            try:  # a commit the mirror has not seen yet: fetch once
                repo.resolve(commit, "commit")
            except SourceFault:
                repo.close()
                repo = _Repo(source, cache_dir, sync=True, deadline=repo.deadline)  # one deadline for the read
        return (repo, *repo.resolve(commit or source.branch, "commit" if commit else "branch"))
    except BaseException:
        repo.close()
        raise


def read_text(
    source: GitSource, path: str, *, cache_dir: Path, commit: str | None = None, max_bytes: int | None = None,
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
    where, name = f"{_where(source)} at {sha[:12]}", _repo_path(path)
    if b"\0" in data[:_BINARY_PROBE]:
        raise SourceFault("malformed", f"{where}: {name} is a binary file")
    try:
        return data.decode("utf-8", errors="strict" if strict else "replace"), sha
    except UnicodeDecodeError as exc:
        raise SourceFault("malformed", f"{where}: {name} is not UTF-8 text (byte {exc.start})") from None


def read_bytes(
    source: GitSource, path: str, *, cache_dir: Path, commit: str | None = None, max_bytes: int | None = None,
    deadline: Deadline | None = None,
) -> tuple[bytes, str]:
    """(content, commit SHA) of the file `path` at `commit`, as stored: for formats that name their
    own encoding (XML's byte order mark and declaration), which a text reader would mistake for binary.

    Raises SourceFault like :func:`read_text`.
    """
    limit = source.max_file_bytes if max_bytes is None else max_bytes
    try:
        name = _repo_path(path)
    except ValueError as exc:
        raise SourceFault("unsafe", f"{_where(source)}: {exc}") from None
    try:
        repo, sha, _ = _open_at(source, cache_dir, commit, deadline)
        try:
            where = f"{repo.where} at {sha[:12]}"

            def lookup(candidate: str) -> _Entry | None:
                return repo.ls_tree(sha, candidate).get(candidate)

            state, final = _follow(name, lookup, repo.blob)
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
    except _FAULTS as exc:
        raise _fault(exc, source) from None
    return data, sha


def list_files(
    source: GitSource, pattern: str, *, cache_dir: Path, commit: str | None = None, deadline: Deadline | None = None,
) -> tuple[list[str], str]:
    """(sorted paths matching the glob `pattern`, commit SHA) at `commit` (default: the branch tip).

    Links leaving the repository and broken links are not listed: `read_text`
    could not read them. Raises SourceFault like `read_text`.
    """
    try:
        repo, sha, committed = _open_at(source, cache_dir, commit, deadline)
        try:
            reader = _Reader(repo, sha, committed, datetime.now(timezone.utc))
            files = reader._tree[0]
            return [path for path in reader._glob(pattern) if files[path].mode != _LINK_MODE], sha
        finally:
            repo.close()
    except _FAULTS as exc:
        raise _fault(exc, source) from None

