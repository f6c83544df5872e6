"""Regular expressions written by users, run on RE2.

RE2 matches in time linear in the text whatever the pattern, so a pattern such
as ``(a+)+$`` cannot hang a collection the way it hangs a backtracking engine.
The price is RE2's syntax: no lookaround and no backreferences. Every
collector's regex parameter is checked with :func:`regex_param` (which names
what RE2 lacks) and matched with :func:`compile_regex`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol, cast

import re2

__all__ = ["Match", "Regex", "compile_regex", "regex_param"]


class Match(Protocol):
    def start(self, group: int = 0) -> int: ...
    def group(self, group: int = 0) -> str | None: ...


class Regex(Protocol):
    @property
    def groups(self) -> int: ...
    def search(self, text: str) -> Match | None: ...
    def finditer(self, text: str) -> Iterator[Match]: ...
    def sub(self, repl: str, text: str) -> str: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # RE2 would log each bad pattern to stderr itself; we report it once
    return options


_OPTIONS = _options()


def compile_regex(pattern: str, *, multiline: bool = False) -> Regex:
    """`pattern` compiled by RE2; ``multiline`` as Python's re.MULTILINE. Raises re2.error."""
    # RE2 has no flags argument for this; the inline flag means the same.
    return cast(Regex, re2.compile(f"(?m){pattern}" if multiline else pattern, _OPTIONS))


_VALID: set[str] = set()  # patterns RE2 compiled (a pattern stays valid: no need to compile it again)
_VALID_KEPT = 10_000


def regex_param(value: str) -> str:
    """A pydantic validator: `value` unchanged when RE2 compiles it, else a ValueError of one line."""
    if value in _VALID:  # a configuration repeats a few patterns over thousands of checks
        return value
    try:
        re2.compile(value, _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        reason = " ".join((detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)).split())
        try:
            re.compile(value)
        except re.error:
            raise ValueError(f"invalid regex {value!r}: {reason}") from None
        # Valid for Python, not for RE2: say which syntax is missing rather than "invalid".
        raise ValueError(f"regex {value!r} uses syntax RE2 does not support ({reason}); patterns are RE2 syntax:"
                         " no lookaround, backreferences or possessive quantifiers") from None
    if len(_VALID) < _VALID_KEPT:
        _VALID.add(value)
    return value
