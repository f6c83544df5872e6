"""The configuration's settings: how the daemon, its API and its Celery workers behave.

Each block of the file that is not about a project (``daemon:``, ``api:``,
``celery:``, ``display:``) is one model here; :class:`Strict` is the base of
every configuration model, so an unknown key is an error wherever it is.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.config.durations import Duration, parse_duration, parse_optional_duration
from daemon.errors import ConfigError

# What an id (project, source, pillar, criterion, queue) may be.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Strict(BaseModel):
    """A configuration block: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Display(Strict):
    decimals: int = Field(default=0, ge=0, le=6)


class DaemonSettings(Strict):
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


class ApiSettings(Strict):
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


class CelerySettings(Strict):
    """How the daemon reaches Celery workers (`executor: celery`) and how `pillarwatch worker` reaches the broker."""

    broker_url: str | None = Field(default=None, min_length=1)
    broker_url_env: str | None = Field(default=None, min_length=1)
    result_backend: str | None = Field(default=None, min_length=1)
    result_backend_env: str | None = Field(default=None, min_length=1)
    default_queue: str = Field(default="pillarwatch", pattern=ID_PATTERN)
    queues: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(default_factory=list)
    visibility_timeout: Duration = timedelta(hours=1)
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_delay: Duration = timedelta(seconds=5)
    result_timeout: Duration | None = None
    queue_timeout: Duration = timedelta(minutes=2)
    queue_timeouts: dict[Annotated[str, Field(pattern=ID_PATTERN)], Duration] = Field(default_factory=dict)

    DEFAULT_BROKER: ClassVar[str] = "redis://127.0.0.1:6379/0"
    # A collection's soft limit is its sources' timeouts plus this; the hard limit (the worker
    # process is killed) this much later again.
    MARGIN_SECONDS: ClassVar[float] = 5.0

    _parse = field_validator("visibility_timeout", "retry_delay", "result_timeout", "queue_timeout", mode="before")(
        lambda cls, v: parse_optional_duration(v))

    @field_validator("queue_timeouts", mode="before")
    @classmethod
    def _queue_durations(cls, value: object) -> object:
        return {k: parse_duration(v) for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _one_way_each(self) -> CelerySettings:
        if self.broker_url and self.broker_url_env:
            raise ValueError("give broker_url or broker_url_env, not both")
        if self.result_backend and self.result_backend_env:
            raise ValueError("give result_backend or result_backend_env, not both")
        if self.retry_delay < timedelta(seconds=1):
            raise ValueError("retry_delay must be at least 1s")
        unknown = sorted(set(self.queue_timeouts) - set(self.all_queues)) if self.queues else []
        if unknown:
            raise ValueError(f"queue_timeouts: unknown queue {unknown[0]!r} (not default_queue nor in queues)")
        if min([self.queue_timeout, *self.queue_timeouts.values()]) < timedelta(seconds=1):
            raise ValueError("a queue timeout must be at least 1s")
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

    def queue_wait_seconds(self, queue: str) -> float:
        """How long a task of ``queue`` may wait for a worker to take it before the daemon gives it up."""
        return self.queue_timeouts.get(queue, self.queue_timeout).total_seconds()

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


__all__ = ["ID_PATTERN", "ApiSettings", "CelerySettings", "DaemonSettings", "Display", "Strict"]
