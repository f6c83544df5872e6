"""Which collector serves which kind of source, and which signals each kind answers."""

from __future__ import annotations

from types import ModuleType

from pydantic import BaseModel

from collectors import command, docs, git, github, gitlab, junit, probe

# kind -> (source model, collector module)
KINDS: dict[str, tuple[type[BaseModel], ModuleType]] = {
    "git": (git.GitSource, git),
    "doc": (docs.DocSource, docs),
    "github": (github.GitHubSource, github),
    "gitlab": (gitlab.GitLabSource, gitlab),
    "junit": (junit.JUnitSource, junit),
    "http": (probe.HttpSource, probe),
    "command": (command.CommandSource, command),
}


def signal_models() -> dict[str, type[BaseModel]]:
    """Every signal's parameter model; kinds sharing a signal share its model."""
    models: dict[str, type[BaseModel]] = {}
    for _, module in KINDS.values():
        for name, model in module.SIGNALS.items():
            if models.setdefault(name, model) is not model:
                raise RuntimeError(f"signal {name!r} has two different parameter models")
    return models


def kinds_of_signal() -> dict[str, tuple[str, ...]]:
    """Signal name -> the source kinds that answer it."""
    found: dict[str, list[str]] = {}
    for kind, (_, module) in KINDS.items():
        for name in module.SIGNALS:
            found.setdefault(name, []).append(kind)
    return {name: tuple(kinds) for name, kinds in found.items()}
