"""Hand-written progress snapshot documents: read their claims, recompute them.

A document is read line by line rather than as a Markdown tree, because the
same shape arrives as text copied from a rendered page: the ``#`` marks are
gone, numbering is ``2)`` or ``2.``, and navigation and footer lines surround
it. Inline markup (``**58%**``) is removed with the Markdown inline parser.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import lru_cache

from markdown_it import MarkdownIt
from pydantic import BaseModel, computed_field

from collectors.markdown import decimal, label_value, plain_text
from daemon.errors import InputError
from daemon.scoring.arithmetic import display, round_half_up, weighted_mean

__all__ = ["ClaimedCriterion", "ClaimedPillar", "Figure", "ProgressDocument", "Verification", "parse_progress_document",
           "verify"]


class ClaimedCriterion(BaseModel):
    title: str
    score: float
    line: int


class ClaimedPillar(BaseModel):
    title: str
    line: int
    criteria: list[ClaimedCriterion]
    claimed: float | None = None
    claimed_line: int | None = None
    claimed_decimals: int = 0


class ProgressDocument(BaseModel):
    pillars: list[ClaimedPillar]
    overall_claimed: float | None = None
    overall_line: int | None = None
    overall_decimals: int = 0
    date: dt.date | None = None


class Figure(BaseModel):
    """One figure of the document: what it claims and what its criteria give."""

    what: str  # "pillar" | "overall"
    title: str
    line: int | None
    claimed: float | None
    computed: float | None  # 0-100, full precision
    computed_display: str  # rounded half-up to the claim's decimals
    agrees: bool | None  # None when nothing was claimed


class Verification(BaseModel):
    figures: list[Figure]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def disagreements(self) -> list[Figure]:
        return [f for f in self.figures if f.agrees is False]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return not self.disagreements


# --- line shapes ------------------------------------------------------------------

# The closing "###" of a heading is cut in code (_heading_text): a regex for it backtracks quadratically.
_MD_HEADING = re.compile(r" {0,3}(#{1,6})\s+(.*)")
# Copied text keeps a pillar's number: "2) Title", "2. Title", "Pillar 2: Title".
_NUMBERED = re.compile(r"^(?:pillar\s+(?P<p>\d+)\s*[:.)\-–—]|(?P<n>\d+)[.)])\s*(?P<title>\S.*)$", re.IGNORECASE)
_BULLET = re.compile(r"^(?:[-*+•·]|\d{1,3}[.)])\s+")
_PERCENT = re.compile(r"(?P<num>\d+(?:[.,](?P<dec>\d+))?)\s*%")  # "58,5%" is 58.5, never "5%"
_DATE = re.compile(r"^date\s*:\s*(\d{4}-\d{2}-\d{2})\b", re.IGNORECASE)
_PILLAR_CLAIM = re.compile(
    r"^(?:pillar\b[^:]*?\s)?(?:completion|progress|score)\s*:\s*" + _PERCENT.pattern, re.IGNORECASE
)
# "title: score" (split by collectors.markdown.label_value, in linear time), the score
# 0-1 (a decimal comma reads as a point) and then nothing but an optional comment,
# so that prose such as "Main gaps: 1 flaky suite" is not read as a criterion.
_CRITERION_VALUE = re.compile(
    r"\s*(?P<num>\d+(?:[.,]\d+)?|[.,]\d+)"
    r"\s*(?:$|\.(?:\s|$)|[(\[—–#;,]|-{1,2}\s|//)"
)


def _decimals(match: re.Match[str]) -> int:
    return len(match.group("dec") or "")


class _Builder:
    """Collects pillars while walking the lines, deciding where each one starts."""

    def __init__(self) -> None:
        self.pillars: list[ClaimedPillar] = []
        self.level: int | None = None  # Markdown level of the current pillar's heading
        self.number: int | None = None  # its number, when it has one
        self.closed = False

    @property
    def current(self) -> ClaimedPillar | None:
        return self.pillars[-1] if self.pillars and not self.closed else None

    def close(self) -> None:
        """The overall figure ends the pillars: footer lines after it belong to none."""
        self.closed = True

    def _empty(self) -> bool:
        pillar = self.pillars[-1] if self.pillars else None
        return pillar is None or (not pillar.criteria and pillar.claimed is None)

    def markdown_heading(self, level: int, text: str, line: int) -> None:
        numbered = _NUMBERED.match(text)
        # A deeper heading inside a pillar ("#### Evidence") is one of its sections;
        # only an unnumbered, still empty one ("# Progress snapshot") gives way.
        deeper = self.current is not None and self.level is not None and level > self.level
        if deeper and (self.number is not None or not self._empty()):
            return
        self._open(_title(numbered, text), line, level, _number(numbered))

    def numbered_line(self, match: re.Match[str], line: int) -> None:
        """A copied "2) Title" line: a new pillar, unless it reads as a list item or a footer link."""
        number = _number(match)
        settled = self.closed or not self._empty()
        if settled and number is not None and self.number is not None and number <= self.number:
            return  # numbering restarted: a list ("Main gaps") or footer, not a further pillar
        if settled and self.level is not None:
            return  # Markdown pillars start at headings only
        self._open(_title(match, match.group(0)), line, None, number)

    def _open(self, title: str, line: int, level: int | None, number: int | None) -> None:
        if self.pillars and self._empty():
            self.pillars.pop()  # a title line or navigation: nothing was claimed under it
        self.pillars.append(ClaimedPillar(title=title, line=line, criteria=[]))
        self.level, self.number, self.closed = level, number, False


def _number(match: re.Match[str] | None) -> int | None:
    if match is None:
        return None
    return int(match.group("p") or match.group("n"))


def _title(numbered: re.Match[str] | None, text: str) -> str:
    return (numbered.group("title") if numbered else text).strip()


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark")


def _fenced_lines(text: str) -> set[int]:
    """The 1-based numbers of the lines in fenced code blocks (markers included), as markdown-it finds them."""
    return {line + 1 for tok in _markdown().parse(text) if tok.type == "fence" and tok.map
            for line in range(tok.map[0], tok.map[1])}


def parse_progress_document(text: str) -> ProgressDocument:
    """Read a progress snapshot document, Markdown or copied from a rendered page.

    Raises InputError when no pillar has both criterion scores and a claimed
    pillar figure: such a text (a README, a configuration) is no snapshot.
    """
    builder = _Builder()
    doc = ProgressDocument(pillars=[])
    lines = re.split(r"\r\n?|\n", text)
    # Code is not a claim: "retry: 0.2" in a YAML example is no criterion. Only fenced code is
    # skipped: copied text is often indented, and an indented block would swallow it.
    fenced = _fenced_lines("\n".join(lines))
    for number, raw in enumerate(lines, start=1):
        if number in fenced:
            continue
        heading = _MD_HEADING.match(raw)
        line = plain_text(_heading_text(heading.group(2)) if heading else raw).strip()
        if not line:
            continue
        if heading and not _is_overall(line):
            builder.markdown_heading(len(heading.group(1)), line, number)
            continue
        _read_line(doc, builder, line, number)
    doc.pillars = [p for p in builder.pillars if p.criteria or p.claimed is not None]
    if not any(p.criteria and p.claimed is not None for p in doc.pillars):
        raise InputError(
            "no pillars found: not a progress snapshot; no pillar heading has both 'criterion: score' lines "
            "(scores 0-1) and a claimed figure ('Pillar completion: 70%')"
        )
    return doc


def _heading_text(text: str) -> str:
    """A Markdown heading's text without its optional closing run of "#"."""
    text = text.rstrip()
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        return bare.rstrip()
    return text


def _is_overall(line: str) -> bool:
    return "overall" in line.lower() and _PERCENT.search(line) is not None


def _read_line(doc: ProgressDocument, builder: _Builder, line: str, number: int) -> None:
    item = _BULLET.sub("", line, count=1)
    if doc.date is None and (found := _DATE.match(item)):
        try:
            doc.date = dt.date.fromisoformat(found.group(1))
        except ValueError:
            pass  # not a real date: leave it uncaptured
        return
    if _is_overall(line):
        found = _PERCENT.search(line)
        if doc.overall_claimed is None and found:
            doc.overall_claimed, doc.overall_line = decimal(found.group("num")), number
            doc.overall_decimals = _decimals(found)
        builder.close()
        return
    pillar = builder.current
    if pillar is not None and (found := _PILLAR_CLAIM.match(item)):
        if pillar.claimed is None:
            pillar.claimed, pillar.claimed_line = decimal(found.group("num")), number
            pillar.claimed_decimals = _decimals(found)
        return
    criterion = label_value(item, _CRITERION_VALUE)
    if criterion and pillar is not None and 0.0 <= (score := decimal(criterion[1].group("num"))) <= 1.0:
        pillar.criteria.append(ClaimedCriterion(title=criterion[0].strip(), score=score, line=number))
        return
    numbered = _NUMBERED.match(line)
    if numbered and not criterion and not _PERCENT.search(line):
        builder.numbered_line(numbered, number)


def _agrees(computed: float | None, claimed: float | None, decimals: int) -> bool | None:
    if claimed is None:
        return None
    if computed is None:
        return False  # a claim with nothing to back it cannot be confirmed
    return round_half_up(computed, decimals) == Decimal(repr(claimed))


def verify(doc: ProgressDocument) -> Verification:
    """Recompute every pillar and the overall figure; compare each with its claim."""
    figures: list[Figure] = []
    computed_pillars: list[float] = []
    for pillar in doc.pillars:
        mean = weighted_mean((c.score, 1.0) for c in pillar.criteria)
        computed = None if mean is None else mean * 100
        if computed is not None:
            computed_pillars.append(computed)  # unrounded: overall never sees rounded pillars
        figures.append(
            Figure(
                what="pillar",
                title=pillar.title,
                line=pillar.claimed_line if pillar.claimed_line is not None else pillar.line,
                claimed=pillar.claimed,
                computed=computed,
                computed_display=display(computed, pillar.claimed_decimals, suffix="%"),
                agrees=_agrees(computed, pillar.claimed, pillar.claimed_decimals),
            )
        )
    overall = weighted_mean((value, 1.0) for value in computed_pillars)
    figures.append(
        Figure(
            what="overall",
            title="Overall",
            line=doc.overall_line,
            claimed=doc.overall_claimed,
            computed=overall,
            computed_display=display(overall, doc.overall_decimals, suffix="%"),
            agrees=_agrees(overall, doc.overall_claimed, doc.overall_decimals),
        )
    )
    return Verification(figures=figures)
