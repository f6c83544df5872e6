"""GitHub Actions collector: the completed runs of one workflow, on one branch.

One listing per collection (``GET /repos/{repo}/actions/workflows/{workflow}/runs``,
completed runs only, pages followed until enough runs), revalidated with ETags
so that an unchanged answer costs a 304, which GitHub does not count against
the rate limit.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from collectors import ci
from collectors.evidence import CollectResult, EvidenceRequest, SourceFault, failed, signal_table
from collectors.gitrepo import GitSource
from collectors.http import ApiClient, check_api_url, iter_pages, open_client, resolve_token
from collectors.httpcache import EtagCache

__all__ = ["API_HEADERS", "SIGNALS", "GitHubSource", "collect", "completed_runs"]

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_WORKFLOW = re.compile(r"^[^/\\\s\x00-\x1f\x7f]+$")
_MAX_PAGES = 10
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


class GitHubSource(BaseModel):
    """One GitHub Actions workflow of one repository (github.com or GitHub Enterprise)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["github"] = "github"
    id: str
    repo: str
    workflow: str
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
    def _workflow_shape(cls, value: str) -> str:
        if not _WORKFLOW.match(value) or value in (".", ".."):
            raise ValueError(f"workflow '{value}' is not a workflow file name (ci.yml) or numeric id")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return check_api_url(value)


SIGNALS = signal_table(ci.LatestRun, ci.SuccessRate)


def collect(
    source: GitHubSource,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path | None = None,
    repo: GitSource | None = None,
    commit: str | None = None,
    previous: CollectResult | None = None,
    allow_commands: bool = False,
) -> CollectResult:
    """Answer every request from one listing of the workflow's runs; never raises for source faults.

    `cache_dir` keeps the ETags of earlier answers; the other keywords are not used.
    """
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)  # a naive `now` is UTC
    try:
        token = resolve_token(source.token_env, source.token_file)
    except SourceFault as fault:
        return failed(source.id, requests, fault.error, now=now)
    where = f"workflow {source.workflow} of {source.repo}" + (f" on {source.branch}" if source.branch else "")
    cache = EtagCache(cache_dir / "http") if cache_dir is not None else None  # none: no revalidation
    with open_client(timeout=source.timeout_seconds, token=token, headers=API_HEADERS) as client:
        return ci.collect_runs(source.id, requests, signals=SIGNALS, provider="github", where=where, now=now,
                               fetch=lambda need: completed_runs(source, client, cache, need))


def completed_runs(source: GitHubSource, client: ApiClient, cache: EtagCache | None, need: int) -> list[ci.Run]:
    """At least the newest `need` completed runs when there are that many, newest first; raises SourceFault."""
    url = f"{source.api_url}/repos/{source.repo}/actions/workflows/{quote(source.workflow, safe='')}/runs"
    params: dict[str, str | int] = {"status": "completed", "per_page": min(100, need),
                                    "exclude_pull_requests": "true"}  # smaller answers; we never read them
    if source.branch:
        params["branch"] = source.branch
    runs: list[ci.Run] = []
    for page in iter_pages(client, url, params=params, cache=cache, max_bytes=source.max_bytes,
                           max_pages=_MAX_PAGES):
        listed = page.data.get("workflow_runs") if isinstance(page.data, dict) else None
        if not isinstance(listed, list):
            raise SourceFault("malformed", f"GET {client.scrub(url)}: answer has no workflow_runs list")
        # status=completed already filters; checked again in case a proxy or an old server ignores it.
        runs += [_run(raw, url, client) for raw in listed
                 if isinstance(raw, dict) and raw.get("status") == "completed"]
        if len(runs) >= need:
            break
    return runs


def _run(raw: dict[str, Any], url: str, client: ApiClient) -> ci.Run:
    try:
        created = raw["created_at"]
        if ci.parse_time(created) is None or isinstance(raw["id"], bool):
            raise ValueError(created)
        number = raw.get("run_number")
        return ci.Run(
            run_id=int(raw["id"]),
            run_number=int(number) if isinstance(number, int) else None,
            conclusion=ci.normalise_conclusion(raw.get("conclusion")),
            url=str(raw.get("html_url") or ""),
            head_sha=str(raw.get("head_sha") or ""),
            created_at=created,
            # The run's wall time: from when it started (re-runs start later than created) to its last update.
            duration_seconds=ci.seconds_between(raw.get("run_started_at") or created, raw.get("updated_at")),
        )
    except (KeyError, TypeError, ValueError):
        message = f"GET {client.scrub(url)}: a workflow run lacks a valid id or created_at"
        raise SourceFault("malformed", message) from None
