"""The progress snapshot document, computed from a stored snapshot.

``build_report`` is pure: it adds the two things a reader wants besides the
scores, each pillar's main gaps and "what is missing next" (criteria ranked by
how many overall points each would add at 1.0). ``render_markdown`` writes the
document in the same shape people write by hand, so ``verify-doc`` can read it.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from daemon.queries import Calibration
from daemon.scoring.arithmetic import display
from daemon.scoring.snapshot import PillarScore, Snapshot

_SCORED = ("ok", "stale", "manual")


class Gain(BaseModel):
    pillar: str
    criterion: str
    title: str
    score: float | None
    status: str
    gain: float  # overall % points added if this criterion were 1.0


class Report(BaseModel):
    snapshot: Snapshot
    decimals: int
    gaps: dict[str, list[str]]  # pillar id -> ids of its weakest criteria, weakest first
    missing_next: list[Gain]
    trust: Calibration | None = None  # how far to trust each rule (queries.calibration)


def missing_next(snapshot: Snapshot) -> list[Gain]:
    """Every criterion below 1.0, ranked by the overall points it would add at 1.0.

    Each pillar's and the overall weighted sums are computed once; raising one
    criterion changes one term of each, so the ranking is linear in the number
    of criteria (it re-averaged every pillar per criterion: 10,000 criteria
    took seconds).
    """
    now = snapshot.overall or 0.0
    counted = [(p.score, p.weight) for p in snapshot.pillars if p.score is not None]
    overall_sum, overall_weight = math.fsum(v * w for v, w in counted), math.fsum(w for _, w in counted)
    gains = []
    for pillar in snapshot.pillars:
        scored = [(c.score * 100, c.weight) for c in pillar.criteria if c.status in _SCORED and c.score is not None]
        pillar_sum, pillar_weight = math.fsum(v * w for v, w in scored), math.fsum(w for _, w in scored)
        for c in pillar.criteria:
            if c.status == "not_applicable" or (c.score is not None and c.score >= 1.0):
                continue
            if c.status in _SCORED and c.score is not None:  # its term changes from its score to 100
                raised = _mean(math.fsum([pillar_sum, -c.score * 100 * c.weight, 100 * c.weight]), pillar_weight)
            else:  # a term joins
                raised = _mean(pillar_sum + 100 * c.weight, pillar_weight + c.weight)
            total, weight = overall_sum, overall_weight
            if pillar.score is not None:
                total, weight = math.fsum([total, -pillar.score * pillar.weight]), weight - pillar.weight
            if raised is not None:
                total, weight = math.fsum([total, raised * pillar.weight]), weight + pillar.weight
            after = _mean(total, weight) or 0.0
            gains.append(Gain(pillar=pillar.id, criterion=c.id, title=c.title, score=c.score, status=c.status, gain=after - now))
    return sorted(gains, key=lambda g: (-g.gain, g.pillar, g.criterion))


def _mean(total: float, weight: float) -> float | None:
    return total / weight if weight > 0 else None


def main_gaps(pillar: PillarScore, limit: int = 2) -> list[str]:
    """The pillar's weakest criteria (unknown ones first), at most ``limit``."""
    open_ = [c for c in pillar.criteria if c.status != "not_applicable" and (c.score is None or c.score < 1.0)]
    open_.sort(key=lambda c: (c.score is not None, c.score or 0.0))
    return [c.id for c in open_[:limit]]


def build_report(snapshot: Snapshot, *, decimals: int = 0, trust: Calibration | None = None) -> Report:
    return Report(
        snapshot=snapshot,
        decimals=decimals,
        gaps={p.id: main_gaps(p) for p in snapshot.pillars},
        missing_next=missing_next(snapshot),
        trust=trust,
    )


TRUST_TITLE = "How far to trust these scores"
# The report and the dashboard read the latest this many snapshots (and every imported one): quick on any history.
TRUST_LIMIT = 500
TRUST_COLUMNS = ("Criterion", "Verdict", "Commits", "At 1.0", "Judged", "Mean error", "Max error", "Worst at", "In words")


def trust_intro(found: Calibration) -> str:
    scope = f"the latest {found.limit} snapshots and every imported document" if found.limit else "the stored history"
    return (f"Each rule over {scope}, one point per commit of {found.timeline or 'no git source'}, under the current"
            f" rules ({found.rules_hash}), against the team's own scores (imported documents, manual scores) at the"
            f" same commits. Dead: never above 0; saturated: at 1.0 in 90% of the commits or more; constant: one"
            f" value across 20 commits or more; a rule agrees when its mean error is within {found.tolerance:g}."
            " `pillarwatch calibrate` backfills the commits the team judged and suggests fitted transforms.")


def trust_rows(found: Calibration) -> list[dict[str, str]]:
    """One row per rule, every figure formatted: the Markdown table and the dashboard's section."""
    rows = []
    for c in found.criteria:
        a = c.agreement
        said = c.findings + ([f"suggested: {c.suggestion.words}"] if c.suggestion else [])
        rows.append(dict(zip(TRUST_COLUMNS, (
            c.title, c.verdict, str(c.commits), str(c.at_one), str(a.compared),
            f"{a.mean_error:.2f}" if a.mean_error is not None else "–",
            f"{a.max_error:.2f}" if a.max_error is not None else "–",
            a.worst_commit[:7] if a.worst_commit else "–", "; ".join(said),
        ))) | {"id": f"{c.pillar}/{c.criterion}"})
    return rows


def report_json(report: Report) -> dict[str, Any]:
    body = report.model_dump(mode="json")
    body["snapshot"] = report.snapshot.to_json()
    return body


def render_markdown(report: Report, *, title: str | None = None) -> str:
    s, d = report.snapshot, report.decimals
    out = [
        f"# {title or s.project}: target architecture progress snapshot",
        "",
        f"Date: {s.seen_at.date().isoformat()}",
        f"Snapshot: #{s.id if s.id is not None else '(not stored)'} taken {s.seen_at.isoformat().replace('+00:00', 'Z')},"
        f" rules {s.rules_hash}, {'complete' if s.complete else 'partial: some sources did not answer'}",
        "",
        "## Method",
        "",
        "Each criterion is scored from 0.0 to 1.0 by pillarwatch from collected evidence"
        " (or a manual score with a reason and an expiry). Pillar completion is the weighted mean"
        " of its criteria × 100; overall completion is the weighted mean of the unrounded pillar"
        f" figures. Figures are rounded half-up to {d} decimals for display only."
        " Stale criteria keep their last score; unknown and not-applicable ones are left out of the mean.",
        "",
    ]
    titles = {c.id: c.title for p in s.pillars for c in p.criteria}
    for n, pillar in enumerate(s.pillars, 1):
        out += [f"### {n}) {pillar.title}", "", "Criteria scoring:"]
        for i, c in enumerate(pillar.criteria, 1):
            figure = f"{c.score:.2f}" if c.score is not None else "n/a"
            note = "" if c.status == "ok" else f" ({c.status}{': ' + c.reason if c.reason else ''})"
            out.append(f"{i}. {c.title}: {figure}{note}")
        out.append("")
        out.append(f"Pillar completion: {display(pillar.score, d, suffix='%')} (coverage {display(pillar.coverage * 100, 0, suffix='%')})")
        gaps = report.gaps.get(pillar.id) or []
        out.append(f"Main gaps: {', '.join(titles[g] for g in gaps) if gaps else 'none'}")
        out.append("")
    figures = [p for p in s.pillars if p.score is not None]
    out += [
        "## Overall",
        "",
        f"Overall target architecture completion: {display(s.overall, d, suffix='%')}",
        "",
        "Computation: (" + " + ".join(f"{p.score:.2f}" for p in figures) + f") / {len(figures)}"
        f" = {s.overall:.2f}" if figures and s.overall is not None and all(p.weight == 1 for p in figures)
        else f"Computation: weighted mean of {len(figures)} pillar figures = {display(s.overall, 2)}",
        "",
        "## What is missing next",
        "",
        "| # | Criterion | Pillar | Now | Overall points at 1.0 |",
        "|---|---|---|---|---|",
    ]
    pillar_titles = {p.id: p.title for p in s.pillars}
    for i, g in enumerate(report.missing_next, 1):
        now = f"{g.score:.2f}" if g.score is not None else g.status
        out.append(f"| {i} | {g.title} | {pillar_titles[g.pillar]} | {now} | +{g.gain:.2f} |")
    if report.trust is not None:
        out += ["", f"## {TRUST_TITLE}", "", trust_intro(report.trust), "",
                "| " + " | ".join(TRUST_COLUMNS) + " |", "|" + "---|" * len(TRUST_COLUMNS)]
        out += ["| " + " | ".join(row[k].replace("|", "\\|") for k in TRUST_COLUMNS) + " |" for row in trust_rows(report.trust)]
    return "\n".join(out) + "\n"
