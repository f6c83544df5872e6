"""Which collector serves which kind of source, which signals each kind answers, and one call for them all.

Every collector module exposes the same ``collect`` (:class:`Collector`), so
:func:`collect` dispatches on ``source.kind`` alone; a collector ignores the
keywords it does not use. Adding a kind is one line in :data:`KINDS`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Protocol

from pydantic import BaseModel

from collectors import command, docs, git, github, gitlab, junit, probe
from collectors.evidence import CollectResult, EvidenceRequest
from collectors.gitrepo import GitSource

__all__ = ["KINDS", "Collector", "collect", "kinds_of_signal", "signal_models"]


class Collector(Protocol):
    """The one signature of every collector module's ``collect``."""

    def __call__(self, source: BaseModel, requests: list[EvidenceRequest], /, *, now: datetime,
                 cache_dir: Path | None = None, repo: GitSource | None = None, commit: str | None = None,
                 previous: CollectResult | None = None, allow_commands: bool = False) -> CollectResult: ...


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


def collect(
    source: BaseModel,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path | None = None,
    repo: GitSource | None = None,
    commit: str | None = None,
    previous: CollectResult | None = None,
    allow_commands: bool = False,
) -> CollectResult:
    """Collect `requests` from `source` with the collector of its kind; never raises for source faults.

    `cache_dir` holds mirrors and HTTP caches; `repo` is the git source a
    document or report is read through and `commit` the commit to read;
    `previous` is this source's latest result; `allow_commands` lets a
    command source run.
    """
    collector: Collector = KINDS[source.kind][1].collect  # looked up at each call, as tests patch it
    return collector(source, requests, now=now, cache_dir=cache_dir, repo=repo, commit=commit, previous=previous,
                     allow_commands=allow_commands)


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
