"""What the CI collectors share: signal parameters and the arithmetic over runs.

GitHub Actions workflow runs and GitLab pipelines are both reduced to
:class:`Run` (completed runs only, newest first); the same signals are then
answered the same way whichever provider ran them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collectors.evidence import (
    CollectResult,
    Evidence,
    EvidenceError,
    EvidenceRequest,
    Provenance,
    SignalParams,
    SourceFault,
    failed,
    signal_params,
)
from collectors.models.ci import LatestRun, SuccessRate, TestReport

__all__ = [
    "LatestRun",
    "Run",
    "SuccessRate",
    "TestReport",
    "collect_runs",
    "normalise_conclusion",
    "parse_time",
    "seconds_between",
    "tally",
]

# Conclusions that are a failure of the work itself, as opposed to cancelled,
# skipped, neutral or action_required runs, which are neither success nor failure.
_FAILURES = frozenset({"failure", "timed_out", "startup_failure"})
# Conclusions left out of a success rate's denominator unless `count_cancelled`: nothing was judged.
UNCOUNTED = frozenset({"cancelled", "skipped"})
_SPELLINGS = {"failed": "failure", "canceled": "cancelled"}  # GitLab's words -> GitHub's


@dataclass(frozen=True)
class Run:
    """One completed CI run, whatever the provider."""

    run_id: int
    run_number: int | None
    conclusion: str  # normalised: success, failure, cancelled, skipped, timed_out, ...
    url: str
    head_sha: str
    created_at: str  # RFC 3339, as the provider wrote it
    duration_seconds: float | None

    @property
    def success(self) -> bool:
        return self.conclusion == "success"

    @property
    def provenance(self) -> Provenance:
        return Provenance(url=self.url or None, commit=self.head_sha or None)


def normalise_conclusion(raw: object) -> str:
    """GitHub's conclusion vocabulary for both providers ("failed" -> "failure")."""
    word = str(raw or "unknown").strip().lower()
    return _SPELLINGS.get(word, word)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time (``Z`` or an offset, optional fractions), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def seconds_between(start: object, end: object) -> float | None:
    """Seconds from `start` to `end`; None when either is missing or time runs backwards."""
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None or last < first:
        return None
    return (last - first).total_seconds()


# An extra signal's answer: (value, provenance) from its params and the runs; raises SourceFault.
Answer = Callable[[Any, list[Run]], tuple[dict[str, Any], Provenance]]
Fetch = Callable[[int], list[Run]]


def collect_runs(
    source_id: str,
    requests: list[EvidenceRequest],
    *,
    signals: dict[str, type[SignalParams]],
    provider: str,
    where: str,
    fetch: Fetch,
    now: datetime,
    extra: dict[str, Answer] | None = None,
) -> CollectResult:
    """Answer every request from one listing of runs.

    `fetch(n)` returns at least the newest `n` completed runs when there are
    that many (newest first); it is called once, with the largest `n` asked
    for. A fault in it fails the whole source; `where` names the runs in
    messages ("workflow ci.yml of o/r on main").
    """
    parsed = [_params(request, signals, provider) for request in requests]
    need = max((p.runs if isinstance(p, SuccessRate) else 1 for p in parsed if not isinstance(p, EvidenceError)),
               default=0)
    try:
        runs = fetch(need) if need else []
    except SourceFault as fault:
        return failed(source_id, requests, fault.error, now=now)
    answers: dict[str, Answer] = {"latest_run": latest_run, "success_rate": _success_rate, **(extra or {})}
    evidence = []
    for request, params in zip(requests, parsed, strict=True):
        value: dict[str, Any] | None = None
        error, provenance = params if isinstance(params, EvidenceError) else None, Provenance()
        if error is None:
            try:
                if not runs:
                    raise SourceFault("not_found", f"no completed runs of {where}")
                value, provenance = answers[request.signal](params, runs)
            except SourceFault as fault:
                error = fault.error
        evidence.append(Evidence(source=source_id, signal=request.signal, params=request.params, value=value,
                                 error=error, provenance=provenance, observed_at=now))
    return CollectResult(source=source_id, evidence=evidence, fingerprint=str(runs[0].run_id) if runs else None)


def _params(request: EvidenceRequest, signals: dict[str, type[SignalParams]], provider: str) -> SignalParams | EvidenceError:
    try:
        return signal_params(provider, signals, request)
    except SourceFault as fault:
        return fault.error


def latest_run(params: LatestRun, runs: list[Run]) -> tuple[dict[str, Any], Provenance]:
    """The ``latest_run`` answer from the newest run (a provider may complete the run first)."""
    run = runs[0]
    value = {"success": run.success, "conclusion": run.conclusion, "run_id": run.run_id,
             "run_number": run.run_number, "url": run.url, "head_sha": run.head_sha,
             "created_at": run.created_at, "duration_seconds": run.duration_seconds}
    return value, run.provenance


def tally(conclusions: list[str], *, count_cancelled: bool) -> tuple[int, int, int]:
    """(successes, failures, the success rate's denominator) of normalised conclusions.

    Cancelled and skipped ones are not in the denominator unless `count_cancelled`;
    every other conclusion (neutral, action_required, stale, ...) is, as not a success.
    """
    successes = sum(c == "success" for c in conclusions)
    failures = sum(c in _FAILURES for c in conclusions)
    counted = len(conclusions) if count_cancelled else sum(c not in UNCOUNTED for c in conclusions)
    return successes, failures, counted


def _success_rate(params: SuccessRate, runs: list[Run]) -> tuple[dict[str, Any], Provenance]:
    window = runs[: params.runs]  # fewer when the history is shorter
    successes, failures, counted = tally([run.conclusion for run in window], count_cancelled=params.count_cancelled)
    if not counted:
        raise SourceFault("not_found", f"the last {len(window)} completed runs were all cancelled or skipped")
    value = {"rate": successes / counted, "successes": successes, "runs": len(window), "failures": failures}
    return value, window[0].provenance
