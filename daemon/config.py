"""The configuration model: projects, their sources, pillars, criteria, checks.

The YAML is validated by the pydantic models below; the models of sources and
of signal parameters belong to the collectors, and a check is one signal's
parameters plus the few fields that say how to score it. ``load_config``
turns every fault into a :class:`ConfigError` whose lines name the file, the
line and the field (see :mod:`daemon.yamlsource`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model, TypeAdapter, ValidationError, field_validator, model_validator

from collectors.kinds import KINDS, kinds_of_signal, signal_models
from collectors.evidence import EvidenceRequest, canonical_json

from .alerts import AlertRules
from .errors import ConfigError
from .notify.channels import Channel, Route
from .retention import RetentionPolicy
from .schedule import Schedule
from .yamlsource import YamlDocument, format_loc

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """``"15m"``, ``"12h"``, ``"7d"``, ``"2w"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"invalid duration {value!r}: use a number and a unit, e.g. 15m, 12h, 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


Duration = Annotated[timedelta, Field(json_schema_extra={"examples": ["7d"]})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- transforms: evidence value -> score in [0, 1] -------------------------------------


class Scale(_Strict):
    """Linear from ``lo`` (score 0) to ``hi`` (score 1), clamped; ``lo > hi`` inverts."""

    scale: tuple[float, float]

    @field_validator("scale")
    @classmethod
    def _distinct(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] == v[1]:
            raise ValueError("scale bounds must differ")
        return v


class Thresholds(_Strict):
    """Step function: the score of the highest ``[at_least, score]`` the value reaches (else 0)."""

    thresholds: list[tuple[float, Annotated[float, Field(ge=0, le=1)]]] = Field(min_length=1)


class FreshWithinDays(_Strict):
    """An age in days: 1 up to ``full``, decaying linearly to 0 at ``zero``."""

    fresh_within_days: tuple[float, float]

    @field_validator("fresh_within_days")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] < v[1]:
            raise ValueError("fresh_within_days needs [full, zero] with 0 <= full < zero")
        return v


Transform = Union[Literal["bool", "ratio"], Scale, Thresholds, FreshWithinDays]


# --- checks: one signal's parameters plus how to score them ----------------------------


class CheckFields(_Strict):
    """What every check has, whatever its signal."""

    source: str
    weight: float = Field(default=1.0, ge=0)
    field: str | None = None
    transform: Transform | None = None

    # Fields that are not the signal's parameters.
    _own: ClassVar[frozenset[str]] = frozenset({"source", "weight", "field", "transform", "signal"})

    def request(self) -> EvidenceRequest:
        params = self.model_dump(mode="json", exclude=set(self._own), exclude_none=True)
        return EvidenceRequest(signal=self.signal, params=params)  # type: ignore[attr-defined]

    @property
    def value_field(self) -> str:
        return self.field or self.default_field  # type: ignore[attr-defined]

    @property
    def effective_transform(self) -> Transform | None:
        return self.transform or self.default_transform  # type: ignore[attr-defined]


SIGNAL_KINDS: dict[str, tuple[str, ...]] = kinds_of_signal()


# Parameters the configuration may leave out because the criterion supplies them:
# a declared score is looked up by the criterion's own title (see _cross_check).
_FILLED_FROM_CRITERION: dict[str, dict[str, Any]] = {"declared_score": {"title": (Optional[str], None)}}


def _check_model(params_model: type[BaseModel]) -> type[CheckFields]:
    signal = params_model.model_fields["signal"].default
    return create_model(  # type: ignore[call-overload, no-any-return]
        "Check_" + params_model.__name__,
        __base__=(CheckFields, params_model),
        __module__=__name__,
        **_FILLED_FROM_CRITERION.get(signal, {}),
    )


_CHECK_MODELS = [_check_model(m) for m in signal_models().values()]
Check = Annotated[Union[tuple(_CHECK_MODELS)], Field(discriminator="signal")]  # type: ignore[valid-type]


# --- criteria and pillars --------------------------------------------------------------


class Manual(_Strict):
    """A score a person vouches for, until it expires."""

    score: float = Field(ge=0, le=1)
    reason: str = Field(min_length=1)
    expires: date


class Criterion(_Strict):
    id: str = Field(pattern=_ID)
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


class Pillar(_Strict):
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1)
    weight: float = Field(default=1.0, ge=0)
    below: float | None = Field(default=None, ge=0, le=100)
    criteria: list[Criterion] = Field(min_length=1)


class PillarFromTemplate(_Strict):
    """A shared pillar used by a project, optionally renamed or re-weighted."""

    template: str
    id: str | None = Field(default=None, pattern=_ID)
    title: str | None = None
    weight: float | None = Field(default=None, ge=0)


def _scheduled(model: type[BaseModel]) -> type[BaseModel]:
    """A collector's source model, plus when the daemon collects it (the collector ignores it)."""
    return create_model("Configured" + model.__name__, __base__=model, __module__=__name__, schedule=(Optional[Schedule], None))


Source = Annotated[Union[tuple(_scheduled(model) for model, _ in KINDS.values())], Field(discriminator="kind")]  # type: ignore[valid-type]

# A pillar entry is a template reference exactly when it has a `template` key;
# deciding up front keeps errors about one shape, not both.
PillarEntry = Annotated[
    Union[Annotated[PillarFromTemplate, Tag("template")], Annotated[Pillar, Tag("pillar")]],
    Discriminator(lambda v: "template" if isinstance(v, dict) and "template" in v or isinstance(v, PillarFromTemplate) else "pillar"),
]


class Project(_Strict):
    id: str = Field(pattern=_ID)
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

    def rules_hash(self) -> str:
        """Identifies the rules: equal hashes score equal evidence equally."""
        # Titles and alert floors do not change a score.
        body = [p.model_dump(mode="json", exclude={"title", "below"}) for p in self.expanded_pillars]
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:16]


class Display(_Strict):
    decimals: int = Field(default=0, ge=0, le=6)


class Templates(_Strict):
    pillars: dict[str, Pillar] = Field(default_factory=dict)


class DaemonSettings(_Strict):
    """How `pillarwatch daemon` behaves."""

    debounce: Duration = timedelta(seconds=2)
    shutdown_grace: Duration = timedelta(seconds=30)
    send_interval: Duration = timedelta(seconds=5)
    retry_initial: Duration = timedelta(seconds=5)
    retry_max: Duration = timedelta(minutes=30)
    dead_after: Duration = timedelta(days=3)
    health_file: str | None = None

    _parse = field_validator(
        "debounce", "shutdown_grace", "send_interval", "retry_initial", "retry_max", "dead_after", mode="before"
    )(lambda cls, v: parse_duration(v))


class ApiSettings(_Strict):
    """Where the read-only HTTP API listens (`pillarwatch serve`, `pillarwatch daemon`) and who may read it."""

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8477, ge=1, le=65535)
    token_env: str | None = Field(default=None, min_length=1)
    token_file: str | None = Field(default=None, min_length=1)
    ready_max_age: Duration = timedelta(hours=1)

    _parse = field_validator("ready_max_age", mode="before")(lambda cls, v: parse_duration(v))

    @model_validator(mode="after")
    def _one_token_source(self) -> ApiSettings:
        if self.token_env and self.token_file:
            raise ValueError("give token_env or token_file, not both")
        return self


class Config(_Strict):
    version: Literal[1] = 1
    store: str = ".pillarwatch/pillarwatch.db"
    cache_dir: str | None = None
    concurrency: int = Field(default=8, ge=1, le=256)
    allow_commands: bool = False
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
        return self._resolve(self.store)

    @property
    def health_path(self) -> Path:
        return self._resolve(self.daemon.health_file) if self.daemon.health_file else self.store_path.with_suffix(".health.json")

    @property
    def cache_path(self) -> Path:
        return self._resolve(self.cache_dir) if self.cache_dir else self.store_path.parent / "mirrors"

    def _resolve(self, value: str) -> Path:
        p = Path(value).expanduser()
        base = self.path.parent if self.path else Path.cwd()
        return p if p.is_absolute() else (base / p).resolve()

    def project(self, project_id: str) -> Project:
        for p in self.projects:
            if p.id == project_id:
                return p
        from .errors import NotFound

        raise NotFound(f"no project {project_id!r} in the configuration (have: {', '.join(p.id for p in self.projects)})")


# --- loading ---------------------------------------------------------------------------


def load_config(path: Path | str) -> Config:
    """Read, interpolate, validate and cross-check one configuration file."""
    doc = YamlDocument.load(Path(path))
    try:
        config = Config.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError([doc.problem(_strip_tags(e["loc"]), _message(e)) for e in exc.errors()]) from None
    config.path = doc.path
    problems = [doc.problem(loc, msg) for loc, msg in _cross_check(config)]
    if problems:
        raise ConfigError(problems)
    _resolve_local_paths(config)
    return config


_TAGS = set(SIGNAL_KINDS) | set(KINDS) | {"template", "pillar", "webhook", "slack", "email", "apprise", "log"}


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union members pydantic inserts into error locations."""
    out: list[Any] = []
    for part in loc:
        if isinstance(part, str) and (part in _TAGS or part in _UNION_NAMES or part.startswith(("function-", "tuple["))):
            continue
        out.append(part)
    return tuple(out)


_UNION_NAMES = {"PillarFromTemplate", "Pillar", "Scale", "Thresholds", "FreshWithinDays", "literal['bool','ratio']"}


def _message(error: dict[str, Any]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "field required"
    if kind == "union_tag_invalid":
        return f"unknown {error['ctx']['discriminator'].strip(chr(39))} {error['ctx']['tag']!r} (expected one of {error['ctx']['expected_tags']})"
    if kind == "union_tag_not_found":
        return f"field required: {error['ctx']['discriminator'].strip(chr(39))}"
    msg = msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _cross_check(config: Config) -> list[tuple[tuple[Any, ...], str]]:
    """What a single model cannot see: references between parts of the file."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    channel_ids: set[str] = set()
    for ci, channel in enumerate(config.channels):
        if channel.id in channel_ids:
            problems.append((("channels", ci, "id"), f"duplicate channel id {channel.id!r}"))
        channel_ids.add(channel.id)
    project_ids = {p.id for p in config.projects}
    for ri, rule in enumerate(config.routes):
        for ki, channel_id in enumerate(rule.channels):
            if channel_id not in channel_ids and channel_id != "log":
                problems.append((("routes", ri, "channels", ki), f"no channel {channel_id!r} (have: {', '.join(sorted(channel_ids)) or 'none'})"))
        for ki, project_id in enumerate(rule.projects or []):
            if project_id not in project_ids:
                problems.append((("routes", ri, "projects", ki), f"no project {project_id!r}"))
    seen_projects: set[str] = set()
    for pi, project in enumerate(config.projects):
        ploc = ("projects", pi)
        if project.id in seen_projects:
            problems.append((ploc + ("id",), f"duplicate project id {project.id!r}"))
        seen_projects.add(project.id)
        kinds: dict[str, str] = {}
        for si, source in enumerate(project.sources):
            if source.id in kinds:
                problems.append((ploc + ("sources", si, "id"), f"duplicate source id {source.id!r}"))
            kinds[source.id] = source.kind
        for si, source in enumerate(project.sources):
            upstream = getattr(source, "git", None)
            if upstream is not None and kinds.get(upstream) != "git":
                problems.append((ploc + ("sources", si, "git"), f"no git source {upstream!r} in project {project.id!r}"))
        expanded: list[Pillar] = []
        for xi, entry in enumerate(project.pillars):
            if isinstance(entry, PillarFromTemplate):
                template = config.templates.pillars.get(entry.template)
                if template is None:
                    problems.append((ploc + ("pillars", xi, "template"), f"no pillar template {entry.template!r}"))
                    continue
                overrides = {k: v for k, v in entry.model_dump(exclude={"template"}).items() if v is not None}
                entry = template.model_copy(update=overrides)
                project.pillars[xi] = entry
            expanded.append(entry)
        pillar_ids: set[str] = set()
        for xi, pillar in enumerate(project.pillars):
            if not isinstance(pillar, Pillar):
                continue
            if pillar.id in pillar_ids:
                problems.append((ploc + ("pillars", xi, "id"), f"duplicate pillar id {pillar.id!r}"))
            pillar_ids.add(pillar.id)
            criterion_ids: set[str] = set()
            for ci, criterion in enumerate(pillar.criteria):
                cloc = ploc + ("pillars", xi, "criteria", ci)
                if criterion.id in criterion_ids:
                    problems.append((cloc + ("id",), f"duplicate criterion id {criterion.id!r}"))
                criterion_ids.add(criterion.id)
                for ki, check in enumerate(criterion.checks):
                    kloc = cloc + ("checks", ki)
                    kind = kinds.get(check.source)
                    if kind is None:
                        problems.append((kloc + ("source",), f"no source {check.source!r} in project {project.id!r} (have: {', '.join(kinds) or 'none'})"))
                    elif kind not in SIGNAL_KINDS[check.signal]:
                        needs = " or ".join(SIGNAL_KINDS[check.signal])
                        problems.append((kloc + ("signal",), f"signal {check.signal!r} needs a {needs} source, but {check.source!r} is a {kind} source"))
                    elif check.effective_transform is None:
                        problems.append((kloc + ("transform",), "field required for this signal"))
                    # A declared score is looked up by the criterion's own title unless told otherwise.
                    if check.signal == "declared_score" and not check.title:
                        check.title = criterion.title
    return problems


def _resolve_local_paths(config: Config) -> None:
    """Make paths on this machine absolute, relative to the configuration file."""
    if config.api.token_file:
        config.api.token_file = str(config._resolve(config.api.token_file))
    for channel in config.channels:
        for name in ("secret_file", "url_file"):
            value = getattr(channel, name, None)
            if value:
                setattr(channel, name, str(config._resolve(value)))
    for project in config.projects:
        for source in project.sources:
            reads_git = getattr(source, "git", None) is not None
            for name in _LOCAL_PATHS.get(source.kind, ()):
                value = getattr(source, name)
                if value and not reads_git:
                    setattr(source, name, str(config._resolve(value)))


# Fields naming a path on this machine (a path inside a git source is not one).
_LOCAL_PATHS = {"git": ("path",), "doc": ("path",), "junit": ("path",), "command": ("cwd",)}


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file, generated from the models."""
    return TypeAdapter(Config).json_schema()


__all__ = ["ApiSettings", "Config", "ConfigError", "Criterion", "Pillar", "Project", "format_loc", "load_config", "parse_duration"]
