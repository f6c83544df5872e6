"""YAML with line numbers and ``${VAR}`` interpolation, for error messages.

The data comes from yaml-rs (YAML 1.2, in Rust): PyYAML, even with libyaml,
takes seconds on a configuration of 10,000 criteria, building a node object
with two position marks for every value. Line numbers are only needed for a
message, so PyYAML's node tree is built lazily, the first time a message asks
for a line (or when yaml-rs refuses the file, to say where with PyYAML's
words): walking it gives a map from a field's path to its line, so that a
validation error can say ``config/x.yaml:14: projects[0].sources[1].path: ...``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml_rs

from daemon.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_MERGE_KEY = "<<"
Loc = tuple[Any, ...]


@dataclass
class YamlDocument:
    path: Path
    data: Any
    text: str = ""
    _lines: dict[Loc, int] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path) -> YamlDocument:
        shown = _shown(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([f"{shown}: configuration file not found"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{shown}: cannot read configuration: {exc}"]) from None
        try:
            data = yaml_rs.loads(text)
        except (yaml_rs.YAMLDecodeError, RecursionError) as exc:
            from daemon.config import yamllines  # PyYAML: only when a message needs a line

            yamllines.composed(shown, text, exact=True)  # raises PyYAML's message, with its line, when it sees the fault too
            raise ConfigError([f"{shown}: YAML error: {str(exc).splitlines()[0]}"]) from None
        if not isinstance(data, dict):
            raise ConfigError([f"{shown}:1: the configuration must be a mapping with a 'projects' list"])
        doc = cls(path=path, data=data, text=text)
        problems: list[tuple[Loc, str]] = []
        if "${" in text or _MERGE_KEY in text:  # else there is nothing to replace or refuse: skip the walk
            doc.data = _interpolate_all(data, (), problems)
        if problems:
            raise ConfigError([doc.problem(loc, message) for loc, message in problems])
        return doc

    @property
    def lines(self) -> dict[Loc, int]:
        """Each field's line, from PyYAML's node tree (built on first use)."""
        if self._lines is None:
            from daemon.config import yamllines  # PyYAML: only when a message needs a line

            self._lines = yamllines.lines_of(_shown(self.path), self.text)
        return self._lines

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest part of ``loc`` the file has (1 if none)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def problem(self, loc: Loc, message: str) -> str:
        from daemon.config.yamllines import format_loc  # PyYAML: only when there is a message

        where = format_loc(loc)
        return f"{_shown(self.path)}:{self.line_of(loc)}: {where + ': ' if where else ''}{message}"


def _interpolate_all(data: Any, loc: Loc, problems: list[tuple[Loc, str]]) -> Any:
    """``${VAR}`` and ``${VAR:-default}`` replaced in every string value, in place."""
    if isinstance(data, dict):
        if _MERGE_KEY in data:  # YAML 1.1's merge key; silently a key of its own in YAML 1.2
            problems.append((loc + (_MERGE_KEY,), "merge keys (<<) are not supported: repeat the keys, or use a template"))
        for key, value in data.items():
            data[key] = _interpolate_all(value, loc + (key,), problems)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            data[i] = _interpolate_all(item, loc + (i,), problems)
    elif isinstance(data, str) and "${" in data:
        return _interpolate(data, loc, problems)
    return data


def _interpolate(value: str, loc: Loc, problems: list[tuple[Loc, str]]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found not in (None, "") or (default is None and found is not None):
            return found  # type: ignore[return-value]
        if default is not None:
            return default
        problems.append((loc, f"environment variable {name} is not set (write ${{{name}:-default}} to give a default)"))
        return match.group(0)

    return _VAR.sub(replace, value)


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
