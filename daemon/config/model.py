"""The configuration model: projects, their sources, pillars, criteria, checks.

The YAML is validated by the pydantic models below; the models of sources and
of signal parameters belong to the collectors, and a check is one signal's
parameters plus the few fields that say how to score it. ``load_config``
turns every fault into a :class:`ConfigError` whose lines name the file, the
line and the field (see :mod:`daemon.config.yamlsource`).
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model, TypeAdapter, ValidationError, field_validator, model_validator

from collectors.kinds import KINDS, kinds_of_signal, signal_models
from collectors.evidence import EvidenceRequest, canonical_json, evidence_key

from daemon.alerting.rules import AlertRules
from daemon.errors import ConfigError
from daemon.alerting.notify.channels import Channel, Route
from daemon.run.retention import RetentionPolicy
from daemon.run.schedule import Schedule
from daemon.config.yamlsource import YamlDocument, format_loc

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


# What the daemon adds to a collector's source model; the collector (and a worker) never sees these.
DAEMON_SOURCE_KEYS = frozenset({"schedule", "queue"})


def _scheduled(model: type[BaseModel]) -> type[BaseModel]:
    """A collector's source model, plus when the daemon collects it and on which Celery queue (the collector ignores both)."""
    return create_model("Configured" + model.__name__, __base__=model, __module__=__name__, schedule=(Optional[Schedule], None),
                        queue=(Optional[Annotated[str, Field(pattern=_ID)]], None))


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
        return self._rules_hash

    @cached_property
    def _rules_hash(self) -> str:
        # Computed once, after loading. Titles and alert floors do not change a score.
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


class CelerySettings(_Strict):
    """How the daemon reaches Celery workers (`executor: celery`) and how `pillarwatch worker` reaches the broker."""

    broker_url: str | None = Field(default=None, min_length=1)
    broker_url_env: str | None = Field(default=None, min_length=1)
    result_backend: str | None = Field(default=None, min_length=1)
    result_backend_env: str | None = Field(default=None, min_length=1)
    default_queue: str = Field(default="pillarwatch", pattern=_ID)
    queues: list[Annotated[str, Field(pattern=_ID)]] = Field(default_factory=list)
    visibility_timeout: Duration = timedelta(hours=1)
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_delay: Duration = timedelta(seconds=5)
    result_timeout: Optional[Duration] = None

    DEFAULT_BROKER: ClassVar[str] = "redis://127.0.0.1:6379/0"
    # A collection's soft limit is its sources' timeouts plus this; the hard limit (the worker
    # process is killed) this much later again.
    MARGIN_SECONDS: ClassVar[float] = 5.0

    _parse = field_validator("visibility_timeout", "retry_delay", "result_timeout", mode="before")(
        lambda cls, v: None if v is None else parse_duration(v))

    @model_validator(mode="after")
    def _one_way_each(self) -> CelerySettings:
        if self.broker_url and self.broker_url_env:
            raise ValueError("give broker_url or broker_url_env, not both")
        if self.result_backend and self.result_backend_env:
            raise ValueError("give result_backend or result_backend_env, not both")
        if self.retry_delay < timedelta(seconds=1):
            raise ValueError("retry_delay must be at least 1s")
        return self

    @property
    def all_queues(self) -> list[str]:
        return [self.default_queue, *(q for q in self.queues if q != self.default_queue)]

    def time_limits(self, timeout_seconds: float) -> tuple[float, float]:
        """(soft, hard) time limit of a task whose sources' timeouts add up to `timeout_seconds`."""
        soft = timeout_seconds + self.MARGIN_SECONDS
        return soft, soft + self.MARGIN_SECONDS

    def retry_countdowns(self) -> list[int]:
        """How long each retry of an unreachable source waits: `retry_delay`, doubling (whole seconds)."""
        base = max(1, round(self.retry_delay.total_seconds()))
        return [base * 2**n for n in range(self.max_retries)]

    def wait_seconds(self, timeout_seconds: float) -> float:
        """How long the daemon waits for a task's result: every attempt to its hard limit, the retry
        delays, and one visibility timeout (a task whose worker died is delivered again after it)."""
        if self.result_timeout is not None:
            return self.result_timeout.total_seconds()
        _, hard = self.time_limits(timeout_seconds)
        return (self.max_retries + 1) * hard + sum(self.retry_countdowns()) + self.visibility_timeout.total_seconds() + 30

    def broker(self) -> str:
        """The broker URL (it may hold a password: never log it)."""
        return _from_env(self.broker_url_env, "celery.broker_url_env") if self.broker_url_env else self.broker_url or self.DEFAULT_BROKER

    def backend(self) -> str:
        """The result backend URL: by default the broker's when it is Redis, else `rpc://` (results as broker messages)."""
        if self.result_backend_env:
            return _from_env(self.result_backend_env, "celery.result_backend_env")
        if self.result_backend:
            return self.result_backend
        broker = self.broker()
        return broker if broker.split(":", 1)[0] in ("redis", "rediss", "sentinel") else "rpc://"


def _from_env(name: str, key: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError([f"{key}: environment variable {name} is not set"])
    return value


class Config(_Strict):
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
        from daemon.errors import NotFound

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
    problems += _check_queues(config)
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


def source_timeout(source: Any) -> float:
    """How long one collection of a source may take (a document read through git has no timeout of its own)."""
    return float(getattr(source, "timeout_seconds", 60.0))


def _check_queues(config: Config) -> list[tuple[tuple[Any, ...], str]]:
    """A source's queue must be one the workers are told of; with Celery, a task must end before the
    broker would deliver it again (Redis's visibility timeout)."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    settings = config.celery
    visibility = settings.visibility_timeout.total_seconds()
    longest_wait = max(settings.retry_countdowns(), default=0)
    for pi, project in enumerate(config.projects):
        for si, source in enumerate(project.sources):
            loc = ("projects", pi, "sources", si)
            if source.queue and settings.queues and source.queue not in settings.all_queues:
                problems.append((loc + ("queue",), f"no queue {source.queue!r} in celery.queues (have: {', '.join(settings.all_queues)})"))
            if config.executor != "celery" or getattr(source, "git", None):
                continue
            total = source_timeout(source) + sum(source_timeout(s) for s in project.sources if getattr(s, "git", None) == source.id)
            _, hard = settings.time_limits(total)
            if hard + longest_wait >= visibility:
                problems.append((loc + ("timeout_seconds",), f"a task of this source may run {hard + longest_wait:g}s, not shorter than"
                                 f" celery.visibility_timeout ({visibility:g}s): the broker would deliver it twice"))
    return problems


def load_worker_settings(path: Path | str) -> tuple[CelerySettings, Config]:
    """What `pillarwatch worker` reads of a configuration: `celery`, `allow_commands`, `cache_dir`.

    Projects are not read (a worker may get a file with none); a fault in the
    keys it reads is a :class:`ConfigError` naming the file and line.
    """
    doc = YamlDocument.load(Path(path))
    wanted = {k: doc.data[k] for k in ("celery", "allow_commands", "cache_dir", "store") if k in doc.data}
    try:
        config = Config.model_validate({**wanted, "projects": [_NO_PROJECT]})
    except ValidationError as exc:
        raise ConfigError([doc.problem(_strip_tags(e["loc"]), _message(e)) for e in exc.errors()]) from None
    config.path = doc.path
    return config.celery, config


# A stand-in project: a worker's configuration is validated without its projects.
_NO_PROJECT = {"id": "worker", "sources": [{"id": "none", "kind": "doc", "path": "none"}],
               "pillars": [{"id": "none", "title": "none", "criteria": [{"id": "none", "title": "none", "not_applicable": "worker"}]}]}


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


__all__ = ["ApiSettings", "CelerySettings", "Config", "ConfigError", "Criterion", "Pillar", "Project", "format_loc", "load_config", "parse_duration"]
