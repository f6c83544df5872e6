"""Where each field of a YAML file starts, from PyYAML's node tree: for messages only.

:mod:`daemon.config.yamlsource` reads the data with yaml-rs and asks here, the
first time a message needs a line, or when yaml-rs refuses a file (PyYAML's
syntax messages say what was expected and where). PyYAML is imported only then.
"""

from __future__ import annotations

from typing import Any

import yaml

from daemon.errors import ConfigError

Loc = tuple[Any, ...]  # a field's path: ("projects", 0, "id")
# Values a document may stand for once its aliases are expanded: a configuration of
# 10,000 criteria has a few hundred thousand; an alias bomb ("billion laughs") has billions.
_MAX_VALUES = 1_000_000


def format_loc(loc: Loc) -> str:
    """``("projects", 0, "id")`` -> ``projects[0].id``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def composed(shown: str, text: str, *, exact: bool = False) -> yaml.Node | None:
    """PyYAML's node tree of ``text``; a ConfigError naming the line of what it refuses.

    ``exact`` uses the pure-Python parser, whose syntax errors say what was
    expected and what was found; libyaml's (several times faster) say less.
    """
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


def lines_of(shown: str, text: str) -> dict[Loc, int]:
    """Each field's path -> the line it starts on (a ConfigError naming the line of a fault)."""
    lines: dict[Loc, int] = {}
    node = composed(shown, text)
    if node is not None:
        _record_lines(node, (), lines)
    return lines


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
