"""GitLab CI collector: the completed pipelines of one project, on one ref.

One listing per collection (``GET /projects/{id}/pipelines``, newest first,
pages followed until enough completed pipelines), plus, when asked for, the
newest completed pipeline itself (its ``duration``, which the listing lacks)
and its test report; all revalidated with ETags.

Every request the asked evidence needs counts: when one fails (an HTTP error,
a timeout, a malformed answer), the source has not answered, so the snapshot
is partial, a ``source_failing`` alert can fire and the run counts as an
error, while the evidence that was read is kept. A 404 is an answer (nothing
there), not a failure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from collectors import ci
from collectors.evidence import CollectResult, EvidenceRequest, Provenance, SourceFault, failed
from collectors.gitrepo import GitSource
from collectors.http import ApiClient, get_json, iter_pages, open_client, resolve_token
from collectors.httpcache import EtagCache
from collectors.models.gitlab import SIGNALS, GitLabSource

__all__ = ["SIGNALS", "GitLabSource", "collect"]

_COMPLETED = frozenset({"success", "failed", "canceled", "skipped"})
_COUNTS = ("success", "failed", "skipped", "error")
_MAX_PAGES = 10
_MIN_PAGE = 20  # running and pending pipelines sit on top: ask for a few more than needed


def collect(
    source: GitLabSource,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path | None = None,
    repo: GitSource | None = None,
    commit: str | None = None,
    previous: CollectResult | None = None,
    allow_commands: bool = False,
) -> CollectResult:
    """Answer every request from one listing of the project's pipelines; never raises for source faults.

    `cache_dir` keeps the ETags of earlier answers; the other keywords are not used.
    """
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)  # a naive `now` is UTC
    try:
        token = resolve_token(source.token_env, source.token_file)
    except SourceFault as fault:
        return failed(source.id, requests, fault.error, now=now)
    where = f"project {source.project}" + (f" on {source.ref}" if source.ref else "")
    cache = EtagCache(cache_dir / "http") if cache_dir is not None else None  # none: no revalidation
    base = f"{source.api_url}/projects/{quote(source.project, safe='')}/pipelines"
    with open_client(timeout=source.timeout_seconds, token=token, auth_scheme="PRIVATE-TOKEN") as client:
        answers: dict[tuple[str, int], Any] = {}  # each request once, however many checks ask
        faults: list[SourceFault] = []

        def once(what: str, run: ci.Run, ask: Callable[[], Any]) -> Any:
            if (what, run.run_id) not in answers:
                try:
                    answers[what, run.run_id] = ask()
                except SourceFault as fault:
                    answers[what, run.run_id] = fault
                    if fault.error.kind != "not_found":
                        faults.append(fault)
            answer = answers[what, run.run_id]
            if isinstance(answer, SourceFault):
                raise answer
            return answer

        def test_report(params: ci.TestReport, runs: list[ci.Run]) -> tuple[dict[str, Any], Provenance]:
            return once("test_report", runs[0], lambda: _test_report(source, client, cache, base, runs[0]))  # type: ignore[no-any-return]

        def latest_run(params: ci.LatestRun, runs: list[ci.Run]) -> tuple[dict[str, Any], Provenance]:
            latest = runs[0]
            if latest.duration_seconds is None:  # the listing has no duration: the pipeline itself has
                try:
                    duration = once("pipeline", latest, lambda: _pipeline_duration(source, client, cache, base, latest))
                except SourceFault as fault:
                    if fault.error.kind != "not_found":
                        raise
                    duration = None  # gone since it was listed: no duration to report
                latest = dataclasses.replace(latest, duration_seconds=duration)
            return ci.latest_run(params, [latest, *runs[1:]])

        result = ci.collect_runs(source.id, requests, signals=SIGNALS, provider="gitlab", where=where, now=now,
                                 fetch=lambda need: _runs(source, client, cache, base, need),
                                 extra={"test_report": test_report, "latest_run": latest_run})
    if faults and result.error is None:
        result = result.model_copy(update={"error": faults[0].error})
    return result


def _runs(source: GitLabSource, client: ApiClient, cache: EtagCache | None, url: str, need: int) -> list[ci.Run]:
    params: dict[str, str | int] = {"per_page": min(100, max(need, _MIN_PAGE)), "order_by": "id", "sort": "desc"}
    if source.ref:
        params["ref"] = source.ref
    runs: list[ci.Run] = []
    for page in iter_pages(client, url, params=params, cache=cache, max_bytes=source.max_bytes,
                           max_pages=_MAX_PAGES):
        if not isinstance(page.data, list):
            raise SourceFault("malformed", f"GET {client.scrub(url)}: answer is not a list of pipelines")
        runs += [_run(raw, url, client) for raw in page.data
                 if isinstance(raw, dict) and raw.get("status") in _COMPLETED]
        if len(runs) >= need:
            break
    return sorted(runs, key=lambda run: run.run_id, reverse=True)  # ids grow: the newest first, as asked


def _run(raw: dict[str, Any], url: str, client: ApiClient) -> ci.Run:
    try:
        created = raw["created_at"]
        if ci.parse_time(created) is None or isinstance(raw["id"], bool):
            raise ValueError(created)
        number = raw.get("iid")
        return ci.Run(
            run_id=int(raw["id"]),
            run_number=int(number) if isinstance(number, int) else None,
            conclusion=ci.normalise_conclusion(raw["status"]),
            url=str(raw.get("web_url") or ""),
            head_sha=str(raw.get("sha") or ""),
            created_at=created,
            duration_seconds=_duration(raw),
        )
    except (KeyError, TypeError, ValueError):
        raise SourceFault("malformed", f"GET {client.scrub(url)}: a pipeline lacks a valid id or created_at") from None


def _duration(raw: dict[str, Any]) -> float | None:
    """GitLab's own `duration` (seconds the pipeline ran), or None.

    Never derived from timestamps: `updated_at - created_at` counts queueing and
    any later change, and GitLab leaves `started_at` unset on some finished pipelines.
    """
    duration = raw.get("duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration >= 0:
        return float(duration)
    return None


def _pipeline_duration(source: GitLabSource, client: ApiClient, cache: EtagCache | None, base: str, run: ci.Run) -> float | None:
    """The `duration` of one pipeline, from ``GET /projects/{id}/pipelines/{pipeline_id}``."""
    url = f"{base}/{run.run_id}"
    data = get_json(client, url, cache=cache, max_bytes=source.max_bytes).data
    if not isinstance(data, dict):
        raise SourceFault("malformed", f"GET {client.scrub(url)}: answer is not a pipeline object")
    return _duration(data)


def _test_report(
    source: GitLabSource, client: ApiClient, cache: EtagCache | None, base: str, run: ci.Run
) -> tuple[dict[str, Any], Provenance]:
    url = f"{base}/{run.run_id}/test_report"
    data = get_json(client, url, cache=cache, max_bytes=source.max_bytes).data
    if not isinstance(data, dict):
        raise SourceFault("malformed", f"GET {client.scrub(url)}: answer is not a test report object")
    value = {name: _count(data, f"{name}_count", url, client) for name in _COUNTS}
    total = data.get("total_count")
    value["total"] = sum(value.values()) if total is None else _count(data, "total_count", url, client)
    ran = value["total"] - value["skipped"]
    if ran <= 0:
        raise SourceFault("not_found", f"pipeline {run.run_id} of project {source.project} has no test results")
    return {**value, "pass_ratio": value["success"] / ran}, run.provenance


def _count(data: dict[str, Any], name: str, url: str, client: ApiClient) -> int:
    value = data.get(name)
    if value is None:  # some GitLab versions leave counts out or null
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceFault("malformed", f"GET {client.scrub(url)}: {name} is not a count: {str(value)[:40]!r}")
    return value
