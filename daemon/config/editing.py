"""Changing one check's transform in a configuration file, leaving every other byte as it was.

PyYAML's node tree knows where each value starts and ends in the text, so
a change is a splice: the transform's value is replaced, or a ``transform:``
key is added to the check (inside a flow mapping ``{...}``, or as a line of
a block mapping, at its keys' indentation). Comments, order, quoting and
``${VAR}`` references elsewhere are untouched. Pure: text in, text out.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import yaml

from daemon.errors import InputError


@dataclass(frozen=True)
class TransformEdit:
    """Set the transform of check ``check`` (its index) of a criterion of a project's pillar."""

    project: str
    pillar: str
    criterion: str
    check: int
    transform: dict[str, Any]  # {"scale": [lo, hi]}


def flow(value: Any) -> str:
    """A transform as one line of flow YAML: ``{scale: [0, 12.5]}``."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float)) else yaml.safe_dump(value, default_flow_style=True).strip()


def set_transforms(text: str, edits: list[TransformEdit], *, where: str = "configuration") -> str:
    """The text with each edit applied (a template's pillar is changed in its template)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: cannot read the YAML to change it: {' '.join(str(exc).split())}") from None
    splices = [_splice(text, _check_node(root, e, where), e.transform) for e in edits]
    for start, end, new in sorted(splices, key=lambda s: s[0], reverse=True):
        text = text[:start] + new + text[end:]
    return text


def unified_diff(before: str, after: str, name: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))


def _get(node: Any, key: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def _scalar(node: Any, key: str) -> str | None:
    found = _get(node, key)
    return found.value if isinstance(found, yaml.ScalarNode) else None


def _items(node: Any) -> list[Any]:
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_node(root: Any, edit: TransformEdit, where: str) -> yaml.MappingNode:
    missing = InputError(f"{where}: cannot find check {edit.check + 1} of {edit.project}/{edit.pillar}/{edit.criterion} in the file")
    project = next((p for p in _items(_get(root, "projects")) if _scalar(p, "id") == edit.project), None)
    pillar = None
    for entry in _items(_get(project, "pillars")):
        template = _scalar(entry, "template")
        if template is None:
            if _scalar(entry, "id") == edit.pillar:
                pillar = entry
                break
            continue
        shared = _get(_get(_get(root, "templates"), "pillars"), template)
        if (_scalar(entry, "id") or _scalar(shared, "id")) == edit.pillar:
            pillar = shared
            break
    criterion = next((c for c in _items(_get(pillar, "criteria")) if _scalar(c, "id") == edit.criterion), None)
    checks = _items(_get(criterion, "checks"))
    if edit.check >= len(checks) or not isinstance(checks[edit.check], yaml.MappingNode):
        raise missing
    return checks[edit.check]  # type: ignore[no-any-return]


def _content_end(node: Any) -> int:
    """Where a value's own text ends: a block collection's end mark is already at the next token."""
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        return _content_end(last[1] if isinstance(last, tuple) else last)
    return node.end_mark.index  # type: ignore[no-any-return]


def _splice(text: str, check: yaml.MappingNode, transform: dict[str, Any]) -> tuple[int, int, str]:
    """(start, end, replacement) in `text` that sets the check's transform."""
    new = flow(transform)
    for key, value in check.value:
        if key.value != "transform":
            continue
        # The same kind of transform: only its bounds change (`scale: [0, 10]` -> `scale: [0, 20]`), in any style.
        if len(transform) == 1 and (inner := _get(value, next(iter(transform)))) is not None:
            return inner.start_mark.index, _content_end(inner), flow(next(iter(transform.values())))
        return key.end_mark.index, _content_end(value), f": {new}"
    last = check.value[-1][1]
    if check.flow_style:
        return last.end_mark.index, last.end_mark.index, f", transform: {new}"
    indent = " " * check.value[0][0].start_mark.column
    at = _content_end(last)
    if at == 0 or text[at - 1] != "\n":  # after the rest of the last value's line (a comment stays where it is)
        newline = text.find("\n", at)
        at = len(text) if newline < 0 else newline + 1
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return at, at, f"{prefix}{indent}transform: {new}\n"
