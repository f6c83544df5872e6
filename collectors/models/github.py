"""The github kind's models: :class:`GitHubSource` and its signals (the CI ones)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from collectors.evidence import SignalParams, signal_table
from collectors.models import ci
from collectors.regex import regex_param

__all__ = ["SIGNALS", "CheckRuns", "GitHubSource"]

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_WORKFLOW = re.compile(r"^[^/\\\s\x00-\x1f\x7f]+$")


class GitHubSource(BaseModel):
    """One repository on github.com or GitHub Enterprise: one Actions workflow's runs, and the check runs of
    a branch head (`workflow` is needed only by the run signals)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["github"] = "github"
    id: str
    repo: str
    workflow: str | None = None
    branch: str | None = None
    api_url: str = "https://api.github.com"  # GitHub Enterprise: https://host/api/v3
    token_env: str | None = "GITHUB_TOKEN"  # an unset variable means no token
    token_file: str | None = None
    timeout_seconds: float = Field(default=30, gt=0)
    max_bytes: int = Field(default=5_000_000, gt=0)

    @field_validator("repo")
    @classmethod
    def _repo_shape(cls, value: str) -> str:
        if not _REPO.match(value) or any(part in (".", "..") for part in value.split("/")):
            raise ValueError(f"repo '{value}' is not of the form owner/name")
        return value

    @field_validator("workflow")
    @classmethod
    def _workflow_shape(cls, value: str | None) -> str | None:
        if value is not None and (not _WORKFLOW.match(value) or value in (".", "..")):
            raise ValueError(f"workflow '{value}' is not a workflow file name (ci.yml) or numeric id")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        # The HTTP module (ssl) loads when a source is validated, not with the models: start-up time.
        from collectors.http import check_api_url

        return check_api_url(value)


class CheckRuns(SignalParams):
    """The check runs of the branch head whose name `name` (RE2, searched) matches, and their conclusions.

    Any CI that reports to GitHub's Checks API (Actions, Buildkite, CircleCI, Jenkins through an app) is read
    here. The rate leaves cancelled and skipped check runs out unless `count_cancelled`, as `success_rate` does.
    """

    signal: Literal["check_runs"] = "check_runs"
    name: str | None = None  # None: every check run of the head
    count_cancelled: bool = False
    default_field, default_transform = "success_rate", "ratio"

    _re2 = field_validator("name")(lambda cls, v: v if v is None else regex_param(v))


SIGNALS = signal_table(ci.LatestRun, ci.SuccessRate, CheckRuns)
