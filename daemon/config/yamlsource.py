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

import yaml
import yaml_rs

from daemon.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Values a document may stand for once its aliases are expanded: a configuration of
# 10,000 criteria has a few hundred thousand; an alias bomb ("billion laughs") has billions.
_MAX_VALUES = 1_000_000
_MERGE_KEY = "<<"

Loc = tuple[Any, ...]


def format_loc(loc: Loc) -> str:
    """``("projects", 0, "id")`` -> ``projects[0].id``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


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
            _composed(path, text, exact=True)  # raises PyYAML's message, with its line, when it sees the fault too
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
            self._lines = {}
            node = _composed(self.path, self.text)
            if node is not None:
                _record_lines(node, (), self._lines)
        return self._lines

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest part of ``loc`` the file has (1 if none)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def problem(self, loc: Loc, message: str) -> str:
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


def _composed(path: Path, text: str, *, exact: bool = False) -> yaml.Node | None:
    """PyYAML's node tree of ``text``; a ConfigError naming the line of what it refuses.

    ``exact`` uses the pure-Python parser, whose syntax errors say what was
    expected and what was found; libyaml's (several times faster) say less.
    """
    shown = _shown(path)
    fast = not exact and hasattr(yaml, "CSafeLoader")
    loader = yaml.CSafeLoader(text) if fast else yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and (refused := _alias_problem(node)):
            raise ConfigError([f"{shown}:{refused[0].start_mark.line + 1}: {refused[1]}"])
        if node is not None:
            _duplicate_keys(shown, node)
        return node
    except RecursionError:
        raise ConfigError([f"{shown}: YAML nested too deeply"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"{mark.line + 1}:" if mark else ""
        raise ConfigError([f"{shown}:{line} YAML syntax error: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{shown}: YAML error: {exc}"]) from None
    finally:
        loader.dispose()


def _duplicate_keys(shown: str, root: yaml.Node) -> None:
    problems: list[str] = []
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    seen_nodes: set[int] = set()
    while stack:
        node, loc = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[Any] = set()
            for key_node, value_node in node.value:
                if key_node.value in keys:
                    problems.append(f"{shown}:{key_node.start_mark.line + 1}: {format_loc(loc + (key_node.value,))}: duplicate key")
                keys.add(key_node.value)
                stack.append((value_node, loc + (key_node.value,)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, loc + (i,)) for i, child in enumerate(node.value))
    if problems:
        raise ConfigError(sorted(problems, key=lambda p: int(p.split(":")[1])))


def _record_lines(root: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    stack: list[tuple[yaml.Node, Loc]] = [(root, loc)]
    while stack:
        node, at = stack.pop()
        lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                lines[at + (key_node.value,)] = key_node.start_mark.line + 1
                stack.append((value_node, at + (key_node.value,)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, at + (i,)) for i, child in enumerate(node.value))


def _alias_problem(root: yaml.Node) -> tuple[yaml.Node, str] | None:
    """A node whose aliases make the document recursive or too large once expanded, and why; None if none.

    Aliases share one node, so walking the document as a tree (as validation
    does) visits a shared node once per alias: sizes are counted on the graph,
    without recursion, each node once.
    """
    size: dict[int, int] = {}  # id(node) -> values it stands for; -1 while its children are counted
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, counted = stack.pop()
        children = _children(node)
        if counted:
            size[id(node)] = 1 + sum(size[id(child)] for child in children)
            if size[id(node)] > _MAX_VALUES:
                return node, f"YAML aliases expand to more than {_MAX_VALUES:,} values"
        elif id(node) not in size:
            size[id(node)] = -1
            stack.append((node, True))
            stack.extend((child, False) for child in children)
        elif size[id(node)] < 0:  # met again while its own children are being counted
            return node, "a YAML alias refers to a collection that contains it"
    return None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
