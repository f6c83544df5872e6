"""The doc kind's models: :class:`DocSource` and its signals' parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from collectors.evidence import SignalParams, signal_table
from collectors.markdown import MAX_DOCUMENT_BYTES
from collectors.regex import regex_param

__all__ = ["SIGNALS", "Checklist", "DeclaredScore", "DocSource", "Mentions", "Ratio"]


class DocSource(BaseModel):
    """A Markdown document, on disk or inside a git source."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["doc"] = "doc"
    id: str
    path: str
    git: str | None = None
    max_bytes: int = MAX_DOCUMENT_BYTES


class DeclaredScore(SignalParams):
    """A score written next to a title: ``Survive restart: 0.60``."""

    default_field, default_transform = "score", "ratio"
    signal: Literal["declared_score"] = "declared_score"
    title: str


class Ratio(SignalParams):
    """A fraction written next to a label: ``Scheduler stress tests: 5/5``."""

    default_field, default_transform = "ratio", "ratio"
    signal: Literal["ratio"] = "ratio"
    label: str


class Checklist(SignalParams):
    """The share of ticked task items (``- [x]``) under a heading."""

    default_field, default_transform = "ratio", "ratio"
    signal: Literal["checklist"] = "checklist"
    heading: str


class Mentions(SignalParams):
    """How often a regular expression matches, in the document or one section."""

    default_field, default_transform = "count", "bool"
    signal: Literal["mentions"] = "mentions"
    regex: str
    heading: str | None = None

    _re2 = field_validator("regex")(lambda cls, v: regex_param(v))


SIGNALS = signal_table(DeclaredScore, Ratio, Checklist, Mentions)
