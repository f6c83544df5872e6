"""Reading Markdown: the bounded document reader, the parsed lines and headings, ``label: value`` lines and figures.

Parsed once with markdown-it (CommonMark); line numbers are 1-based source
lines. Used by the document collector (:mod:`collectors.docs`) and by the
readers of hand-written progress documents (verify-doc, import).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from collectors.evidence import SourceFault

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = ["MAX_DOCUMENT_BYTES", "RATIO_VALUE", "SCORE_VALUE", "Heading", "Markdown", "decimal", "find_heading",
           "label_value", "normalise_title", "parse", "plain_text", "read_document", "without_list_marker"]

MAX_DOCUMENT_BYTES = 1_000_000  # the size limit of a document, here and in verify-doc and import


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    from markdown_it import MarkdownIt  # markdown-it loads only when a document is read: start-up time

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


@dataclass(frozen=True)
class Heading:
    """A heading and the extent of its section."""

    line: int  # 1-based
    level: int
    key: str  # normalise_title of its text
    end: int  # first line after its section (1-based, exclusive)


@dataclass(frozen=True)
class Markdown:
    """A parsed document: its visible lines, headings and task items."""

    lines: list[tuple[int, str]]  # (1-based line, plain text) of every inline line
    headings: list[Heading]
    tasks: list[tuple[int, bool]]  # (1-based line, ticked) of every task list item
    raw_lines: list[str]


_LIST_MARKER = re.compile(r"\s*(?:[-*+]|\d{1,9}[.)])\s+")  # used with .match: tried at the start only
_TASK = re.compile(r"^\[([ xX])\](?:\s|$)")


def parse(text: str) -> Markdown:
    """`text` parsed once: every later question is answered from the result."""
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
    return Markdown(lines, _close_sections(open_headings, len(raw_lines)), tasks, raw_lines)


def _is_list_paragraph(tokens: list[Token], i: int) -> bool:
    # A list item's first paragraph: list_item_open, paragraph_open, inline.
    return i >= 2 and tokens[i - 1].type == "paragraph_open" and tokens[i - 2].type == "list_item_open"


def _close_sections(found: list[tuple[int, int, str]], n_lines: int) -> list[Heading]:
    # A section runs to the next heading of the same or a higher level.
    headings = []
    for k, (line, level, key) in enumerate(found):
        end = next((ln for ln, lv, _ in found[k + 1 :] if lv <= level), n_lines + 1)
        headings.append(Heading(line, level, key, end))
    return headings


def find_heading(parsed: Markdown, wanted: str) -> Heading | None:
    """The heading titled `wanted` (compared by :func:`normalise_title`), else the first holding its words as a run."""
    key = normalise_title(wanted)
    exact = [h for h in parsed.headings if h.key == key]
    if exact:
        return exact[0]
    # Failing an exact match, the first heading holding the words as a whole run.
    return next((h for h in parsed.headings if key and f" {key} " in f" {h.key} "), None)


# A figure ends the line or is followed by a comment; "%", "/" or more digits
# after it mean it is some other kind of figure. A decimal comma ("0,70") is a
# decimal point: read as 0 it would be a silent, wrong score.
_END = r"(?![\w%/]|[.,]\d)"
SCORE_VALUE = re.compile(rf"\s*(?P<num>[-+]?(?:\d+(?:\.\d*|,\d+)?|[.,]\d+)){_END}")
RATIO_VALUE = re.compile(rf"\s*(?P<num>\d+)\s*/\s*(?P<den>\d+){_END}")


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


def without_list_marker(text: str) -> str:
    """A line's text without the list marker (``-``, ``*``, ``1.``) it may start with, stripped."""
    marker = _LIST_MARKER.match(text)
    return (text[marker.end():] if marker else text).strip()


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
