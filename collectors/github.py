"""GitHub Actions collector: the completed runs of one workflow, on one branch.

One listing per collection (``GET /repos/{repo}/actions/workflows/{workflow}/runs``,
completed runs only, pages followed until enough runs), revalidated with ETags
so that an unchanged answer costs a 304, which GitHub does not count against
the rate limit.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from collectors import ci
from collectors.evidence import CollectResult, EvidenceRequest, SourceFault, failed
from collectors.gitrepo import GitSource
from collectors.http import ApiClient, iter_pages, open_client, resolve_token
from collectors.httpcache import EtagCache
from collectors.models.github import SIGNALS, GitHubSource

__all__ = ["API_HEADERS", "SIGNALS", "GitHubSource", "collect", "completed_runs"]

_MAX_PAGES = 10
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


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
