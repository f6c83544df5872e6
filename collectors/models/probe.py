"""The http kind's models: :class:`HttpSource` and its signals' parameters."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from collectors.evidence import SignalParams, signal_table

__all__ = ["SIGNALS", "HttpSource", "JsonValue", "Latency", "Status"]

_HOST = re.compile(r"^(?:\*|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class HttpSource(BaseModel):
    """An HTTP(S) endpoint probed with one request per collection."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["http"] = "http"
    id: str
    url: str
    method: Literal["GET", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = None
    timeout_seconds: float = Field(default=10, gt=0)
    max_bytes: int = Field(default=1_000_000, gt=0)
    # false: a redirect is the answer (and not ok); true: followed on the same host; a list: also to these hosts.
    follow_redirects: bool | list[str] = False

    @field_validator("follow_redirects")
    @classmethod
    def _hosts(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list):
            bad = [h for h in value if not _HOST.match(h)]
            if bad:
                raise ValueError(f"follow_redirects: {bad[0]!r} is not a host name")
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        # The HTTP module (ssl) loads when a source is validated, not with the models: start-up time.
        from collectors.http import http_url

        return http_url(value)

    @field_validator("headers")
    @classmethod
    def _printable(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if _CONTROL.search(name + text) or not (name + text).isascii():
                raise ValueError(f"header {name!r} must be printable ASCII")
        return value


class Status(SignalParams):
    signal: Literal["status"] = "status"
    default_field, default_transform = "ok", "bool"


class Latency(SignalParams):
    signal: Literal["latency"] = "latency"
    default_field, default_transform = "ms", None


class JsonValue(SignalParams):
    signal: Literal["json_value"] = "json_value"
    path: str = Field(min_length=1)  # dotted; list indexes as numbers: "checks.0.status"
    default_field, default_transform = "value", "bool"

    @field_validator("path")
    @classmethod
    def _segments(cls, value: str) -> str:
        if any(not part for part in value.split(".")):
            raise ValueError(f"path {value!r} has an empty segment")
        return value


SIGNALS = signal_table(Status, Latency, JsonValue)
