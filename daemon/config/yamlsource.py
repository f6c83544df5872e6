"""YAML with line numbers and ``${VAR}`` interpolation, for error messages.

PyYAML's node tree knows where every key and value starts; walking it beside
the constructed data gives a map from a field's path to its line, so that a
validation error can say ``config/x.yaml:14: projects[0].sources[1].path: ...``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from daemon.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Values a document may stand for once its aliases are expanded: a configuration of
# 10,000 criteria has a few hundred thousand; an alias bomb ("billion laughs") has billions.
_MAX_VALUES = 1_000_000

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
    lines: dict[Loc, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> YamlDocument:
        shown = _shown(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([f"{shown}: configuration file not found"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{shown}: cannot read configuration: {exc}"]) from None
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None and (refused := _alias_problem(node)):
                raise ConfigError([f"{shown}:{refused[0].start_mark.line + 1}: {refused[1]}"])
            data = loader.construct_document(node) if node is not None else None
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
        if not isinstance(data, dict):
            raise ConfigError([f"{shown}:1: the configuration must be a mapping with a 'projects' list"])
        doc = cls(path=path, data=data)
        problems: list[str] = []
        doc.data = doc._walk(node, data, (), problems)
        if problems:
            raise ConfigError(problems)
        return doc

    def line_of(self, loc: Loc) -> int:
        """The line of the deepest part of ``loc`` the file has (1 if none)."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def problem(self, loc: Loc, message: str) -> str:
        where = format_loc(loc)
        return f"{_shown(self.path)}:{self.line_of(loc)}: {where + ': ' if where else ''}{message}"

    def _walk(self, node: yaml.Node, data: Any, loc: Loc, problems: list[str]) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode) and isinstance(data, dict):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    problems.append(f"{_shown(self.path)}:{key_node.start_mark.line + 1}: {format_loc(loc + (key,))}: duplicate key")
                seen.add(key)
                self.lines[loc + (key,)] = key_node.start_mark.line + 1
                if key in data:
                    data[key] = self._walk(value_node, data[key], loc + (key,), problems)
        elif isinstance(node, yaml.SequenceNode) and isinstance(data, list):
            for i, (child, item) in enumerate(zip(node.value, data)):
                data[i] = self._walk(child, item, loc + (i,), problems)
        elif isinstance(data, str):
            return self._interpolate(data, node, loc, problems)
        return data

    def _interpolate(self, value: str, node: yaml.Node, loc: Loc, problems: list[str]) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found not in (None, "") or (default is None and found is not None):
                return found  # type: ignore[return-value]
            if default is not None:
                return default
            problems.append(f"{_shown(self.path)}:{node.start_mark.line + 1}: {format_loc(loc)}: environment variable {name} is not set (write ${{{name}:-default}} to give a default)")
            return match.group(0)

        return _VAR.sub(replace, value)


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
