"""GitHub collector: the completed runs of one Actions workflow, and the check runs of a branch head.

One listing per collection for the run signals
(``GET /repos/{repo}/actions/workflows/{workflow}/runs``, completed runs only,
pages followed until enough runs), and one for ``check_runs``
(``GET /repos/{repo}/commits/{branch}/check-runs``, every page; the
repository's default branch when the source names none), all revalidated with
ETags so that an unchanged answer costs a 304, which GitHub does not count
against the rate limit. When one listing fails the source has not answered
(its evidence is stale), while the evidence the other one gave is kept.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from collectors import ci
from collectors.evidence import (
    CollectResult,
    Evidence,
    EvidenceError,
    EvidenceRequest,
    Provenance,
    SourceFault,
    answer,
    failed,
    signal_params,
)
from collectors.gitrepo import GitSource
from collectors.http import ApiClient, get_json, iter_pages, open_client, resolve_token
from collectors.httpcache import EtagCache
from collectors.models.github import SIGNALS, CheckRuns, GitHubSource
from collectors.regex import compile_regex

__all__ = ["API_HEADERS", "SIGNALS", "GitHubSource", "collect", "completed_runs"]

_MAX_PAGES = 10
_LIST_LIMIT = 20  # names listed in a check_runs value
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
    cache = EtagCache(cache_dir / "http") if cache_dir is not None else None  # none: no revalidation
    checks = [i for i, r in enumerate(requests) if r.signal == "check_runs"]
    others = [r for i, r in enumerate(requests) if i not in checks]
    with open_client(timeout=source.timeout_seconds, token=token, headers=API_HEADERS) as client:
        runs = _run_signals(source, others, client, cache, now)
        checked = _check_runs(source, [requests[i] for i in checks], client, cache, now)
    order = iter(runs.evidence)
    by_index = dict(zip(checks, checked.evidence, strict=True))
    evidence = [by_index[i] if i in by_index else next(order) for i in range(len(requests))]
    return CollectResult(source=source.id, evidence=evidence, error=runs.error or checked.error,
                         fingerprint=runs.fingerprint or checked.fingerprint)


def _run_signals(source: GitHubSource, requests: list[EvidenceRequest], client: ApiClient, cache: EtagCache | None,
                 now: datetime) -> CollectResult:
    """The evidence of every request but ``check_runs``, from the workflow's runs."""
    if source.workflow is None:  # nothing to list: each run signal says what it lacks
        return CollectResult(source=source.id, evidence=[
            Evidence(source=source.id, signal=r.signal, params=r.params, error=_no_workflow(source, r), observed_at=now)
            for r in requests])
    where = f"workflow {source.workflow} of {source.repo}" + (f" on {source.branch}" if source.branch else "")
    return ci.collect_runs(source.id, requests, signals=SIGNALS, provider="github", where=where, now=now,
                           fetch=lambda need: completed_runs(source, client, cache, need))


def _no_workflow(source: GitHubSource, request: EvidenceRequest) -> EvidenceError:
    try:
        signal_params("github", SIGNALS, request)
    except SourceFault as fault:
        return fault.error
    return EvidenceError(kind="unsupported", message=f"github source {source.id} names no workflow: "
                                                     f"{request.signal} reads a workflow's runs")


def _check_runs(source: GitHubSource, requests: list[EvidenceRequest], client: ApiClient, cache: EtagCache | None,
                now: datetime) -> CollectResult:
    """The ``check_runs`` evidence, from one listing of the branch head's check runs (none when none is asked)."""
    parsed: list[CheckRuns | EvidenceError] = []
    for request in requests:
        try:
            parsed.append(signal_params("github", SIGNALS, request))  # type: ignore[arg-type]
        except SourceFault as fault:
            parsed.append(fault.error)
    if all(isinstance(p, EvidenceError) for p in parsed):
        listed: list[dict[str, Any]] = []
        ref = ""
    else:
        try:
            ref = source.branch or _default_branch(source, client, cache)
            listed = _list_check_runs(source, client, cache, ref)
        except SourceFault as fault:
            return failed(source.id, requests, fault.error, now=now)

    def read(params: CheckRuns) -> tuple[dict[str, Any], Provenance]:
        return _check_runs_value(params, listed, ref, f"{source.repo}@{ref}")

    evidence = [Evidence(source=source.id, signal=r.signal, params=r.params, error=p, observed_at=now)
                if isinstance(p, EvidenceError) else answer(source.id, r, now, lambda p=p: read(p))
                for r, p in zip(requests, parsed, strict=True)]
    head = next((str(run["head_sha"]) for run in listed if run.get("head_sha")), None)
    return CollectResult(source=source.id, evidence=evidence, fingerprint=head)


def _default_branch(source: GitHubSource, client: ApiClient, cache: EtagCache | None) -> str:
    url = f"{source.api_url}/repos/{source.repo}"
    data = get_json(client, url, cache=cache, max_bytes=source.max_bytes).data
    branch = data.get("default_branch") if isinstance(data, dict) else None
    if not isinstance(branch, str) or not branch:
        raise SourceFault("malformed", f"GET {client.scrub(url)}: answer has no default_branch")
    return branch


def _list_check_runs(source: GitHubSource, client: ApiClient, cache: EtagCache | None, ref: str) -> list[dict[str, Any]]:
    """Every check run of `ref`'s head (the latest of each name, as GitHub lists them); raises SourceFault."""
    url = f"{source.api_url}/repos/{source.repo}/commits/{quote(ref, safe='')}/check-runs"
    listed: list[dict[str, Any]] = []
    for page in iter_pages(client, url, params={"per_page": 100}, cache=cache, max_bytes=source.max_bytes,
                           max_pages=_MAX_PAGES):
        runs = page.data.get("check_runs") if isinstance(page.data, dict) else None
        if not isinstance(runs, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in runs):
            raise SourceFault("malformed", f"GET {client.scrub(url)}: answer has no check_runs list of named runs")
        listed += runs
    return listed


def _check_runs_value(params: CheckRuns, listed: list[dict[str, Any]], ref: str,
                      where: str) -> tuple[dict[str, Any], Provenance]:
    pattern = compile_regex(params.name) if params.name is not None else None
    chosen = [run for run in listed if pattern is None or pattern.search(run["name"]) is not None]
    shown = f" matching {params.name!r}" if params.name is not None else ""
    if not chosen:
        raise SourceFault("not_found", f"no check run{shown} on the head of {where} ({len(listed)} listed)")
    done = [run for run in chosen if run.get("status") == "completed"]
    conclusions = [ci.normalise_conclusion(run.get("conclusion")) for run in done]
    passed, failed_, counted = ci.tally(conclusions, count_cancelled=params.count_cancelled)
    pending = len(chosen) - len(done)
    if not counted:
        raise SourceFault("not_found", f"no check run{shown} on the head of {where} has concluded other than "
                                       f"cancelled or skipped ({len(done)} completed, {pending} not yet)")
    tally: dict[str, int] = {}
    for conclusion in conclusions:
        tally[conclusion] = tally.get(conclusion, 0) + 1
    # The names that lowered the rate: counted, and not a success.
    spared = frozenset() if params.count_cancelled else ci.UNCOUNTED
    lowered = [run for run, c in zip(done, conclusions, strict=True) if c != "success" and c not in spared]
    failing = sorted(run["name"] for run in lowered)
    first = lowered[0] if lowered else done[0]
    value = {"success_rate": passed / counted, "total": len(chosen), "completed": len(done), "pending": pending,
             "passed": passed, "failed": failed_, "counted": counted, "conclusions": dict(sorted(tally.items())),
             "failing": failing[:_LIST_LIMIT], "ref": ref, "head_sha": str(chosen[0].get("head_sha") or "") or None}
    return value, Provenance(url=str(first.get("html_url") or "") or None, commit=value["head_sha"])


def completed_runs(source: GitHubSource, client: ApiClient, cache: EtagCache | None, need: int) -> list[ci.Run]:
    """At least the newest `need` completed runs when there are that many, newest first; raises SourceFault."""
    if source.workflow is None:
        raise SourceFault("unsupported", f"github source {source.id} names no workflow")
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
