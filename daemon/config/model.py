"""The configuration model: projects, their sources, pillars, criteria, checks.

The YAML is validated by the pydantic models below; the models of sources and
of signal parameters belong to the collectors (:mod:`collectors.models`), and a
check is one signal's parameters plus the few fields that say how to score it.
A check's model, and a source's, is built when the first check of its signal
(source of its kind) is validated (:class:`~daemon.config.lazyunion.LazyUnion`):
a configuration builds only what it uses, and loading it imports no collector. The settings blocks
are in :mod:`daemon.config.settings`; :func:`daemon.config.loading.load_config`
reads a file into a :class:`Config` and cross-checks it.

A project answers what code asks of its sources: the git source one is read
through (:meth:`Project.upstream`), the sources read through one
(:meth:`Project.dependents`), and how long one may take (:func:`source_timeout`).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter, create_model, field_validator, model_validator

from collectors.evidence import EvidenceRequest, canonical_json, evidence_key
from collectors.kinds import KINDS, kinds_of_signal, signal_model, source_model
from daemon.config.alerts import AlertRules, Channel, Route
from daemon.config.durations import Duration, parse_duration
from daemon.config.lazyunion import LazyUnion
from daemon.config.retention import RetentionPolicy
from daemon.config.schedule import Schedule
from daemon.config.settings import ID_PATTERN, ApiSettings, CelerySettings, DaemonSettings, Display, Strict
from daemon.errors import NotFound

# A source's collection may take this long when its model names no timeout of its own.
_DEFAULT_TIMEOUT_SECONDS = 60.0


# --- transforms: evidence value -> score in [0, 1] -------------------------------------


class Scale(Strict):
    """Linear from ``lo`` (score 0) to ``hi`` (score 1), clamped; ``lo > hi`` inverts."""

    scale: tuple[float, float]

    @field_validator("scale")
    @classmethod
    def _distinct(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] == v[1]:
            raise ValueError("scale bounds must differ")
        return v


class Thresholds(Strict):
    """Step function: the score of the highest ``[at_least, score]`` the value reaches (else 0)."""

    thresholds: list[tuple[float, Annotated[float, Field(ge=0, le=1)]]] = Field(min_length=1)


class FreshWithinDays(Strict):
    """An age in days: 1 up to ``full``, decaying linearly to 0 at ``zero``."""

    fresh_within_days: tuple[float, float]

    @field_validator("fresh_within_days")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] < v[1]:
            raise ValueError("fresh_within_days needs [full, zero] with 0 <= full < zero")
        return v


Transform = Literal["bool", "ratio"] | Scale | Thresholds | FreshWithinDays


# --- checks: one signal's parameters plus how to score them ----------------------------


class CheckFields(Strict):
    """What every check has, whatever its signal."""

    source: str
    weight: float = Field(default=1.0, ge=0)
    field: str | None = None
    transform: Transform | None = None

    # Fields that are not the signal's parameters.
    _own: ClassVar[frozenset[str]] = frozenset({"source", "weight", "field", "transform", "signal"})

    # Derived once, on first use after loading (a loaded configuration is not changed): scoring
    # 10,000 criteria spent most of its time rebuilding them (docs/BENCHMARKS.md, scoring).
    # cached_property keeps them in the instance's __dict__, outside the model's fields.
    def request(self) -> EvidenceRequest:
        return self._request

    @cached_property
    def _request(self) -> EvidenceRequest:
        params = self.model_dump(mode="json", exclude=set(self._own), exclude_none=True)
        return EvidenceRequest(signal=self.signal, params=params)  # type: ignore[attr-defined]

    @cached_property
    def key(self) -> str:
        """The evidence key this check reads (see :func:`collectors.evidence.evidence_key`)."""
        return evidence_key(self.source, self._request.signal, self._request.params)

    @cached_property
    def transform_json(self) -> Any:
        """The effective transform as plain data, as a check result records it."""
        transform = self.effective_transform or "bool"
        return transform if isinstance(transform, str) else transform.model_dump()

    @property
    def value_field(self) -> str:
        return self.field or self.default_field  # type: ignore[attr-defined]

    @property
    def effective_transform(self) -> Transform | None:
        return self.transform or self.default_transform  # type: ignore[attr-defined]


SIGNAL_KINDS: dict[str, tuple[str, ...]] = kinds_of_signal()


# Parameters the configuration may leave out because the criterion supplies them:
# a declared score is looked up by the criterion's own title (see _cross_check).
_FILLED_FROM_CRITERION: dict[str, dict[str, Any]] = {"declared_score": {"title": (str | None, None)}}


def _check_model(signal: str) -> type[CheckFields]:
    params_model = signal_model(signal)
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Check_" + params_model.__name__,
        __base__=(CheckFields, params_model),
        __module__=__name__,
        **_FILLED_FROM_CRITERION.get(signal, {}),
    )


# One model per signal, built when a check of that signal is first validated.
CHECKS = LazyUnion("signal", lambda: SIGNAL_KINDS, _check_model)
Check = Annotated[CheckFields, CHECKS]


# --- criteria and pillars --------------------------------------------------------------


class Manual(Strict):
    """A score a person vouches for, until it expires."""

    score: float = Field(ge=0, le=1)
    reason: str = Field(min_length=1)
    expires: date


class Criterion(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    weight: float = Field(default=1.0, ge=0)
    combine: Literal["mean", "min", "all"] = "mean"
    max_age: Duration = timedelta(days=7)
    checks: list[Check] = Field(default_factory=list)
    manual: Manual | None = None
    not_applicable: str | None = Field(default=None, min_length=1)

    _parse_max_age = field_validator("max_age", mode="before")(lambda cls, v: parse_duration(v))

    @model_validator(mode="after")
    def _one_way_to_score(self) -> Criterion:
        ways = [bool(self.checks), self.manual is not None, self.not_applicable is not None]
        if sum(ways) != 1:
            raise ValueError("a criterion needs exactly one of: checks, manual, not_applicable")
        return self


class Pillar(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    weight: float = Field(default=1.0, ge=0)
    below: float | None = Field(default=None, ge=0, le=100)
    criteria: list[Criterion] = Field(min_length=1)


class PillarFromTemplate(Strict):
    """A shared pillar used by a project, optionally renamed or re-weighted."""

    template: str
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    title: str | None = None
    weight: float | None = Field(default=None, ge=0)


# What the daemon adds to a collector's source model; the collector (and a worker) never sees these.
DAEMON_SOURCE_KEYS = frozenset({"schedule", "queue"})


def _scheduled(model: type[BaseModel]) -> type[BaseModel]:
    """A collector's source model, plus when the daemon collects it and on which Celery queue (the collector ignores both)."""
    return create_model("Configured" + model.__name__, __base__=model, __module__=__name__, schedule=(Schedule | None, None),
                        queue=(Annotated[str, Field(pattern=ID_PATTERN)] | None, None))


# One model per kind, built when a source of that kind is first validated.
SOURCES = LazyUnion("kind", lambda: KINDS, lambda kind: _scheduled(source_model(kind)))
Source = Annotated[BaseModel, SOURCES]

# A pillar entry is a template reference exactly when it has a `template` key;
# deciding up front keeps errors about one shape, not both.
PillarEntry = Annotated[
    Annotated[PillarFromTemplate, Tag("template")] | Annotated[Pillar, Tag("pillar")],
    Discriminator(lambda v: "template" if (isinstance(v, dict) and "template" in v) or isinstance(v, PillarFromTemplate) else "pillar"),
]


class Project(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str | None = None
    complete_share: float = Field(default=1.0, ge=0, le=1)
    schedule: Schedule = Field(default_factory=lambda: Schedule(every=timedelta(minutes=15)))
    alerts: AlertRules = Field(default_factory=AlertRules)
    sources: list[Source] = Field(min_length=1)
    pillars: list[PillarEntry] = Field(min_length=1)

    @property
    def expanded_pillars(self) -> list[Pillar]:
        """Pillars with templates resolved (set by :func:`load_config`)."""
        return [p for p in self.pillars if isinstance(p, Pillar)]

    def source(self, source_id: str) -> Any:
        return next(s for s in self.sources if s.id == source_id)

    def schedule_of(self, source: Any) -> Schedule:
        return source.schedule or self.schedule

    def upstream(self, source: Any) -> Any | None:
        """The git source this one is read through (a document or report inside a repository), if any."""
        git_id = upstream_id(source)
        return None if git_id is None else self.source(git_id)

    def dependents(self, source_id: str) -> list[Any]:
        """The sources read through this git source, in the configuration's order."""
        return [s for s in self.sources if upstream_id(s) == source_id]

    def rules_hash(self) -> str:
        """Identifies the rules: equal hashes score equal evidence equally."""
        return self._rules_hash

    @cached_property
    def _rules_hash(self) -> str:
        # Computed once, after loading. Titles and alert floors do not change a score.
        body = [p.model_dump(mode="json", exclude={"title", "below"}) for p in self.expanded_pillars]
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


class Templates(Strict):
    pillars: dict[str, Pillar] = Field(default_factory=dict)


class Config(Strict):
    version: Literal[1] = 1
    store: str = ".pillarwatch/pillarwatch.db"
    cache_dir: str | None = None
    concurrency: int = Field(default=8, ge=1, le=256)
    allow_commands: bool = False
    executor: Literal["local", "celery"] = "local"
    celery: CelerySettings = Field(default_factory=CelerySettings)
    display: Display = Field(default_factory=Display)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    api: ApiSettings = Field(default_factory=ApiSettings)
    templates: Templates = Field(default_factory=Templates)
    channels: list[Channel] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    projects: list[Project] = Field(min_length=1)

    # Set by load_config: where the file was, so relative paths resolve against it.
    path: Path | None = Field(default=None, exclude=True)

    @property
    def store_path(self) -> Path:
        return self.resolve(self.store)

    @property
    def health_path(self) -> Path:
        return self.resolve(self.daemon.health_file) if self.daemon.health_file else self.store_path.with_suffix(".health.json")

    @property
    def cache_path(self) -> Path:
        return self.resolve(self.cache_dir) if self.cache_dir else self.store_path.parent / "mirrors"

    def resolve(self, value: str) -> Path:
        """A path of the file, on this machine: relative ones from the file's folder."""
        p = Path(value).expanduser()
        base = self.path.parent if self.path else Path.cwd()
        return p if p.is_absolute() else (base / p).resolve()

    def project(self, project_id: str) -> Project:
        for p in self.projects:
            if p.id == project_id:
                return p
        raise NotFound(f"no project {project_id!r} in the configuration (have: {', '.join(p.id for p in self.projects)})")


def upstream_id(source: Any) -> str | None:
    """The id of the git source a source model is read through, if any (also for a collector's model alone)."""
    return getattr(source, "git", None)


def source_timeout(source: Any, upstream: Any = None) -> float:
    """How long one collection of a source may take: its ``timeout_seconds``.

    A document has none of its own: read through a git source (``upstream``),
    each of its reads of the repository is bounded by that source's
    ``timeout_seconds``, so it counts as that long; read from disk, as 60 s.
    """
    own = getattr(source, "timeout_seconds", None)
    if own is not None:
        return float(own)
    return source_timeout(upstream) if upstream is not None else _DEFAULT_TIMEOUT_SECONDS


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file, generated from the models."""
    return TypeAdapter(Config).json_schema()


__all__ = [
    "DAEMON_SOURCE_KEYS", "SIGNAL_KINDS", "Check", "CheckFields", "Config", "Criterion", "FreshWithinDays", "Manual",
    "Pillar", "PillarFromTemplate", "Project", "Scale", "Source", "Templates", "Thresholds", "Transform",
    "config_schema", "source_timeout", "upstream_id",
]
