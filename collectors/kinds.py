"""Which collector serves which kind of source, which signals each kind answers, and one call for them all.

Every collector module exposes the same ``collect`` (:class:`Collector`), so
:func:`collect` dispatches on ``source.kind`` alone; a collector ignores the
keywords it does not use. Adding a kind is one line in :data:`_KINDS`.

Nothing is imported here until it is used: a kind's models (its source model
and its signals' parameter models, in :mod:`collectors.models`) when a source
or a check of that kind is validated, its collector module (GitPython, httpx,
markdown-it...) when one is collected. Loading a configuration thus never
imports a collector, and `pillarwatch status` starts fast.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from functools import cache
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple, Protocol

from pydantic import BaseModel

from collectors.evidence import CollectResult, EvidenceRequest, SignalParams

if TYPE_CHECKING:
    from collectors.models.git import GitSource

__all__ = ["KINDS", "Collector", "collect", "kinds_of_signal", "signal_model", "signal_models", "source_model"]


class Collector(Protocol):
    """The one signature of every collector module's ``collect``."""

    def __call__(self, source: BaseModel, requests: list[EvidenceRequest], /, *, now: datetime,
                 cache_dir: Path | None = None, repo: GitSource | None = None, commit: str | None = None,
                 previous: CollectResult | None = None, allow_commands: bool = False) -> CollectResult: ...


class _Kind(NamedTuple):
    models: str  # the module of its signals' SIGNALS (and of its source model, unless `source` names another)
    source: str  # "module:Class" of its source model
    collector: str  # the module whose `collect` reads it


# The junit source model names CI artifacts (collectors.artifacts, which reads them): it stays with its collector.
_KINDS: dict[str, _Kind] = {
    "git": _Kind("collectors.models.git", "collectors.models.git:GitSource", "collectors.git"),
    "doc": _Kind("collectors.models.docs", "collectors.models.docs:DocSource", "collectors.docs"),
    "github": _Kind("collectors.models.github", "collectors.models.github:GitHubSource", "collectors.github"),
    "gitlab": _Kind("collectors.models.gitlab", "collectors.models.gitlab:GitLabSource", "collectors.gitlab"),
    "junit": _Kind("collectors.models.junit", "collectors.junit:JUnitSource", "collectors.junit"),
    "http": _Kind("collectors.models.probe", "collectors.models.probe:HttpSource", "collectors.probe"),
    "command": _Kind("collectors.models.command", "collectors.models.command:CommandSource", "collectors.command"),
}


def source_model(kind: str) -> type[BaseModel]:
    """The source model of `kind` (KeyError for an unknown kind); imports no collector but junit's."""
    module, _, name = _KINDS[kind].source.partition(":")
    model: type[BaseModel] = getattr(import_module(module), name)
    return model


def _signals_of(kind: str) -> dict[str, type[SignalParams]]:
    signals: dict[str, type[SignalParams]] = import_module(_KINDS[kind].models).SIGNALS
    return signals


class _Registry(Mapping[str, tuple[type[BaseModel], ModuleType]]):
    """kind -> (source model, collector module), each imported when it is looked up.

    Its keys cost nothing; ``KINDS[kind]`` imports that kind's collector.
    """

    def __getitem__(self, kind: str) -> tuple[type[BaseModel], ModuleType]:
        return source_model(kind), import_module(_KINDS[kind].collector)

    def __iter__(self) -> Iterator[str]:
        return iter(_KINDS)

    def __len__(self) -> int:
        return len(_KINDS)

    def __contains__(self, kind: object) -> bool:
        return kind in _KINDS


KINDS = _Registry()


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
    collector: Collector = import_module(_KINDS[source.kind].collector).collect  # looked up at each call, as tests patch it
    return collector(source, requests, now=now, cache_dir=cache_dir, repo=repo, commit=commit, previous=previous,
                     allow_commands=allow_commands)


@cache
def signal_models() -> dict[str, type[SignalParams]]:
    """Every signal's parameter model; kinds sharing a signal share its model (no collector is imported)."""
    models: dict[str, type[SignalParams]] = {}
    for kind in _KINDS:
        for name, model in _signals_of(kind).items():
            if models.setdefault(name, model) is not model:
                raise RuntimeError(f"signal {name!r} has two different parameter models")
    return models


def signal_model(signal: str) -> type[SignalParams]:
    """The parameter model of `signal` (KeyError for an unknown one)."""
    return signal_models()[signal]


@cache
def kinds_of_signal() -> dict[str, tuple[str, ...]]:
    """Signal name -> the source kinds that answer it."""
    found: dict[str, list[str]] = {}
    for kind in _KINDS:
        for name in _signals_of(kind):
            found.setdefault(name, []).append(kind)
    return {name: tuple(kinds) for name, kinds in found.items()}
