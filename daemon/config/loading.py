"""Reading a configuration file: parse, validate, cross-check, resolve local paths.

Every fault becomes a :class:`daemon.errors.ConfigError` whose lines name the
file, the line and the field (see :mod:`daemon.config.yamlsource`).
:func:`load_config` reads a whole file; :func:`load_worker_settings` only what
a Celery worker needs of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from collectors.kinds import KINDS
from daemon.config.model import SIGNAL_KINDS, Config, Pillar, PillarFromTemplate, source_timeout, upstream_id
from daemon.config.settings import CelerySettings
from daemon.config.yamlsource import YamlDocument
from daemon.errors import ConfigError
from daemon.gcpause import no_cycle_collection


def load_config(path: Path | str) -> Config:
    """Read, interpolate, validate and cross-check one configuration file."""
    with no_cycle_collection():  # 10,000 criteria are a few hundred thousand acyclic objects
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


_TAGS = set(SIGNAL_KINDS) | set(KINDS) | {"template", "pillar", "webhook", "alertmanager", "slack", "email", "apprise", "log"}


def _strip_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the union members pydantic inserts into error locations.

    A tag follows a list index (``sources, 0, junit``); after a key it is a field
    of the same name (a junit source's ``git`` or ``github``) and stays.
    """
    out: list[Any] = []
    for i, part in enumerate(loc):
        tag = part in _TAGS and i > 0 and isinstance(loc[i - 1], int)
        if isinstance(part, str) and (tag or part in _UNION_NAMES or part.startswith(("function-", "tuple["))):
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
            upstream = upstream_id(source)
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
            through = upstream_id(source)
            for key in ("schedule", "queue"):
                if through and getattr(source, key) is not None:
                    problems.append((loc + (key,), f"a source read through git source {through!r} is collected in that"
                                     f" source's job, on its schedule and queue: set the {key} on {through!r}"))
            if source.queue and settings.queues and source.queue not in settings.all_queues:
                problems.append((loc + ("queue",), f"no queue {source.queue!r} in celery.queues (have: {', '.join(settings.all_queues)})"))
            if config.executor != "celery" or through:
                continue
            total = source_timeout(source) + sum(source_timeout(s, source) for s in project.dependents(source.id))
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
        config.api.token_file = str(config.resolve(config.api.token_file))
    for channel in config.channels:
        for name in ("secret_file", "url_file"):
            value = getattr(channel, name, None)
            if value:
                setattr(channel, name, str(config.resolve(value)))
    for project in config.projects:
        for source in project.sources:
            reads_git = upstream_id(source) is not None
            for name in _LOCAL_PATHS.get(source.kind, ()):
                value = getattr(source, name)
                if value and not reads_git:
                    setattr(source, name, str(config.resolve(value)))


# Fields naming a path on this machine (a path inside a git source is not one).
_LOCAL_PATHS = {"git": ("path",), "doc": ("path",), "junit": ("path",), "command": ("cwd",)}


__all__ = ["load_config", "load_worker_settings"]
