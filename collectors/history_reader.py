"""A git source read at many commits of its history: each commit's result, as the collector gives it, for less.

:func:`collect_history` gives, for each ``(commit, now)``, the very result of
``git.collect(source, requests, now=now, commit=commit)``; the tests check
that it is equal. What makes it cheaper (:mod:`collectors.history_walk`):

- the trees come from one ``ls-tree`` and one ``git log --raw`` of the
  first-parent chain, each commit applied as its changes;
- an answer read from the tree is worked out again only at a commit whose
  changes touch a path its glob matches (or whose tree holds links);
- each blob is read once per history, and a regex or a test-case reader asks
  it once, by blob id;
- ``file_age`` asks git only where the last change of its path cannot be
  known from the chain (the first commit, a merge that changed it);
  ``commits_since`` without a path counts on one commit graph, walked as
  ``git log --max-age`` walks it; ``head`` needs nothing.

A commit whose read fails in any way is read by the collector itself, so a
fault comes out exactly as it would.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from collectors import git
from collectors.evidence import (
    CollectResult,
    Evidence,
    EvidenceRequest,
    Provenance,
    SourceFault,
    evidence_key,
    path_from_text,
    path_text,
    signal_params,
)
from collectors.git import (  # the collector's own limits: the same answers
    _CASE_LIMIT,
    _LIST_LIMIT,
    _NAME_CHARS,
    CommitsSince,
    ContentMatch,
    FileAge,
    FileCount,
    FileExists,
    GitSource,
    TestCases,
)
from collectors.gitrepo import FAULTS, LINK_MODE, Deadline, Entry, Repository
from collectors.history_walk import Blobs, ChainCommit, Change, TreeState, chain, commit_graph
from collectors.regex import compile_regex
from collectors.testcases import TestCase, find_test_cases, language_of

__all__ = ["Walker", "collect_history"]

_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_TREE_SIGNALS = {"file_exists", "file_count", "content_match", "test_cases"}


def collect_history(source: GitSource, requests: list[EvidenceRequest], commits: list[tuple[str, datetime]], *,
                    cache_dir: Path | None) -> Iterator[CollectResult]:
    """The collector's result at each ``(commit SHA, now)`` of `commits`, in their order (a generator)."""

    def plain(sha: str, now: datetime) -> CollectResult:
        return git.collect(source, requests, now=now, cache_dir=cache_dir, commit=sha)

    try:
        repo = Repository(source, cache_dir, sync=False)
    except FAULTS:
        yield from (plain(sha, now) for sha, now in commits)
        return
    try:
        try:
            walker = Walker(repo, source, requests, commits)
        except FAULTS:
            yield from (plain(sha, now) for sha, now in commits)
            return
        for sha, now in commits:
            now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
            try:
                result = walker.result(sha, now)
            except FAULTS:
                walker.state = None  # read this commit afresh; the next one starts from its own tree
                result = plain(sha, now)
            yield result
    finally:
        repo.close()


class Walker:
    """The tree state along the commits, and every answer's last value with what it depended on."""

    def __init__(self, repo: Repository, source: GitSource, requests: list[EvidenceRequest],
                 commits: list[tuple[str, datetime]]):
        self.repo, self.source, self.requests = repo, source, requests
        self.blobs = Blobs(repo)
        self._parsed = [(r, evidence_key(source.id, r.signal, r.params), self._params(r)) for r in requests]
        self.state: TreeState | None = None
        self.shas = [sha for sha, _ in commits if _SHA.fullmatch(sha)]
        self.chain: dict[str, ChainCommit] = chain(repo, self.shas[0], self.shas[-1]) if len(self.shas) > 1 else {}
        self.times = {sha: c.time for sha, c in self.chain.items()}
        self._kept: dict[str, tuple[dict[str, Any] | None, str | None, int | None]] = {}  # request key -> last answer
        self._ages: dict[str, tuple[str, int] | None] = {}  # path -> its last change at the current commit
        self._regexes: dict[str, Any] = {}
        self._verdicts: dict[str, dict[str, bool]] = {}
        self._tallies: dict[Any, dict[str, Any]] = {}  # per content request: path -> what its file adds
        self._changes: list[Change] | None = None  # the current commit's changes (None: its tree listed afresh)
        self._fetched = False
        self._content_globs = {p.glob for _, _, p in self._parsed if isinstance(p, ContentMatch | TestCases)}
        windows = [p.days for _, _, p in self._parsed if isinstance(p, CommitsSince) and p.path is None]
        self.graph: dict[str, tuple[int, list[str]]] = {}
        if windows and self.shas:
            oldest = min(math.floor(now.timestamp() - max(windows) * 86400) + 1 for _, now in commits)
            tips = {self.shas[-1], *(s for s in self.shas if s not in self.chain)}
            self.graph = commit_graph(repo, tips, oldest)

    @staticmethod
    def _params(request: EvidenceRequest) -> Any:
        """The request's parameters, or the fault that refused them (the same for every commit)."""
        try:
            return signal_params("git", git.SIGNALS, request)
        except SourceFault as fault:
            return fault

    def result(self, sha: str, now: datetime) -> CollectResult:
        if not _SHA.fullmatch(sha):
            raise SourceFault("not_found", "not a full commit id: read by the collector")
        self.repo.deadline = Deadline.after(self.source.timeout_seconds)  # each commit its own time, as collected alone
        changes, merge = self._move(sha)
        self._changes = changes
        state = self.state
        assert state is not None
        if len(state.raw) > self.source.max_tree_entries:
            raise SourceFault("too_large", "too many entries: read by the collector")
        evidence: list[Evidence] = []
        holds: dict[str, datetime | None] = {}
        for request, key, params in self._parsed:
            if isinstance(params, SourceFault):
                evidence.append(self._item(request, sha, now, None, error=params.error))
                continue
            if isinstance(params, CommitsSince):
                value, path, holds[key] = self._commits_since(params, sha, now)
                line = None
            elif request.signal in _TREE_SIGNALS:
                if key not in self._kept or self._touched(params, changes):
                    self._kept[key] = getattr(self, "_" + request.signal)(params)
                value, path, line = self._kept[key]
            elif isinstance(params, FileAge):
                value, path, line = (*self._file_age(params, sha, now, changes, merge), None)
            else:  # head
                stamp = datetime.fromtimestamp(self.times[sha], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                value = {"sha": sha, "committed_at": stamp, "age_days": (now.timestamp() - self.times[sha]) / 86400}
                path, line = None, None
            evidence.append(self._item(request, sha, now, value, path=path, line=line))
        return CollectResult(source=self.source.id, evidence=evidence, fingerprint=sha,
                             settings=f"max_file_bytes={self.source.max_file_bytes}", holds_until=holds)

    def _item(self, request: EvidenceRequest, sha: str, now: datetime, value: dict[str, Any] | None, *,
              error: Any = None, path: str | None = None, line: int | None = None) -> Evidence:
        return Evidence(source=self.source.id, signal=request.signal, params=request.params, value=value, error=error,
                        provenance=Provenance(commit=sha, path=path, line=line), observed_at=now)

    def _move(self, sha: str) -> tuple[list[Change] | None, bool]:
        """Bring the tree to `sha`: (its changes from the commit before, or None when listed afresh; a merge?)."""
        here = self.chain.get(sha)
        if self.state is not None and self.state.sha == sha:
            return [], False
        if self.state is not None and here is not None and here.parents and here.parents[0] == self.state.sha:
            self.state.apply(sha, here.changes)
            return here.changes, len(here.parents) > 1
        full, stamp = self.repo.resolve(sha, "commit")
        self.times[full] = stamp
        self.state = TreeState(full, self.repo.ls_tree(full), self.blobs.link, self._verdicts)
        self._ages.clear()
        if not self._fetched:  # the first tree: read ahead every blob of the history a content check will read
            self._fetched = True
            entries = [*self.state.raw.items(), *((c.path, c.entry) for commit in self.chain.values()
                                                  for c in commit.changes if c.entry is not None)]
            self.blobs.fetch(e for path, e in entries if e.size <= self.source.max_file_bytes and e.mode != LINK_MODE
                             and any(self.state.matches(g, path) for g in self._content_globs))
        return None, False

    def _touched(self, params: Any, changes: list[Change] | None) -> bool:
        """Whether the answer to `params` can differ from the one at the commit before."""
        state = self.state
        assert state is not None
        if changes is None or state.has_links:
            return True
        if isinstance(params, FileExists) and params.path is not None:
            name = path_from_text(params.path)
            return any(c.path == name for c in changes)
        pattern = params.glob
        return any(state.matches(pattern, c.path) for c in changes if not c.gitlink)

    # --- answers read from the tree, as collectors.git answers them -------------------------------

    def _glob_files(self, pattern: str) -> list[str]:
        state = self.state
        assert state is not None
        outside = state.outside
        return sorted(p for p in state.matched(pattern) if p not in outside)

    def _file_exists(self, p: FileExists) -> tuple[dict[str, Any], str | None, None]:
        state = self.state
        assert state is not None
        name = None if p.path is None else path_from_text(p.path)
        present = ([name] if name in state.files else []) if name is not None else self._glob_files(str(p.glob))
        value = {"exists": bool(present), "count": len(present), "paths": present[:_LIST_LIMIT]}
        return _shown(value, present[0] if present else name)

    def _file_count(self, p: FileCount) -> tuple[dict[str, Any], str | None, None]:
        present = self._glob_files(p.glob)
        return _shown({"count": len(present), "paths": present[:_LIST_LIMIT]}, present[0] if present else None)

    def _readable(self, pattern: str) -> Iterator[tuple[str, Entry | None, str | None]]:
        state = self.state
        assert state is not None
        files, limit = state.files, self.source.max_file_bytes
        for path in sorted(state.matched(pattern)):
            entry = files.get(path)
            reason = ("symlink_outside" if entry is None else "symlink_broken" if entry.mode == LINK_MODE
                      else "too_large" if entry.size > limit else None)
            yield path, entry, reason

    def _tally(self, key: Any, pattern: str, one: Any) -> dict[str, Any]:
        """Path -> what `one(path, entry, reason)` says of each file `pattern` matches, where it says something.

        Kept from commit to commit: only the changed paths are asked again, unless
        the tree holds links (a link's file can change without the link changing).
        """
        state, changes = self.state, self._changes
        assert state is not None
        tally = self._tallies.get(key)
        if tally is None or changes is None or state.has_links:
            tally = self._tallies[key] = {}
            for path, entry, reason in self._readable(pattern):
                said = one(path, entry, reason)
                if said is not None:
                    tally[path] = said
            return tally
        for change in changes:
            if change.gitlink or not state.matches(pattern, change.path):
                continue
            tally.pop(change.path, None)
            entry = change.entry  # no links in this tree: the entry is the file
            if entry is not None:
                said = one(change.path, entry, "too_large" if entry.size > self.source.max_file_bytes else None)
                if said is not None:
                    tally[change.path] = said
        return tally

    def _content_match(self, p: ContentMatch) -> tuple[dict[str, Any], str | None, int | None]:
        if p.regex not in self._regexes:
            self._regexes[p.regex] = compile_regex(p.regex, multiline=True)
        regex = self._regexes[p.regex]

        def count(text: str | None) -> tuple[int, int | None] | None:
            if text is None:
                return None
            n, first = 0, None
            for m in regex.finditer(text):
                first = m.start() if first is None else first
                n += 1
            return n, None if first is None else text.count("\n", 0, first) + 1

        def one(path: str, entry: Entry | None, reason: str | None) -> tuple[Any, ...] | None:
            found = None if entry is None or reason else self.blobs.answer(("match", p.regex), entry.sha, path, count)
            if found is None:
                return ("skip", reason or "binary")
            return ("hit", *found) if found[0] else None

        tally = self._tally(("match", p.glob, p.regex), p.glob, one)
        matched: list[str] = []
        skipped: list[dict[str, str]] = []
        total, line = 0, None
        for path in sorted(tally):
            said = tally[path]
            if said[0] == "skip":
                skipped.append({"path": path, "reason": said[1]})
                continue
            if not matched:
                line = said[2]
            matched.append(path)
            total += said[1]
        value = {"files": len(matched), "matches": total, "paths": matched[:_LIST_LIMIT], "skipped": skipped[:_LIST_LIMIT]}
        return _shown(value, matched[0] if matched else None, line)

    def _test_cases(self, p: TestCases) -> tuple[dict[str, Any], str | None, int | None]:
        regex = compile_regex(p.match) if p.match is not None else None

        def one(path: str, entry: Entry | None, reason: str | None) -> tuple[Any, ...] | None:
            language = language_of(path)
            if language is None or (p.language is not None and language != p.language):
                return None
            if entry is None or reason:
                return ("skip", reason or "binary")
            cases = self.blobs.answer(("cases", path), entry.sha, path,
                                      lambda text: None if text is None else find_test_cases(path, text))
            if cases is None:
                return ("skip", "binary")
            kept = [c for c in cases if regex is None or regex.search(c.name) or regex.search(c.path)
                    or (c.scope is not None and regex.search(c.scope))]
            return ("cases", kept) if kept else None

        tally = self._tally(("cases", p.glob, p.match, p.language), p.glob, one)
        found: list[TestCase] = []
        skipped: list[dict[str, str]] = []
        for path in sorted(tally):
            said = tally[path]
            if said[0] == "skip":
                skipped.append({"path": path, "reason": said[1]})
            else:
                found += said[1]
        names = sorted("::".join(filter(None, (path_text(c.path), c.scope, c.name[:_NAME_CHARS]))) for c in found)
        value = {"count": len(found), "files": len({c.path for c in found}), "names": names[:_CASE_LIMIT],
                 "cases": [{"path": path_text(c.path), "line": c.line, "name": c.name[:_NAME_CHARS]}
                           for c in found[:_CASE_LIMIT]],
                 "skipped": skipped[:_LIST_LIMIT]}
        return _shown(value, found[0].path if found else None, found[0].line if found else None)

    # --- answers read from the history ----------------------------------------------------------

    def _file_age(self, p: FileAge, sha: str, now: datetime, changes: list[Change] | None,
                  merge: bool) -> tuple[dict[str, Any], str | None]:
        name = path_from_text(p.path)
        # `git log -1 C -- name`: C itself when C changed it; else what its first parent had (a merge follows
        # the first parent it is the same as). A merge that changed it may follow another parent: ask git.
        touched = changes is not None and any(c.path == name or c.path.startswith(name + "/") for c in changes)
        if changes is None or name not in self._ages or (touched and merge):
            out = self.repo.run("log", "-1", "--format=%H %ct", sha, "--", name).split()
            self._ages[name] = (out[0], int(out[1])) if out else None
        elif touched:
            self._ages[name] = (sha, self.times[sha])
        last = self._ages[name]
        state = self.state
        assert state is not None
        days = (now.timestamp() - last[1]) / 86400 if last else None
        value = {"exists": name in state.files, "days": days, "last_commit": last[0] if last else None}
        return value, path_text(name)

    def _commits_since(self, p: CommitsSince, sha: str, now: datetime) -> tuple[dict[str, Any], str | None, datetime | None]:
        """As collectors.git counts them; without a path, on the commit graph instead of a `git log` per commit."""
        oldest = math.floor(now.timestamp() - p.days * 86400) + 1
        name = None if p.path is None else path_from_text(p.path)
        if name is None and sha in self.graph:
            stamps = self._walk(sha, oldest)
        else:
            out = self.repo.run("log", "--format=%ct", f"--max-age={oldest}", sha, *(["--", name] if name else []))
            stamps = [int(line) for line in out.split()]
        counted = [t for t in stamps if t <= math.floor(now.timestamp())]
        changes = [min(counted) + p.days * 86400] if counted else []
        changes += [t for t in stamps if t > math.floor(now.timestamp())]
        until = datetime.fromtimestamp(math.floor(min(changes)), timezone.utc) if changes else None
        return {"count": len(counted)}, None if name is None else path_text(name), until

    def _walk(self, sha: str, oldest: int) -> list[int]:
        """The commit times `git log --max-age=oldest sha` lists: commits reached through commits no older than that."""
        stamps: list[int] = []
        seen, todo = {sha}, [sha]
        while todo:
            node = self.graph.get(todo.pop())
            if node is None or node[0] < oldest:  # not in the graph: older than its bound, so than this window
                continue
            stamps.append(node[0])
            for parent in node[1]:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return stamps


def _shown(value: dict[str, Any], path: str | None, line: int | None = None) -> tuple[dict[str, Any], str | None, int | None]:
    """As collectors.git shows an answer: file names as text."""
    if "paths" in value:
        value = {**value, "paths": [path_text(p) for p in value["paths"]]}
    if "skipped" in value:
        value = {**value, "skipped": [{**s, "path": path_text(s["path"])} for s in value["skipped"]]}
    return value, None if path is None else path_text(path), line
