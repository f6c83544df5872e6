"""Drafting a starting configuration: a progress document and a repository's listing in, drafted checks out.

Pure: :class:`RepoView` is what was read of the repository at HEAD (its file
names, the text of its test files and Markdown documents, the test cases found
in them); :func:`draft_from_document` and :func:`draft_default` return a
:class:`Draft`, which :mod:`daemon.run.draft_yaml` writes as YAML. Each drafted
check carries the reason it was drafted and the score it gives at HEAD.

A check is drafted from:

- (a) what the document names near a criterion (its own line and the lines
  after it, and lines further down its pillar that share a word with its
  title) and the repository holds: a test file (its test definitions,
  counted), another file (its existence), a test name (its definition);
- (b) test cases whose names share significant words with the criterion's
  title (:mod:`daemon.run.words`);
- (c) "label: N/M ... pass" lines of a status document in the repository,
  whose label shares a word with the criterion's title (the ``ratio`` signal).

Counts are scaled to twice what the repository holds now (``scale: [0, 2N]``),
and a ratio already at N/N reads its numerator that way, so that no drafted
rule stands at 1.0 from the start: the team's judgment, imported beside it,
is what ``calibrate`` fits the bounds to.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from pydantic import BaseModel, Field
from wcmatch import glob

from collectors.markdown import RATIO_VALUE, label_value, without_list_marker
from collectors.regex import compile_regex
from collectors.testcases import language_of
from daemon.run.progress_doc import ClaimedPillar, ProgressDocument
from daemon.run.words import match_regex, overlap, stems, words_of

__all__ = ["TESTS_GLOB", "Draft", "DraftCheck", "DraftCriterion", "DraftPillar", "RepoView", "StatusDoc", "FoundTest",
           "draft_criteria", "draft_from_document", "slug"]

# Where each language keeps its tests by convention: the `@tests` preset of the git signals.
TESTS_GLOB = "@tests"
# A test definition, by file extension: what a mentioned test file counts (RE2, multiline).
_DEFINITIONS = {
    ".py": r"^\s*(?:async\s+)?def test\w*\s*\(",
    ".go": r"^func Test\w*\s*\(",
    ".java": r"@Test\b", ".kt": r"@Test\b",
    ".rs": r"#\[test\]",
    **dict.fromkeys((".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs"), r"(?:^|[^\w.])(?:it|test)\s*\(\s*['\"`]"),
}
# Words in a document that may name a file or a test: paths, file names, identifiers.
_TOKEN = re.compile(r"[\w.\-/]*\w")
_TEST_NAME = re.compile(r"^(?:test_\w+|test[A-Z]\w*|Test[A-Z0-9]\w*|\w+Tests?)$")
_MAX_TEST_NAMES = 5  # names quoted in a reason


class FoundTest(BaseModel):
    """A test case found at HEAD (the test_cases collector's view: name, its class or describe, where)."""

    path: str
    line: int
    name: str
    scope: str | None = None


class StatusDoc(BaseModel):
    path: str
    text: str


class RepoView(BaseModel):
    """What drafting reads of a repository at one commit."""

    name: str
    commit: str
    files: list[str]
    texts: dict[str, str] = Field(default_factory=dict)  # test files and Markdown documents
    tests: list[FoundTest] = Field(default_factory=list)
    tests_signal: bool = False  # the git source answers `test_cases`


class DraftCheck(BaseModel):
    check: dict[str, Any]  # as the configuration writes it
    reason: str
    start: float  # the score it gives at HEAD


class DraftCriterion(BaseModel):
    id: str
    title: str
    checks: list[DraftCheck]
    claimed: float | None = None
    line: int | None = None


class DraftPillar(BaseModel):
    id: str
    title: str
    criteria: list[DraftCriterion]


class Draft(BaseModel):
    project: str
    title: str
    commit: str
    document: str | None = None
    status_docs: dict[str, str] = Field(default_factory=dict)  # source id -> path in the repository
    pillars: list[DraftPillar]


def slug(text: str, taken: set[str] | None = None) -> str:
    """A configuration id from a title: lower case words joined by "-", at most 40 characters, unique in `taken`."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    base = ""
    for w in words:
        if len(base) + len(w) + 1 > 40:
            break
        base = f"{base}-{w}" if base else w
    base = base or (words[0][:40] if words else "untitled")
    chosen, n = base, 2
    while taken is not None and chosen in taken:
        chosen, n = f"{base}-{n}", n + 1
    if taken is not None:
        taken.add(chosen)
    return chosen


def _scaled(count: int) -> dict[str, Any]:
    return {"scale": [0, max(2, 2 * count)]}


def _start(count: int) -> float:
    return count / max(2, 2 * count)


def is_test_file(path: str) -> bool:
    """A test file by its language's convention (what `@tests` and the test_cases signal read)."""
    return language_of(path) is not None


# --- (a) what the document names -----------------------------------------------------------


def _resolve(token: str, files: set[str], by_name: dict[str, list[str]]) -> str | None:
    """The file at HEAD a token of the document names: the path itself, or a unique file of that name or suffix."""
    token = token.strip("./") if not token.startswith("./") else token[2:]
    if token in files:
        return token
    if "." not in posixpath.basename(token):
        return None  # a bare word ("Durability") is no file name
    found = [p for p in by_name.get(posixpath.basename(token), []) if p == token or p.endswith("/" + token)]
    return found[0] if len(found) == 1 else None


def _mentions(lines: list[tuple[int, str]], view: RepoView, by_name: dict[str, list[str]]) -> list[DraftCheck]:
    files = set(view.files)
    checks: list[DraftCheck] = []
    seen: set[str] = set()
    for number, text in lines:
        for token in _TOKEN.findall(text):
            path = _resolve(token, files, by_name)
            if path is not None and path not in seen:
                seen.add(path)
                checks.append(_file_check(path, number, view))
            elif path is None and _TEST_NAME.match(token) and token not in seen:
                found = _named_test(token, number, view)
                if found is not None:
                    seen.add(token)
                    checks.append(found)
    return checks


def _file_check(path: str, number: int, view: RepoView) -> DraftCheck:
    """A test file counts its test cases (or its test definitions); another file is there or not."""
    where = glob.escape(path)  # the path as a glob that matches it alone
    cases = sum(1 for t in view.tests if t.path == path)
    if view.tests_signal and cases:
        return DraftCheck(check={"source": "repo", "signal": "test_cases", "glob": where, "transform": _scaled(cases)},
                          reason=f"document line {number} names {path}: {cases} test case(s) there at HEAD",
                          start=_start(cases))
    definition = _DEFINITIONS.get(posixpath.splitext(path)[1])
    if is_test_file(path) and definition and path in view.texts:
        count = sum(1 for _ in compile_regex(definition, multiline=True).finditer(view.texts[path]))
        if count:
            return DraftCheck(
                check={"source": "repo", "signal": "content_match", "glob": where, "regex": definition,
                       "field": "matches", "transform": _scaled(count)},
                reason=f"document line {number} names {path}: {count} test definition(s) there at HEAD",
                start=_start(count))
    return DraftCheck(check={"source": "repo", "signal": "file_exists", "path": path},
                      reason=f"document line {number} names {path}, present at HEAD", start=1.0)


def _named_test(name: str, number: int, view: RepoView) -> DraftCheck | None:
    """A test the document names: the test cases of that name, or else its definition in a test file."""
    pattern = f"^{re.escape(name)}$"
    exact = compile_regex(pattern)
    cases = [t for t in view.tests if any(exact.search(s) for s in (t.name, t.scope or "", t.path))]
    if view.tests_signal and cases:
        files = sorted({t.path for t in cases})
        return DraftCheck(check={"source": "repo", "signal": "test_cases", "match": pattern,
                                 "transform": _scaled(len(cases))},
                          reason=f"document line {number} names test {name}: {len(cases)} test case(s) of that name "
                                 f"at HEAD, in {', '.join(files[:3])}", start=_start(len(cases)))
    found = _test_definition(name, view)
    if found is None:
        return None
    where, count = found
    return DraftCheck(
        check={"source": "repo", "signal": "content_match", "glob": glob.escape(where), "regex": rf"\b{name}\b",
               "field": "matches", "transform": _scaled(count)},
        reason=f"document line {number} names test {name}, defined in {where} at HEAD ({count} mention(s) there now)",
        start=_start(count))


def _test_definition(name: str, view: RepoView) -> tuple[str, int] | None:
    """(the test file that defines `name`, how often it names it), the first such file in path order."""
    regex = compile_regex(rf"\b{re.escape(name)}\b", multiline=True)
    for path in sorted(view.texts):
        if is_test_file(path):
            count = sum(1 for _ in regex.finditer(view.texts[path]))
            if count:
                return path, count
    return None


# --- (b) test cases named like the criterion -------------------------------------------------


def _named_like(title: str, view: RepoView) -> DraftCheck | None:
    """A `test_cases` check over the tests whose names share significant words with `title`."""
    wanted = stems(title)
    matching = [t for t in view.tests if overlap(wanted, f"{t.scope or ''} {t.name}").shared]
    if not matching:
        return None
    words: set[str] = set()
    for t in matching:
        words |= words_of(f"{t.scope or ''} {t.name}", wanted)
    regex = match_regex(words)
    found = compile_regex(regex)
    # The signal matches the regex on the name, the scope and the path: count as it will.
    count = sum(1 for t in view.tests if any(found.search(s) for s in (t.name, t.scope or "", t.path)))
    names = ", ".join(t.name for t in matching[:_MAX_TEST_NAMES]) + (", ..." if len(matching) > _MAX_TEST_NAMES else "")
    return DraftCheck(
        check={"source": "repo", "signal": "test_cases", "match": regex, "transform": _scaled(count)},
        reason=f"{len(matching)} test case(s) share the words {', '.join(sorted(words))} with the title ({names}); "
               f"{count} match at HEAD",
        start=_start(count))


def _placeholder(title: str, view: RepoView) -> DraftCheck:
    """Evidence that can still rise: the title's words in the test files (a start that calibrate refines)."""
    wanted = stems(title)
    written = words_of(title, wanted) or {title.split()[0].lower()}
    regex = match_regex(written)
    found = compile_regex(regex)
    count = sum(1 for path, text in view.texts.items() if is_test_file(path) and found.search(text))
    if view.tests_signal:
        check = {"source": "repo", "signal": "test_cases", "match": regex, "transform": _scaled(0)}
        return DraftCheck(check=check, start=0.0,
                          reason=f"no test case is named with the title's words ({', '.join(sorted(written))}) yet: "
                                 "0 now, 1.0 at two")
    check = {"source": "repo", "signal": "content_match", "glob": TESTS_GLOB, "regex": regex, "field": "files",
             "transform": _scaled(count)}
    return DraftCheck(check=check, start=_start(count),
                      reason=f"the title's words ({', '.join(sorted(written))}) in test files: {count} file(s) at HEAD")


# --- (c) "N/M pass" lines of status documents ------------------------------------------------


class _RatioLine(BaseModel):
    source: str
    path: str
    line: int
    label: str
    num: int
    den: int


def _ratio_lines(docs: list[StatusDoc]) -> list[_RatioLine]:
    found: list[_RatioLine] = []
    for n, doc in enumerate(docs):
        source = "status" if n == 0 else f"status-{n + 1}"
        for number, text in enumerate(doc.text.splitlines(), start=1):
            if "pass" not in text.lower():
                continue
            read = label_value(without_list_marker(text).strip(), RATIO_VALUE)
            if read is None or int(read[1].group("den")) == 0:
                continue
            found.append(_RatioLine(source=source, path=doc.path, line=number, label=read[0].strip(" *_`"),
                                    num=int(read[1].group("num")), den=int(read[1].group("den"))))
    return found


def _ratio_check(r: _RatioLine) -> DraftCheck:
    where = f"{r.path}:{r.line} reads {r.label}: {r.num}/{r.den}"
    if r.num < r.den:
        return DraftCheck(check={"source": r.source, "signal": "ratio", "label": r.label},
                          reason=f"{where} (the pass ratio, {r.num / r.den:.2f} now)", start=r.num / r.den)
    return DraftCheck(check={"source": r.source, "signal": "ratio", "label": r.label, "field": "numerator",
                             "transform": _scaled(r.num)},
                      reason=f"{where}: all pass, so the count of passing ones is read, 1.0 at twice as many",
                      start=_start(r.num))


def _assign_ratios(ratios: list[_RatioLine], titles: list[str]) -> dict[int, list[_RatioLine]]:
    """Each ratio line to the criterion whose title it shares the most words with (none: not drafted)."""
    out: dict[int, list[_RatioLine]] = {}
    for r in ratios:
        scored = [(len(overlap(t, r.label).shared), -i) for i, t in enumerate(titles)]
        best = max(scored, default=(0, 0))
        if best[0]:
            out.setdefault(-best[1], []).append(r)
    return out


# --- a whole draft -----------------------------------------------------------------------------


def criterion_checks(title: str, near: list[tuple[int, str]], ratios: list[_RatioLine], view: RepoView,
                     by_name: dict[str, list[str]]) -> list[DraftCheck]:
    """The checks of one criterion; at least one of them starts below 1.0."""
    checks = _mentions(near, view, by_name)
    named = _named_like(title, view)
    if named is not None:
        checks.append(named)
    checks += [_ratio_check(r) for r in ratios]
    if all(c.start >= 1.0 for c in checks):
        checks.append(_placeholder(title, view))
    return checks


def _near(pillar: ClaimedPillar, end: int, lines: list[str]) -> list[list[tuple[int, str]]]:
    """For each criterion, the document lines near it: its block, and later lines of its pillar sharing its words."""
    starts = [c.line for c in pillar.criteria]
    stop = min([x for x in (pillar.claimed_line, end) if x is not None and x > max(starts, default=0)] or [end])
    blocks = [[(n, lines[n - 1]) for n in range(s, (starts[i + 1] if i + 1 < len(starts) else stop))]
              for i, s in enumerate(starts)]
    for n in range(stop, end):
        text = lines[n - 1]
        scored = [len(overlap(c.title, text).shared) for c in pillar.criteria]
        if scored and max(scored):
            blocks[scored.index(max(scored))].append((n, text))
    return blocks


def draft_criteria(titles: list[list[str]], near: list[list[list[tuple[int, str]]]], view: RepoView,
                   status: list[StatusDoc]) -> tuple[list[list[list[DraftCheck]]], dict[str, str]]:
    """The checks of each criterion (titles by pillar, with the document lines near each), and the status
    documents they read (source id -> path)."""
    by_name = _by_name(view.files)
    ratios = _ratio_lines(status)
    assigned = _assign_ratios(ratios, [t for row in titles for t in row])
    drafted: list[list[list[DraftCheck]]] = []
    index = 0
    for row, near_row in zip(titles, near):
        drafted.append([])
        for title, lines in zip(row, near_row):
            drafted[-1].append(criterion_checks(title, lines, assigned.get(index, []), view, by_name))
            index += 1
    used = {c.check["source"] for row in drafted for checks in row for c in checks}
    return drafted, {r.source: r.path for r in ratios if r.source in used}


def draft_from_document(doc: ProgressDocument, text: str, view: RepoView, status: list[StatusDoc], *,
                        document: str) -> Draft:
    """A draft with the document's pillars and criteria, in its order, and checks found in `view`."""
    lines = re.split(r"\r\n?|\n", text)
    ends = [p.line for p in doc.pillars[1:]] + [doc.overall_line or len(lines) + 1]
    titles = [[c.title for c in p.criteria] for p in doc.pillars]
    drafted, status_docs = draft_criteria(titles, [_near(p, end, lines) for p, end in zip(doc.pillars, ends)],
                                          view, status)
    pillar_ids: set[str] = set()
    pillars = []
    for pillar, checks_of in zip(doc.pillars, drafted):
        ids: set[str] = set()
        criteria = [DraftCriterion(id=slug(c.title, ids), title=c.title, checks=checks, claimed=c.score, line=c.line)
                    for c, checks in zip(pillar.criteria, checks_of)]
        pillars.append(DraftPillar(id=slug(pillar.title, pillar_ids), title=pillar.title, criteria=criteria))
    return Draft(project=slug(view.name), title=view.name, commit=view.commit, document=document,
                 status_docs=status_docs, pillars=pillars)


def _by_name(files: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path in files:
        out.setdefault(posixpath.basename(path), []).append(path)
    return out
