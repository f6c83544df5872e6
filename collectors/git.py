"""Git collector: facts read from one commit of a repository.

Everything is read from the commit object (trees and blobs), never from a
working tree, so uncommitted files are invisible and nothing is checked out.
Remote repositories are kept as bare mirrors in a cache folder. The
repository itself (its source model, opening it, its tree, reading one file)
is :mod:`collectors.gitrepo`; ``GitSource`` and ``read_text`` are named here
too, as the git kind's source model and its file reader.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
    signal_params,
)
from collectors.gitrepo import BINARY_PROBE, FAULTS, LINK_MODE, Entry, GitSource, Repository, Tree, as_fault, read_text
from collectors.models.git import SIGNALS, CommitsSince, ContentMatch, FileAge, FileCount, FileExists, Head, TestCases
from collectors.regex import compile_regex
from collectors.testcases import TestCase, find_test_cases, language_of

__all__ = ["SIGNALS", "CommitsSince", "ContentMatch", "FileAge", "FileCount", "FileExists", "GitSource", "Head",
           "TestCases", "collect", "read_text"]

_LIST_LIMIT = 20
_CASE_LIMIT = 50  # test cases listed (each with its file and line) in a `test_cases` answer
_NAME_CHARS = 200  # a test's name as listed (a JavaScript title can be a whole line)
# Signals answered from the commit's tree and blobs alone: at the same commit, the same answer.
_FROM_TREE = frozenset({"file_exists", "file_count", "content_match", "test_cases"})
# From this many file ages on, one `git log` over the history answers them all; fewer cost less one by one.
_AGES_AT_ONCE = 8
_AGES_PER_LOG = 1000  # paths given to one `git log` (the command line stays far below its limit)
_PATHSPEC_MAGIC = frozenset("*?[]\\:")


def _shown(value: dict[str, Any], path: str | None,
           line: int | None = None) -> tuple[dict[str, Any], str | None, int | None]:
    """A fresh answer with its file names as text (:func:`path_text`): names are bytes, evidence is JSON."""
    if "paths" in value:
        value = {**value, "paths": [path_text(p) for p in value["paths"]]}
    if "skipped" in value:
        value = {**value, "skipped": [{**s, "path": path_text(s["path"])} for s in value["skipped"]]}
    return value, None if path is None else path_text(path), line


class _Reader:
    """Answers requests against one commit; the tree is walked at most once."""

    def __init__(self, repo: Repository, sha: str, committed: int | None, now: datetime,
                 held: dict[str, datetime | None] | None = None):
        self.repo, self.sha, self._committed, self.now = repo, sha, committed, now.timestamp()
        self.tree = Tree(repo, sha)
        self._held = held or {}  # the previous result's holds_until, for this same commit
        self.holds_until: dict[str, datetime | None] = {}
        # (path, blob id) -> its test cases (None: a binary file), each blob read once for every request
        self._cases: dict[tuple[str, str], list[TestCase] | None] = {}
        self._ages: dict[str, tuple[str, int]] = {}  # path -> (SHA, time) of the last commit that changed it

    def read_ages(self, names: list[str]) -> None:
        """The last commit of many files at once, from one `git log --name-only` along a linear history.

        On a history without merges, the newest commit that lists a file is what
        `git log -1 -- FILE` answers (renames listed as a deletion and an
        addition, as one path sees them). With merges git simplifies the
        history per path, so each file keeps its own `git log -1`; so do names
        git would read as patterns and names not in the tree (a folder).
        """
        names = sorted({n for n in names if n in self.tree.files and not _PATHSPEC_MAGIC.intersection(n)})
        if len(names) < _AGES_AT_ONCE or self.repo.run("rev-list", "--min-parents=2", "-n", "1", self.sha, "--").strip():
            return
        for start in range(0, len(names), _AGES_PER_LOG):
            chunk = names[start:start + _AGES_PER_LOG]
            out = self.repo.run("log", "--no-renames", "--name-only", "-z", "--format=%x01%H %ct", self.sha, "--", *chunk)
            for entry in out.split("\x01")[1:]:
                header, _, changed = entry.partition("\0")
                sha, committed = header.split()
                for name in changed.lstrip("\n").split("\0"):
                    if name and name not in self._ages:
                        self._ages[name] = (sha, int(committed))

    @property
    def committed(self) -> int:
        """The commit's time (asked of git only when it was not known already)."""
        if self._committed is None:
            self._committed = int(self.repo.run("log", "-1", "--format=%ct", self.sha, "--"))
        return self._committed

    def evidence(self, request: EvidenceRequest, observed_at: datetime, known: Evidence | None = None) -> Evidence:
        """One request's answer; ``known`` is the answer read from this same commit before, reused where it can be."""

        def item(value: dict[str, Any] | None, error: EvidenceError | None = None, path: str | None = None,
                 line: int | None = None) -> Evidence:
            return Evidence(source=self.repo.source.id, signal=request.signal, params=request.params, value=value,
                            error=error, provenance=Provenance(commit=self.sha, path=path, line=line),
                            observed_at=observed_at)

        # An answer read at this commit before was asked with these same parameters, which were valid then.
        if known is not None and known.value is not None and request.signal in _FROM_TREE:
            return item(known.value, path=known.provenance.path, line=known.provenance.line)
        if known is not None and known.value is not None and request.signal == "file_age":
            return item(self._file_age_again(known.value, known.observed_at), path=known.provenance.path)
        try:
            params = signal_params("git", SIGNALS, request)
        except SourceFault as fault:
            return item(None, fault.error)
        if isinstance(params, CommitsSince):
            key = evidence_key(self.repo.source.id, request.signal, request.params)
            if known is not None and known.value is not None and key in self._held:
                until = self._held[key]
                if until is None or self.now < until.timestamp():
                    self.holds_until[key] = until
                    return item(known.value, path=known.provenance.path)
            value, path, self.holds_until[key] = self._commits_since(params)
            value, path, _ = _shown(value, path)
            return item(value, path=path)
        value, path, line = _shown(*getattr(self, "_" + request.signal)(params))
        return item(value, path=path, line=line)

    def _file_exists(self, p: FileExists) -> tuple[dict[str, Any], str | None]:
        name = None if p.path is None else path_from_text(p.path)  # a name as evidence shows it
        if name is not None:
            present = [name] if name in self.tree.files else []
        else:
            present = self.tree.glob(str(p.glob))
        value = {"exists": bool(present), "count": len(present), "paths": present[:_LIST_LIMIT]}
        return value, present[0] if present else name

    def _file_count(self, p: FileCount) -> tuple[dict[str, Any], str | None]:
        present = self.tree.glob(p.glob)
        return {"count": len(present), "paths": present[:_LIST_LIMIT]}, present[0] if present else None

    def _readable(self, pattern: str) -> Iterator[tuple[str, Entry | None, str | None]]:
        """(path, blob, why it cannot be read or None) of each file matching `pattern`, in path order."""
        files, outside = self.tree.files, self.tree.outside
        for path in self.tree.glob(pattern, sorted(set(files) | outside)):
            entry = files.get(path)
            reason = ("symlink_outside" if entry is None else "symlink_broken" if entry.mode == LINK_MODE
                      else "too_large" if entry.size > self.repo.source.max_file_bytes else None)
            yield path, entry, reason

    def _texts(self, wanted: list[tuple[Entry, str]]) -> Iterator[str | None]:
        """Each (blob, path)'s text (bytes that are not UTF-8 as U+FFFD), or None for a binary file, in order.

        The blobs are read in one batch (:meth:`Repository.blobs`), as they are consumed.
        """
        for data in self.repo.blobs(wanted):
            yield None if b"\0" in data[:BINARY_PROBE] else data.decode("utf-8", errors="replace")

    def _content_match(self, p: ContentMatch) -> tuple[dict[str, Any], str | None, int | None]:
        regex = compile_regex(p.regex, multiline=True)
        matched: list[str] = []
        skipped: list[dict[str, str]] = []
        total, line = 0, None
        files = list(self._readable(p.glob))
        texts = self._texts([(entry, path) for path, entry, reason in files if entry is not None and not reason])
        for path, entry, reason in files:
            text = None if entry is None or reason else next(texts)
            if text is None:
                skipped.append({"path": path, "reason": reason or "binary"})
                continue
            found = list(regex.finditer(text))
            if found:
                if not matched:  # the line of the first match, in the first file that matches
                    line = text.count("\n", 0, found[0].start()) + 1
                matched.append(path)
                total += len(found)
        value = {"files": len(matched), "matches": total, "paths": matched[:_LIST_LIMIT],
                 "skipped": skipped[:_LIST_LIMIT]}
        return value, matched[0] if matched else None, line

    def _test_cases(self, p: TestCases) -> tuple[dict[str, Any], str | None, int | None]:
        regex = compile_regex(p.match) if p.match is not None else None
        found: list[TestCase] = []
        skipped: list[dict[str, str]] = []
        files = [(path, entry, reason) for path, entry, reason in self._readable(p.glob)
                 if (language := language_of(path)) is not None and (p.language is None or language == p.language)]
        unread = list(dict.fromkeys((entry, path) for path, entry, reason in files
                                    if entry is not None and not reason and (path, entry.sha) not in self._cases))
        for (entry, path), text in zip(unread, self._texts(unread)):
            self._cases[(path, entry.sha)] = None if text is None else find_test_cases(path, text)
        for path, entry, reason in files:
            if entry is None or reason:
                skipped.append({"path": path, "reason": reason or "binary"})
                continue
            cases = self._cases[(path, entry.sha)]
            if cases is None:
                skipped.append({"path": path, "reason": "binary"})
                continue
            found += [c for c in cases if regex is None or regex.search(c.name) or regex.search(c.path)
                      or (c.scope is not None and regex.search(c.scope))]
        names = sorted("::".join(filter(None, (path_text(c.path), c.scope, c.name[:_NAME_CHARS]))) for c in found)
        value = {"count": len(found), "files": len({c.path for c in found}), "names": names[:_CASE_LIMIT],
                 "cases": [{"path": path_text(c.path), "line": c.line, "name": c.name[:_NAME_CHARS]}
                           for c in found[:_CASE_LIMIT]],
                 "skipped": skipped[:_LIST_LIMIT]}
        return value, found[0].path if found else None, found[0].line if found else None

    def _file_age(self, p: FileAge) -> tuple[dict[str, Any], str | None]:
        name = path_from_text(p.path)
        read = self._ages.get(name)
        out = [read[0], str(read[1])] if read else self.repo.run("log", "-1", "--format=%H %ct", self.sha, "--", name).split()
        days = (self.now - int(out[1])) / 86400 if out else None
        return {"exists": name in self.tree.files, "days": days, "last_commit": out[0] if out else None}, name

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
    cache_dir: Path | None = None,
    repo: GitSource | None = None,
    commit: str | None = None,
    previous: CollectResult | None = None,
    allow_commands: bool = False,
) -> CollectResult:
    """Answer every request from the tip of `source.branch` (or from `commit`); never raises for source faults.

    `previous` is this source's last result. When it was read at the commit
    read now (its fingerprint) with the same settings, the answers that depend
    only on that commit are reused and the tree is not walked again; the ones
    that depend on `now` are brought up to date. `cache_dir` holds the mirror
    of a URL source; `repo` and `allow_commands` are not used.
    """
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)  # a naive `now` is UTC
    try:
        opened = Repository(source, cache_dir, sync=commit is None)
        try:
            rev, what = (commit, "commit") if commit else (source.branch, "branch")
            sha, committed = _unmoved(opened, rev, previous, source) or opened.resolve(rev, what)
            known = _known(previous, source, sha)
            reader = _Reader(opened, sha, committed, now, previous.holds_until if known and previous else None)
            reader.read_ages([path_from_text(r.params["path"]) for r in requests if r.signal == "file_age"
                              and isinstance(r.params.get("path"), str) and evidence_key(source.id, r.signal, r.params) not in known])
            # A corrupt object met while answering fails the whole source: the
            # repository, not the request, is at fault.
            evidence = [reader.evidence(r, now, known.get(evidence_key(source.id, r.signal, r.params))) for r in requests]
        finally:
            opened.close()
    except FAULTS as exc:
        return failed(source.id, requests, as_fault(exc, source).error, now=now)
    return CollectResult(source=source.id, evidence=evidence, fingerprint=sha, settings=_settings(source),
                         holds_until=reader.holds_until)


def _settings(source: GitSource) -> str:
    """The settings of a source that change its answers at a given commit."""
    return f"max_file_bytes={source.max_file_bytes}"


def _unmoved(repo: Repository, rev: str, previous: CollectResult | None, source: GitSource) -> tuple[str, int | None] | None:
    """(SHA, commit time if known) of `previous` when `rev` still names the commit it was read at.

    Read from the ref files, without running git: the HEAD comparison of an
    unchanged source. None sends the caller to :meth:`Repository.resolve`.
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


