"""Scoring: evidence in, a snapshot out. Pure functions, no I/O, ``now`` passed in.

A criterion is scored by its checks (each: an evidence field through a
transform), combined by weighted mean, ``min`` or ``all``; or by a manual
score until it expires; or it is not applicable. When its evidence could not
be collected it keeps its last score as ``stale`` until ``max_age``, then it
is ``unknown``. Pillar % and overall % follow DESIGN.md's arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from collectors.evidence import CollectResult, Evidence, EvidenceError, EvidenceRequest
from daemon.config.model import CheckFields, Criterion, FreshWithinDays, Pillar, Project, Scale, Thresholds, Transform
from daemon.gcpause import no_cycle_collection
from daemon.scoring.arithmetic import weighted_mean
from daemon.scoring.snapshot import CheckResult, CriterionScore, PillarScore, Snapshot, SourceState

_SCORED = ("ok", "stale", "manual")


class TransformError(ValueError):
    """An evidence value the transform cannot read (e.g. text for a scale)."""


def apply_transform(transform: Transform, value: Any) -> float:
    """Map one evidence value to a score in [0, 1]."""
    if value is None:
        # The evidence says the thing is absent (no such file, no history).
        return 0.0
    if transform == "bool":
        return 1.0 if value else 0.0
    number = _number(value)
    if transform == "ratio":
        return _clamp(number)
    if isinstance(transform, Scale):
        lo, hi = transform.scale
        return _clamp((number - lo) / (hi - lo))
    if isinstance(transform, Thresholds):
        reached = [score for at_least, score in sorted(transform.thresholds) if number >= at_least]
        return reached[-1] if reached else 0.0
    if isinstance(transform, FreshWithinDays):
        full, zero = transform.fresh_within_days
        return _clamp(1.0 - (number - full) / (zero - full))
    raise TransformError(f"unknown transform {transform!r}")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    raise TransformError(f"expected a number, got {value!r}")


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def combine(method: str, scored: Sequence[tuple[float, float]]) -> float | None:
    """Combine ``(score, weight)`` pairs of a criterion's checks."""
    if not scored:
        return None
    if method == "min":
        return min(s for s, _ in scored)
    if method == "all":
        return 1.0 if all(s >= 1.0 for s, _ in scored) else 0.0
    return weighted_mean(scored)


def score_check(check: CheckFields, evidence: Evidence | None, request: EvidenceRequest | None = None) -> CheckResult:
    request = request or check.request()
    value: Any = None
    score: float | None = None
    error: EvidenceError | None = None
    if evidence is None:
        error = EvidenceError(kind="not_found", message=f"source {check.source!r} was not collected")
    elif evidence.error is not None:
        error = evidence.error
    else:
        facts = evidence.value or {}
        if check.value_field not in facts:
            error = EvidenceError(
                kind="malformed",
                message=f"{request.signal} evidence has no field {check.value_field!r} (has: {', '.join(sorted(facts))})",
            )
        else:
            value = facts[check.value_field]
            try:
                score = apply_transform(check.effective_transform or "bool", value)
            except TransformError as exc:
                error = EvidenceError(kind="malformed", message=f"{check.value_field}: {exc}")
    # One model built with every field: assigning to a pydantic model afterwards costs as much again.
    return CheckResult(source=check.source, signal=request.signal, params=request.params, field=check.value_field,
                       transform=check.transform_json, weight=check.weight, value=value, score=score, error=error)


def score_criterion(
    criterion: Criterion,
    evidence: Mapping[str, Evidence],
    *,
    previous: CriterionScore | None,
    previous_seen_at: datetime | None,
    now: datetime,
) -> CriterionScore:
    base = {"id": criterion.id, "title": criterion.title, "weight": criterion.weight}
    if criterion.not_applicable is not None:
        return CriterionScore(**base, score=None, status="not_applicable", reason=criterion.not_applicable)
    if criterion.manual is not None:
        manual = criterion.manual
        if manual.expires < now.date():
            return CriterionScore(**base, score=None, status="unknown", reason=f"manual score expired on {manual.expires.isoformat()}")
        return CriterionScore(**base, score=manual.score, status="manual", reason=f"{manual.reason} (until {manual.expires.isoformat()})")

    used: dict[str, Evidence] = {}
    checks: list[CheckResult] = []
    for check in criterion.checks:
        found = evidence.get(check.key)
        if found is not None:
            used.setdefault(check.key, found)
        checks.append(score_check(check, found))
    base |= {"checks": checks, "evidence": list(used.values())}

    failures = [c.error.message for c in checks if c.error is not None]
    if not failures:
        score = combine(criterion.combine, [(c.score, c.weight) for c in checks if c.score is not None])
        if score is None:
            return CriterionScore(**base, score=None, status="unknown", reason="all checks have weight 0")
        return CriterionScore(**base, score=score, status="ok")

    why = "; ".join(dict.fromkeys(failures))
    last_ok = _last_scored_at(previous, previous_seen_at)
    if previous is not None and previous.score is not None and last_ok is not None:
        if now - last_ok <= criterion.max_age:
            return CriterionScore(**base, score=previous.score, status="stale", reason=why, scored_at=last_ok)
        why = f"last score {previous.score:g} from {last_ok.date().isoformat()} is older than max_age; {why}"
    return CriterionScore(**base, score=None, status="unknown", reason=why)


def _last_scored_at(previous: CriterionScore | None, seen_at: datetime | None) -> datetime | None:
    if previous is None:
        return None
    if previous.status == "ok":
        return seen_at
    if previous.status == "stale":
        return previous.scored_at
    return None


def score_pillar(pillar: Pillar, criteria: list[CriterionScore]) -> PillarScore:
    scored = [(c.score * 100, c.weight) for c in criteria if c.status in _SCORED and c.score is not None]
    counted = math.fsum(c.weight for c in criteria if c.status != "not_applicable")
    fresh = math.fsum(c.weight for c in criteria if c.status in ("ok", "manual"))
    return PillarScore(
        id=pillar.id,
        title=pillar.title,
        weight=pillar.weight,
        score=weighted_mean(scored),
        coverage=fresh / counted if counted > 0 else 1.0,
        criteria=criteria,
    )


def overall_of(pillars: Sequence[PillarScore]) -> float | None:
    """Overall % from the unrounded pillar values; pillars without a score are left out."""
    return weighted_mean([(p.score, p.weight) for p in pillars if p.score is not None])


def score_project(
    project: Project,
    results: Sequence[CollectResult],
    *,
    previous: Snapshot | None,
    now: datetime,
) -> Snapshot:
    """Score one project from the results of collecting its sources."""
    with no_cycle_collection():
        return _score_project(project, results, previous=previous, now=now)


def _score_project(
    project: Project,
    results: Sequence[CollectResult],
    *,
    previous: Snapshot | None,
    now: datetime,
) -> Snapshot:
    evidence = {e.key: e for result in results for e in result.evidence}
    by_source = {r.source: r for r in results}
    sources = [
        SourceState(
            id=s.id,
            kind=s.kind,
            answered=s.id in by_source and by_source[s.id].answered,
            fingerprint=by_source[s.id].fingerprint if s.id in by_source else None,
            error=by_source[s.id].error if s.id in by_source else EvidenceError(kind="not_found", message="not collected"),
        )
        for s in project.sources
    ]
    # Each criterion's previous score by (pillar, criterion): one lookup each, not a walk of the snapshot.
    before: dict[tuple[str, str], CriterionScore] = {}
    for p in previous.pillars if previous else []:
        for c in p.criteria:
            before.setdefault((p.id, c.id), c)
    pillars = []
    for pillar in project.expanded_pillars:
        criteria = [
            score_criterion(
                c,
                evidence,
                previous=before.get((pillar.id, c.id)),
                previous_seen_at=previous.seen_at if previous else None,
                now=now,
            )
            for c in pillar.criteria
        ]
        pillars.append(score_pillar(pillar, criteria))
    answered = sum(s.answered for s in sources)
    return Snapshot(
        project=project.id,
        taken_at=now,
        rules_hash=project.rules_hash(),
        complete=answered >= project.complete_share * len(sources),
        overall=overall_of(pillars),
        pillars=pillars,
        sources=sources,
    )
