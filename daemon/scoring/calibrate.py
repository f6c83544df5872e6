"""How far to trust each rule: its scores over the history, against the team's judgment.

Pure functions: one criterion's points in (the rule's score at each commit,
and the team's own scores where it wrote them down), a verdict out.

- **dead**: the rule never scored above 0;
- **saturated**: it scored 1.0 at 90 % of the commits or more;
- **constant**: one value across 20 commits or more;
- **agrees** / **disagrees**: the mean absolute error against the team's
  scores at the same commits is within the tolerance, or not;
- **unjudged**: no team score to compare with; **no-data**: no rule score.

A criterion gets every verdict that applies (``--fail-on`` reads them all),
the first of them, in the order above, is its headline. Where a rule
disagrees, :func:`fit_scale` suggests a ``scale`` for one check that brings
it closest to the team's scores (least absolute error), when it does better
than the transform in place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from daemon.config.model import Scale
from daemon.scoring.score import apply_transform, combine

SATURATED_SHARE = 0.9
CONSTANT_COMMITS = 20
TOLERANCE = 0.15  # the mean absolute error up to which a rule agrees with the team
VERDICTS = ("dead", "saturated", "constant", "disagrees", "agrees", "unjudged", "no-data")
_EPS = 1e-9


class CheckValue(BaseModel):
    """One check's raw value and partial score at one commit."""

    value: Any = None
    score: float | None = None
    weight: float = 1.0


class RulePoint(BaseModel):
    """The rule's score at one commit (under the current rules)."""

    commit: str
    taken_at: datetime
    origin: str  # collected or backfilled
    score: float
    checks: list[CheckValue] = Field(default_factory=list)


class JudgedPoint(BaseModel):
    """A score the team gave the criterion: a hand-written document, or a manual score."""

    commit: str | None  # None: matched by time (see `match`)
    taken_at: datetime
    score: float
    by: str  # "docs/PROGRESS.md", "manual"


class CheckInfo(BaseModel):
    what: str  # "repo: content_match(glob=tests/*.py).count"
    transform: Any


class CriterionHistory(BaseModel):
    """Everything the analysis of one criterion needs (built by ``queries.calibration``)."""

    pillar: str
    criterion: str
    title: str
    combine: str = "mean"
    checks: list[CheckInfo] = Field(default_factory=list)
    rules: list[RulePoint] = Field(default_factory=list)  # one per commit, oldest first
    judged: list[JudgedPoint] = Field(default_factory=list)


class Pair(BaseModel):
    commit: str
    taken_at: datetime
    team: float
    rule: float
    error: float
    by: str


class Agreement(BaseModel):
    compared: int = 0
    mean_error: float | None = None
    max_error: float | None = None
    worst_commit: str | None = None
    not_compared: int = 0  # team scores with no rule score at their commit
    pairs: list[Pair] = Field(default_factory=list)


class Suggestion(BaseModel):
    check: int  # index of the check in the criterion's `checks`
    what: str
    transform: dict[str, Any]  # {"scale": [lo, hi]}
    mean_error_before: float
    mean_error_after: float
    words: str


class CriterionTrust(BaseModel):
    pillar: str
    criterion: str
    title: str
    commits: int  # rule points, one per commit
    at_one: int
    above_zero: int
    values: list[float]  # the distinct scores, lowest first
    agreement: Agreement
    verdict: str
    verdicts: list[str]
    findings: list[str]  # each verdict in words
    suggestion: Suggestion | None = None


def match(rules: Sequence[RulePoint], judged: Sequence[JudgedPoint]) -> tuple[list[Pair], int]:
    """Each team score beside the rule's score at the same commit; and how many had none.

    A team score whose commit has no rule score (none known, or one of another
    repository) takes the last rule point at or before its time.
    """
    by_commit = {r.commit: r for r in rules}
    ordered = sorted(rules, key=lambda r: r.taken_at)
    pairs, missing = [], 0
    for j in judged:
        found = by_commit.get(j.commit or "") or next((r for r in reversed(ordered) if r.taken_at <= j.taken_at), None)
        if found is None:
            missing += 1
            continue
        pairs.append(Pair(commit=found.commit, taken_at=j.taken_at, team=j.score, rule=found.score,
                          error=abs(found.score - j.score), by=j.by))
    return pairs, missing


def agreement(pairs: Sequence[Pair], not_compared: int = 0) -> Agreement:
    if not pairs:
        return Agreement(not_compared=not_compared)
    worst = max(pairs, key=lambda p: (p.error, p.taken_at))
    return Agreement(compared=len(pairs), mean_error=math.fsum(p.error for p in pairs) / len(pairs),
                     max_error=worst.error, worst_commit=worst.commit, not_compared=not_compared, pairs=list(pairs))


def assess(history: CriterionHistory, *, tolerance: float = TOLERANCE) -> CriterionTrust:
    """The verdicts on one criterion's rule, in words, with a fitted transform where the team judged."""
    scores = [r.score for r in history.rules]
    n = len(scores)
    at_one = sum(1 for s in scores if s >= 1.0 - _EPS)
    above = sum(1 for s in scores if s > _EPS)
    values = sorted(set(scores))
    pairs, missing = match(history.rules, history.judged)
    agreed = agreement(pairs, missing)
    found: dict[str, str] = {}
    if n == 0:
        found["no-data"] = "no score under the current rules yet: run `pillarwatch collect` or `backfill`"
    else:
        if above == 0:
            found["dead"] = f"dead: never above 0 in {_commits(n)}"
        if at_one >= SATURATED_SHARE * n:
            found["saturated"] = f"saturated: at 1.0 in {at_one} of {_commits(n)} ({at_one / n:.0%})"
        if n >= CONSTANT_COMMITS and len(values) == 1:
            found["constant"] = f"constant: {values[0]:.2f} at every one of {_commits(n)}"
    if agreed.mean_error is not None:
        within = agreed.mean_error <= tolerance + _EPS
        found["agrees" if within else "disagrees"] = (
            f"{'agrees' if within else 'disagrees'} with the team: mean error {agreed.mean_error:.2f}"
            f" ({'within' if within else 'over'} {tolerance:g}), worst {agreed.max_error:.2f} at {agreed.worst_commit[:7]}"  # type: ignore[index]
            f", over {agreed.compared} judged commit{'s' if agreed.compared != 1 else ''}")
    elif n:
        found["unjudged"] = "unjudged: no team score at a commit the rule was scored at"
    verdicts = [v for v in VERDICTS if v in found]
    return CriterionTrust(
        pillar=history.pillar, criterion=history.criterion, title=history.title, commits=n, at_one=at_one,
        above_zero=above, values=values, agreement=agreed, verdict=verdicts[0], verdicts=verdicts,
        findings=[found[v] for v in verdicts],
        suggestion=fit_scale(history, pairs) if "disagrees" in found else None,
    )


def _commits(n: int) -> str:
    return f"{n} commit{'s' if n != 1 else ''}"


# --- fitting a scale to the team's scores ----------------------------------------------


def fit_scale(history: CriterionHistory, pairs: Sequence[Pair]) -> Suggestion | None:
    """A ``scale: [lo, hi]`` for one numeric check that brings the criterion closest to the team.

    For each check whose raw values at the judged commits are numbers, the
    other checks are held at their scores. Candidate lines pass through two
    judged points, or through 0 and one judged point (what a check needs to
    reach the team's score); the one with the least total absolute error of
    the criterion's score wins, bounds rounded to three significant digits.
    Nothing is suggested unless it does better than the transform in place.
    """
    rules = {r.commit: r for r in history.rules}
    before = math.fsum(p.error for p in pairs)
    best: tuple[tuple[float, int, float], Suggestion] | None = None
    for k, info in enumerate(history.checks):
        rows = [(rules[p.commit], p.team) for p in pairs]
        if any(k >= len(r.checks) or not _numeric(r.checks[k].value) for r, _ in rows):
            continue
        data = [(float(r.checks[k].value), _target(history.combine, r.checks, k, team), r.checks, team) for r, team in rows]
        for lo, hi in _candidates([(x, t) for x, t, _, _ in data]):
            total = math.fsum(abs(_criterion_with(history.combine, checks, k, Scale(scale=(lo, hi)), x) - team)
                              for x, _, checks, team in data)
            key = (round(total, 9), int(lo != 0), abs(hi - lo))
            if total < before - _EPS and (best is None or key < best[0]):
                after = total / len(data)
                best = (key, Suggestion(
                    check=k, what=info.what, transform={"scale": [lo, hi]}, mean_error_before=before / len(data),
                    mean_error_after=after,
                    words=f"scale [{lo:g}, {hi:g}] on {info.what}: mean error {before / len(data):.2f} → {after:.2f}"
                          f" over {len(data)} judged commit{'s' if len(data) != 1 else ''}"))
    return best[1] if best else None


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _target(method: str, checks: Sequence[CheckValue], k: int, team: float) -> float:
    """The score check `k` needs for the criterion to equal the team's, the other checks as they are."""
    if method != "mean":
        return team
    others = [(c.score, c.weight) for j, c in enumerate(checks) if j != k and c.score is not None]
    total = math.fsum(w for _, w in others) + checks[k].weight
    if checks[k].weight <= 0:
        return team
    needed = (team * total - math.fsum(s * w for s, w in others)) / checks[k].weight
    return min(1.0, max(0.0, needed))


def _criterion_with(method: str, checks: Sequence[CheckValue], k: int, transform: Scale, x: float) -> float:
    pairs = [(apply_transform(transform, x) if j == k else c.score, c.weight)
             for j, c in enumerate(checks) if j == k or c.score is not None]
    return combine(method, pairs) or 0.0  # type: ignore[arg-type]


def _candidates(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Scale bounds of the lines through two points, or through (0, 0) and one point."""
    lines = [(0.0, 0.0, x, t) for x, t in points if x > 0 and t > 0]
    lines += [(xa, ta, xb, tb) for i, (xa, ta) in enumerate(points) for xb, tb in points[i + 1:] if xa != xb and ta != tb]
    found = []
    for xa, ta, xb, tb in lines:
        slope = (tb - ta) / (xb - xa)
        lo, hi = _nice(xa - ta / slope), _nice(xa + (1 - ta) / slope)
        if lo != hi and (lo, hi) not in found:
            found.append((lo, hi))
    return found


def _nice(value: float) -> float:
    """Three significant digits: a bound a person would write."""
    return 0.0 if abs(value) < 1e-12 else float(f"{value:.3g}")
