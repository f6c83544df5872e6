"""Globs over a tree's paths: the one dialect every reader of files uses, matched in C.

A glob is translated once by wcmatch (its own translation, so the dialect is
exactly wcmatch's with ``GLOB_FLAGS``) into one regular expression, which
:meth:`GlobMatcher.select` runs over a sorted list of paths with ``filter``,
after narrowing the list to the glob's literal leading folders by bisection.
wcmatch's per-path matcher (an object and a few Python calls per path) was
most of the time a tree's globbing took.
"""

from __future__ import annotations

import bisect
import functools
import re

from wcmatch import glob

from collectors.testcases import expand_glob

__all__ = ["GLOB_FLAGS", "GlobMatcher", "glob_matcher"]

GLOB_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.DOTGLOB  # the one glob dialect of every reader of files
_MAGIC = re.compile(r"[*?\[{\\]")  # where a glob's literal beginning ends


class GlobMatcher:
    """One glob (or the preset it names, `@tests`), compiled: ``matcher(path)`` is
    ``wcmatch.glob.globmatch(path, pattern, flags=GLOB_FLAGS)``."""

    def __init__(self, pattern: str):
        expanded = expand_glob(pattern)
        include, exclude = glob.translate(expanded, flags=GLOB_FLAGS)
        self._wanted = re.compile("|".join(f"(?:{p})" for p in include)) if include else None
        self._unwanted = re.compile("|".join(f"(?:{p})" for p in exclude)) if exclude else None
        # The folders every match starts with ("src/" of "src/**/*.py"): only plain names, as git trees hold.
        literal = expanded[:m.start()] if (m := _MAGIC.search(expanded)) else expanded
        folders = literal.rpartition("/")[0]
        plain = folders and all(part not in ("", ".", "..") for part in folders.split("/"))
        self._prefix = folders + "/" if plain else ""

    def __call__(self, path: str) -> bool:
        return (self._wanted is not None and self._wanted.fullmatch(path) is not None
                and (self._unwanted is None or self._unwanted.fullmatch(path) is None))

    def select(self, paths: list[str]) -> list[str]:
        """The matching paths of `paths`, which must be sorted, in their order."""
        if self._wanted is None:
            return []
        if self._prefix:
            # Every path starting with the prefix sorts between it and it followed by the highest character.
            paths = paths[bisect.bisect_left(paths, self._prefix):bisect.bisect_left(paths, self._prefix + "\U0010ffff")]
        found = list(filter(self._wanted.fullmatch, paths))
        return found if self._unwanted is None else [p for p in found if self._unwanted.fullmatch(p) is None]


@functools.lru_cache(maxsize=256)
def glob_matcher(pattern: str) -> GlobMatcher:
    """The compiled glob `pattern`, compiled once per process."""
    return GlobMatcher(pattern)
