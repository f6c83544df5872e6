"""Significant words: what a criterion's title and a test's name have in common.

A text is split into words at anything that is not a letter or a digit and at
the humps of camelCase (``TestRestartAfterCrash`` → test, restart, after,
crash); each word is lower-cased, dropped when it is a stop word, shorter than
three letters or a number, and stemmed with the Snowball English stemmer (the
``snowballstemmer`` package: "restarts", "restarting" → "restart"). Two texts
share a word when they share a stem.

The stop words are English function words plus the words every test name and
criterion title says without saying what it is about ("test", "should",
"check", "work"): :data:`STOP_WORDS`, kept short on purpose and listed here.
Everything here is pure.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import snowballstemmer

__all__ = ["STOP_WORDS", "Overlap", "match_regex", "overlap", "stems", "words_of"]

STOP_WORDS = frozenset(["a", "about", "above", "after", "again", "against", "all", "also", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "done", "down", "during", "each", "either", "every", "few", "for", "from", "further", "had", "has", "have", "having", "here", "how", "if", "in", "into", "is", "it", "its", "itself", "just", "least", "less", "more", "most", "must", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "out", "over", "own", "same", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "via", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "within", "without", "would", "yet", "you", "your", "test", "tests", "testing", "tested", "spec", "specs", "case", "cases", "check", "checks", "checked", "work", "works", "working", "make", "makes", "made", "given", "use", "used", "uses", "using", "get", "gets", "set", "sets", "new"])

# Runs of letters or digits; inside a run, camelCase humps ("HTTPServer" → HTTP, Server).
_RUN = re.compile(r"[A-Za-z0-9]+")
_HUMP = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


@lru_cache(maxsize=1)
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


def _words(text: str) -> list[str]:
    return [hump.lower() for run in _RUN.findall(text) for hump in _HUMP.findall(run)]


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


def _significant(text: str) -> list[str]:
    return [w for w in _words(text) if len(w) >= 3 and not w.isdigit() and w not in STOP_WORDS]


def stems(text: str) -> frozenset[str]:
    """The stems of the significant words of `text` (an identifier, a path or a title)."""
    return frozenset(_stem(w) for w in _significant(text))


def words_of(text: str, wanted: frozenset[str]) -> set[str]:
    """The words of `text` (lower case, as written) whose stem is one of `wanted`: "retries" for "retri"."""
    return {w for w in _significant(text) if _stem(w) in wanted}


class Overlap(NamedTuple):
    shared: frozenset[str]  # the stems in common
    share: float  # their share of the title's stems, 0-1


def overlap(title: str | frozenset[str], other: str | frozenset[str]) -> Overlap:
    """What `other` shares with `title`: the stems in common, and how much of the title they cover (0-1)."""
    a = stems(title) if isinstance(title, str) else title
    b = stems(other) if isinstance(other, str) else other
    shared = a & b
    return Overlap(frozenset(shared), len(shared) / len(a) if a else 0.0)


def match_regex(words: set[str] | frozenset[str]) -> str:
    """A case-insensitive regular expression (RE2) that finds any of `words` as written (a stem such as
    "retri" would miss "retry"), in sorted order."""
    return "(?i)" + "|".join(re.escape(w) for w in sorted(words))
