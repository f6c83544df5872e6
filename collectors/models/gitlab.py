"""The gitlab kind's models: :class:`GitLabSource` and its signals (the CI ones)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from collectors.evidence import signal_table
from collectors.models import ci

__all__ = ["SIGNALS", "GitLabSource"]

_PROJECT = re.compile(r"^(\d+|[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+)$")


class GitLabSource(BaseModel):
    """One GitLab project (gitlab.com or self-managed)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["gitlab"] = "gitlab"
    id: str
    project: str  # numeric id or "group/project" path
    ref: str | None = None
    api_url: str = "https://gitlab.com/api/v4"  # self-managed: https://host/api/v4
    token_env: str | None = "GITLAB_TOKEN"  # sent as PRIVATE-TOKEN
    token_file: str | None = None
    timeout_seconds: float = Field(default=30, gt=0)
    max_bytes: int = Field(default=5_000_000, gt=0)

    @field_validator("project")
    @classmethod
    def _project_shape(cls, value: str) -> str:
        if not _PROJECT.match(value) or any(part in (".", "..") for part in value.split("/")):
            raise ValueError(f"project '{value}' is not a numeric id or a group/project path")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        # The HTTP module (ssl) loads when a source is validated, not with the models: start-up time.
        from collectors.http import check_api_url

        return check_api_url(value)


SIGNALS = signal_table(ci.LatestRun, ci.SuccessRate, ci.TestReport)
