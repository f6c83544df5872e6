"""The alerting part of the configuration: a project's ``alerts:`` block, and the
top-level ``channels:`` and ``routes:``.

``channels:`` is a list of :data:`Channel`, told apart by ``kind``. Secrets are
named, never written here: a ``*_env`` field names an environment variable and
a ``*_file`` field a file, both read at send time (see :mod:`collectors.secrets`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.config.durations import parse_optional_duration

EventKind = Literal["firing", "reminder", "resolved"]
Severity = Literal["critical", "warning", "info"]

_Id = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
_Timeout = Annotated[float, Field(gt=0, le=300)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The labels a channel may group its messages by (Alertmanager's ``group_by``); "..." groups by all of them.
GroupLabel = Literal["alertname", "project", "subject", "pillar", "severity", "..."]


class _Grouped(_Strict):
    """A channel that sends one message per group of alerts (Alertmanager's ``group_by`` and ``group_wait``)."""

    group_by: list[GroupLabel] = Field(default_factory=lambda: ["project"],
                                       description="labels whose values make a group: one message per group")
    group_wait: timedelta = Field(default=timedelta(seconds=30),
                                  description="how long a new group waits for more alerts before its message goes")

    @field_validator("group_wait", mode="before")
    @classmethod
    def _wait(cls, value: Any) -> Any:
        return parse_optional_duration(value)

    @field_validator("group_wait")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(0) <= value <= timedelta(hours=1):
            raise ValueError("group_wait must be between 0s and 1h")
        return value


def _one_source(fields: dict[str, object | None], what: str) -> None:
    given = [name for name, value in fields.items() if value]
    if len(given) != 1:
        raise ValueError(f"{what}: give exactly one of {', '.join(fields)} (got {', '.join(given) or 'none'})")


class WebhookChannel(_Grouped):
    """A JSON POST in Alertmanager's webhook format (version 4), signed per Standard Webhooks."""

    kind: Literal["webhook"] = "webhook"
    id: _Id
    url: str = Field(description="http(s) URL the JSON is POSTed to")
    secret_env: str | None = Field(default=None, description='environment variable holding the signing secret ("whsec_<base64>" or raw text)')
    secret_file: str | None = Field(default=None, description="file holding the signing secret")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    timeout_seconds: _Timeout = 10

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _secret(self) -> WebhookChannel:
        if self.secret_env and self.secret_file:
            raise ValueError("give secret_env or secret_file, not both")
        return self


class _UrlFromSecret(_Grouped):
    """A channel whose whole URL is its secret: exactly one of url_env, url_file or url."""

    url_env: str | None = None
    url_file: str | None = None
    url: str | None = None
    timeout_seconds: _Timeout = 10

    @model_validator(mode="after")
    def _source(self) -> _UrlFromSecret:
        _one_source({"url_env": self.url_env, "url_file": self.url_file, "url": self.url}, f"{self.kind} channel")  # type: ignore[attr-defined]
        return self


class SlackChannel(_UrlFromSecret):
    """A Slack incoming webhook; its URL is a secret, so prefer url_env or url_file."""

    kind: Literal["slack"] = "slack"
    id: _Id


class EmailChannel(_Grouped):
    """Plain-text e-mail over SMTP; credentials come from the environment."""

    kind: Literal["email"] = "email"
    id: _Id
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(min_length=3)
    to: list[str] = Field(min_length=1)
    timeout_seconds: _Timeout = 10
    # Put before "project: title" in the Subject, so that mail filters and people see where it comes from.
    subject_prefix: str = Field(default="[pillarwatch]", max_length=40)

    @model_validator(mode="after")
    def _credentials(self) -> EmailChannel:
        if bool(self.username_env) != bool(self.password_env):
            raise ValueError("give both username_env and password_env, or neither")
        return self


class AlertmanagerChannel(_Strict):
    """Alerts pushed to Alertmanager's API (``POST /api/v2/alerts``): its silences, inhibitions and receivers apply."""

    kind: Literal["alertmanager"] = "alertmanager"
    id: _Id
    url: str = Field(description="Alertmanager's base URL, e.g. http://127.0.0.1:9093")
    bearer_token_env: str | None = Field(default=None, description="environment variable holding a bearer token")
    bearer_token_file: str | None = Field(default=None, description="file holding a bearer token")
    username_env: str | None = Field(default=None, description="environment variable holding the basic-auth user")
    password_env: str | None = Field(default=None, description="environment variable holding the basic-auth password")
    ca_file: str | None = Field(default=None, description="PEM bundle of the CAs to trust for https (default: the system's)")
    dashboard_url: str | None = Field(default=None, description="pillarwatch's address as people reach it, for generatorURL")
    # A firing alert stays active in Alertmanager until endsAt; the sender re-posts it every resend_every
    # (default hold / 3), whatever the projects' repeat_interval. If pillarwatch stops, the alert ends by itself.
    hold: timedelta = Field(default=timedelta(hours=25), description="endsAt of a firing alert: this long after each post")
    resend_every: timedelta | None = Field(default=None, description="how often a firing alert is re-posted (default: hold / 3)")
    timeout_seconds: _Timeout = 10

    @field_validator("url", "dashboard_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("hold", "resend_every", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_optional_duration(value)

    @property
    def resend_interval(self) -> timedelta:
        """How long after a post a firing alert is posted again: well before its ``endsAt``."""
        return self.resend_every if self.resend_every is not None else self.hold / 3

    @model_validator(mode="after")
    def _auth(self) -> AlertmanagerChannel:
        if self.bearer_token_env and self.bearer_token_file:
            raise ValueError("give bearer_token_env or bearer_token_file, not both")
        if bool(self.username_env) != bool(self.password_env):
            raise ValueError("give both username_env and password_env, or neither")
        if self.username_env and (self.bearer_token_env or self.bearer_token_file):
            raise ValueError("give a bearer token or basic auth, not both")
        if self.resend_every is not None and not timedelta(0) < self.resend_every < self.hold:
            raise ValueError("resend_every must be above 0 and shorter than hold, or the alert ends while it fires")
        return self


class AppriseChannel(_UrlFromSecret):
    """Any service Apprise knows (ntfy://, gotify://, json://, ...); the URL may hold secrets."""

    kind: Literal["apprise"] = "apprise"
    id: _Id


class LogChannel(_Grouped):
    """One line per message on the ``pillarwatch.alerts`` logger."""

    kind: Literal["log"] = "log"
    id: _Id
    level: Literal["debug", "info", "warning", "error", "critical"] = "warning"


Channel = Annotated[
    WebhookChannel | AlertmanagerChannel | SlackChannel | EmailChannel | AppriseChannel | LogChannel,
    Field(discriminator="kind"),
]


class Route(_Strict):
    """Messages matching every given filter go to ``channels``; an omitted filter matches all."""

    channels: list[str] = Field(min_length=1)
    projects: list[str] | None = None
    severities: list[Severity] | None = None
    events: list[EventKind] | None = None


class AlertRules(BaseModel):
    """A project's `alerts:` block."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    threshold: float = Field(default=5.0, gt=0, description="a drop of at least this many % points is a regression")
    for_: int = Field(default=1, ge=1, alias="for", description="consecutive snapshots the drop must last before firing")
    repeat_interval: timedelta = Field(default=timedelta(hours=24), description="how often a firing alert is repeated")
    stale_after: timedelta | None = Field(default=timedelta(hours=6), description="a source failing longer than this fires `source_failing`")
    overall_below: float | None = Field(default=None, ge=0, le=100, description="a floor for the overall %")
    severity: Severity = "warning"

    @field_validator("repeat_interval", "stale_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_optional_duration(value)
