"""Evidence from a Markdown document: declared scores, ratios, checklists, mentions.

The document is read from disk, or from a git source at a given commit, and
parsed once with markdown-it; every request is then answered from the parsed
lines and headings. Line numbers in provenance are 1-based source lines.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from collectors.evidence import (
    CollectResult,
    Evidence,
    EvidenceError,
    EvidenceRequest,
    Provenance,
    SourceFault,
    failed,
)
from collectors.regex import compile_regex, regex_param

if TYPE_CHECKING:  # collectors.git is imported lazily: see _read_git
    from collectors.git import GitSource

__all__ = [
    "SIGNALS",
    "Checklist",
    "DeclaredScore",
    "DocSource",
    "Mentions",
    "Ratio",
    "collect",
    "decimal",
    "label_value",
    "normalise_title",
    "plain_text",
    "read_document",
]

_MAX_MENTION_LINES = 20
MAX_DOCUMENT_BYTES = 1_000_000  # the size limit of a document, here and in verify-doc and import


class DocSource(BaseModel):
    """A Markdown document, on disk or inside a git source."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["doc"] = "doc"
    id: str
    path: str
    git: str | None = None
    max_bytes: int = MAX_DOCUMENT_BYTES


class DeclaredScore(BaseModel):
    """A score written next to a title: ``Survive restart: 0.60``."""

    model_config = ConfigDict(extra="forbid")
    default_field: ClassVar[str] = "score"
    default_transform: ClassVar[str | None] = "ratio"

    signal: Literal["declared_score"] = "declared_score"
    title: str


class Ratio(BaseModel):
    """A fraction written next to a label: ``Scheduler stress tests: 5/5``."""

    model_config = ConfigDict(extra="forbid")
    default_field: ClassVar[str] = "ratio"
    default_transform: ClassVar[str | None] = "ratio"

    signal: Literal["ratio"] = "ratio"
    label: str


class Checklist(BaseModel):
    """The share of ticked task items (``- [x]``) under a heading."""

    model_config = ConfigDict(extra="forbid")
    default_field: ClassVar[str] = "ratio"
    default_transform: ClassVar[str | None] = "ratio"

    signal: Literal["checklist"] = "checklist"
    heading: str


class Mentions(BaseModel):
    """How often a regular expression matches, in the document or one section."""

    model_config = ConfigDict(extra="forbid")
    default_field: ClassVar[str] = "count"
    default_transform: ClassVar[str | None] = "bool"

    signal: Literal["mentions"] = "mentions"
    regex: str
    heading: str | None = None

    _re2 = field_validator("regex")(lambda cls, v: regex_param(v))


SIGNALS: dict[str, type[BaseModel]] = {
    "declared_score": DeclaredScore,
    "ratio": Ratio,
    "checklist": Checklist,
    "mentions": Mentions,
}


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark")


def _lines_of(inline: Token) -> list[str]:
    """The visible text of a parsed inline token, one string per source line."""
    lines: list[str] = [""]
    for child in inline.children or []:
        if child.type in ("softbreak", "hardbreak"):
            lines.append("")
        elif child.type in ("text", "code_inline"):
            lines[-1] += child.content
        elif child.type == "image":  # its alt text is in its children
            lines[-1] += "".join(c.content for c in child.children or [])
    return lines


def plain_text(text: str) -> str:
    """The text a reader sees in inline Markdown: no emphasis, code ticks or link targets."""
    return "\n".join(line for block in _markdown().parseInline(text) for line in _lines_of(block))


def normalise_title(text: str) -> str:
    """A title reduced for matching: lowercase, no markup, punctuation runs as one space."""
    return re.sub(r"[\W_]+", " ", plain_text(text).lower()).strip()


# ---------------------------------------------------------------------------
# Parsing the document once


@dataclass(frozen=True)
class _Heading:
    line: int  # 1-based
    level: int
    key: str  # normalise_title of its text
    end: int  # first line after its section (1-based, exclusive)


@dataclass(frozen=True)
class _Parsed:
    lines: list[tuple[int, str]]  # (1-based line, plain text) of every inline line
    headings: list[_Heading]
    tasks: list[tuple[int, bool]]  # (1-based line, ticked) of every task list item
    raw_lines: list[str]


_LIST_MARKER = re.compile(r"\s*(?:[-*+]|\d{1,9}[.)])\s+")  # used with .match: tried at the start only
_TASK = re.compile(r"^\[([ xX])\](?:\s|$)")


def _parse(text: str) -> _Parsed:
    # markdown-it counts lines after turning \r\n and \r into \n; so must we.
    text = re.sub(r"\r\n?", "\n", text)
    tokens = _markdown().parse(text)
    raw_lines = text.split("\n")
    lines: list[tuple[int, str]] = []
    open_headings: list[tuple[int, int, str]] = []
    tasks: list[tuple[int, bool]] = []
    for i, tok in enumerate(tokens):
        if tok.type != "inline" or tok.map is None:
            continue
        # Paragraph content keeps one source line per "\n", so offsets map to lines.
        raw_content = tok.content.split("\n")
        visible = _lines_of(tok)
        if len(visible) != len(raw_content):  # a code span or HTML across lines: go line by line
            visible = [plain_text(raw) for raw in raw_content]
        lines.extend((tok.map[0] + offset + 1, text) for offset, text in enumerate(visible))
        opener = tokens[i - 1] if i else None
        if opener is not None and opener.type == "heading_open":
            open_headings.append((tok.map[0] + 1, int(opener.tag[1]), normalise_title(tok.content)))
        elif _is_list_paragraph(tokens, i):
            ticked = _TASK.match(tok.content)
            if ticked:
                tasks.append((tok.map[0] + 1, ticked.group(1) != " "))
    return _Parsed(lines, _close_sections(open_headings, len(raw_lines)), tasks, raw_lines)


def _is_list_paragraph(tokens: list[Token], i: int) -> bool:
    # A list item's first paragraph: list_item_open, paragraph_open, inline.
    return i >= 2 and tokens[i - 1].type == "paragraph_open" and tokens[i - 2].type == "list_item_open"


def _close_sections(found: list[tuple[int, int, str]], n_lines: int) -> list[_Heading]:
    # A section runs to the next heading of the same or a higher level.
    headings = []
    for k, (line, level, key) in enumerate(found):
        end = next((ln for ln, lv, _ in found[k + 1 :] if lv <= level), n_lines + 1)
        headings.append(_Heading(line, level, key, end))
    return headings


def _find_heading(parsed: _Parsed, wanted: str) -> _Heading | None:
    key = normalise_title(wanted)
    exact = [h for h in parsed.headings if h.key == key]
    if exact:
        return exact[0]
    # Failing an exact match, the first heading holding the words as a whole run.
    return next((h for h in parsed.headings if key and f" {key} " in f" {h.key} "), None)


# ---------------------------------------------------------------------------
# Signals: each returns (value, line) or raises _Missing / SourceFault

# A figure ends the line or is followed by a comment; "%", "/" or more digits
# after it mean it is some other kind of figure. A decimal comma ("0,70") is a
# decimal point: read as 0 it would be a silent, wrong score.
_END = r"(?![\w%/]|[.,]\d)"
_SCORE_VALUE = re.compile(rf"\s*(?P<num>[-+]?(?:\d+(?:\.\d*|,\d+)?|[.,]\d+)){_END}")
_RATIO_VALUE = re.compile(rf"\s*(?P<num>\d+)\s*/\s*(?P<den>\d+){_END}")


def label_value(text: str, value: re.Pattern[str]) -> tuple[str, re.Match[str]] | None:
    """The first reading of `text` as ``label: value``: the label ends at the first colon that `value` follows.

    Linear in the line's length: a lazy ``(.+?)\\s*:`` regex backtracks over
    every run of spaces once per character before it (minutes on a long line).
    The label is never empty and has no trailing space.
    """
    colon = text.find(":")
    while colon != -1:
        label = text[:colon].rstrip()
        if label and (match := value.match(text, colon + 1)):
            return label, match
        colon = text.find(":", colon + 1)
    return None


def decimal(written: str) -> float:
    """A figure as written, with a decimal point or a decimal comma."""
    return float(written.replace(",", "."))


class _Missing(Exception):
    """What was asked for is not in the document (error kind not_found)."""


def _find_line(parsed: _Parsed, value: re.Pattern[str], title: str) -> tuple[int, re.Match[str]] | None:
    key = normalise_title(title)
    for line, text in parsed.lines:
        marker = _LIST_MARKER.match(text)
        found = label_value((text[marker.end():] if marker else text).strip(), value)
        if found and normalise_title(found[0]) == key:
            return line, found[1]
    return None


def _declared_score(parsed: _Parsed, p: DeclaredScore, path: str) -> tuple[dict[str, Any], int | None]:
    found = _find_line(parsed, _SCORE_VALUE, p.title)
    if found is None:
        raise _Missing(f"{path}: no line '{p.title}: <score>'")
    line, match = found
    score = decimal(match.group("num"))
    if not 0.0 <= score <= 1.0:
        raise SourceFault("malformed", f"{path}:{line}: score {match.group('num')} for {p.title!r} is outside 0-1")
    return {"score": score}, line


def _ratio(parsed: _Parsed, p: Ratio, path: str) -> tuple[dict[str, Any], int | None]:
    found = _find_line(parsed, _RATIO_VALUE, p.label)
    if found is None:
        raise _Missing(f"{path}: no line '{p.label}: <n>/<d>'")
    line, match = found
    num, den = int(match.group("num")), int(match.group("den"))
    if den == 0:
        raise SourceFault("malformed", f"{path}:{line}: ratio {num}/0 for {p.label!r} has a zero denominator")
    return {"ratio": num / den, "numerator": num, "denominator": den}, line


def _checklist(parsed: _Parsed, p: Checklist, path: str) -> tuple[dict[str, Any], int | None]:
    heading = _find_heading(parsed, p.heading)
    if heading is None:
        raise _Missing(f"{path}: no heading {p.heading!r}")
    items = [ticked for line, ticked in parsed.tasks if heading.line < line < heading.end]
    if not items:
        raise _Missing(f"{path}:{heading.line}: no task items (- [ ] / - [x]) under heading {p.heading!r}")
    done = sum(items)
    return {"ratio": done / len(items), "done": done, "total": len(items)}, heading.line


def _mentions(parsed: _Parsed, p: Mentions, path: str) -> tuple[dict[str, Any], int | None]:
    first, end = 1, len(parsed.raw_lines) + 1
    heading = None
    if p.heading is not None:
        heading = _find_heading(parsed, p.heading)
        if heading is None:
            raise _Missing(f"{path}: no heading {p.heading!r}")
        first, end = heading.line + 1, heading.end
    body = "\n".join(parsed.raw_lines[first - 1 : end - 1])
    starts = [m.start() for m in compile_regex(p.regex, multiline=True).finditer(body)]
    lines = [first + body.count("\n", 0, s) for s in starts[:_MAX_MENTION_LINES]]
    line = heading.line if heading is not None else (lines[0] if lines else None)
    return {"count": len(starts), "lines": lines}, line


_ANSWER = {
    "declared_score": _declared_score,
    "ratio": _ratio,
    "checklist": _checklist,
    "mentions": _mentions,
}


# ---------------------------------------------------------------------------
# Reading the document


def _decode(data: bytes, path: str) -> str:
    if b"\0" in data:
        raise SourceFault("malformed", f"document is a binary file: {path}")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise SourceFault("malformed", f"document is not UTF-8 text: {path} (byte {exc.start})") from None


def read_document(path: str, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
    """The text of the regular file `path`, at most `max_bytes` long; raises SourceFault.

    Only a regular file is read: a FIFO would block for good and a device
    such as /dev/zero would fill the memory. Opened without blocking and then
    checked, so nothing can swap the file in between.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SourceFault("not_found", f"document not found: {path}") from None
    except OSError as exc:
        raise SourceFault("unreachable", f"cannot read document {path}: {exc.strerror}", retryable=True) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceFault("malformed", f"document is not a regular file: {path}")
        if info.st_size > max_bytes:
            raise SourceFault("malformed", f"document too large: {path} ({info.st_size} bytes, limit {max_bytes} bytes)")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise SourceFault("unreachable", f"cannot read document {path}: {exc.strerror}", retryable=True) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew after the check
        raise SourceFault("malformed", f"document too large: {path} (limit {max_bytes} bytes)")
    return _decode(data, path)


def _read_disk(source: DocSource) -> str:
    return read_document(source.path, source.max_bytes)


def _read_git(source: DocSource, repo: GitSource, commit: str | None, cache_dir: Path | None) -> tuple[str, str]:
    # Imported here so that this module loads even where git support is absent.
    from collectors.git import read_text

    # The runner always passes cache_dir; a local repository (tests) needs none. One rule for a document
    # wherever it is read: text that is not UTF-8 is refused (malformed), never read with replacements.
    text, sha = read_text(repo, source.path, cache_dir=cache_dir, commit=commit, max_bytes=source.max_bytes,  # type: ignore[arg-type]
                          strict=True)
    return text.removeprefix("\ufeff"), sha


def _answer(parsed: _Parsed, request: EvidenceRequest, path: str) -> tuple[dict[str, Any], int | None]:
    model = SIGNALS.get(request.signal)
    if model is None:
        raise SourceFault("unsupported", f"unknown doc signal {request.signal!r} (known: {', '.join(SIGNALS)})")
    try:
        params = model.model_validate({**request.params, "signal": request.signal})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise SourceFault("unsupported", f"invalid parameters for doc signal {request.signal!r}: {where}: {first['msg']}") from None
    return _ANSWER[request.signal](parsed, params, path)  # type: ignore[operator]


def _evidence(source: DocSource, parsed: _Parsed, request: EvidenceRequest, sha: str | None, now: datetime) -> Evidence:
    value: dict[str, Any] | None = None
    error: EvidenceError | None = None
    line: int | None = None
    try:
        value, line = _answer(parsed, request, source.path)
    except _Missing as missing:
        error = EvidenceError(kind="not_found", message=str(missing))
    except SourceFault as fault:
        error = fault.error
    return Evidence(
        source=source.id,
        signal=request.signal,
        params=request.params,
        value=value,
        error=error,
        provenance=Provenance(path=source.path, commit=sha, line=line),
        observed_at=now,
    )


def collect(
    source: DocSource,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    repo: GitSource | None = None,
    commit: str | None = None,
    cache_dir: Path | None = None,
) -> CollectResult:
    """Answer every request from one reading of the document."""
    sha: str | None = None
    try:
        if repo is not None:
            text, sha = _read_git(source, repo, commit, cache_dir)
        elif source.git is not None:
            raise SourceFault("unsupported", f"document {source.path} is in git source {source.git!r}, which was not given")
        else:
            text = _read_disk(source)
    except SourceFault as fault:
        return failed(source.id, requests, fault.error, now=now)

    parsed = _parse(text)
    evidence = [_evidence(source, parsed, request, sha, now) for request in requests]
    fingerprint = sha or hashlib.sha256(text.encode()).hexdigest()[:16]
    return CollectResult(source=source.id, evidence=evidence, fingerprint=fingerprint)
