"""`missing_next` ranks each open criterion by what it would add at 1.0: checked against re-scoring it."""

from __future__ import annotations

import math
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.scoring.arithmetic import weighted_mean
from daemon.scoring.score import overall_of
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot
from daemon.web.report import missing_next

_SCORED = ("ok", "stale", "manual")
_criterion = st.tuples(  # (score, weight, status)
    st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(0, 1)),
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),
    st.sampled_from(["ok", "stale", "manual", "not_applicable", "unknown"]),
)


def _snapshot(pillars: list[tuple[float, list[tuple[float | None, float, str]]]]) -> Snapshot:
    built = []
    for p, (weight, criteria) in enumerate(pillars):
        scores = [CriterionScore(id=f"c{i}", title=f"C{i}", weight=w, score=s, status=status)
                  for i, (s, w, status) in enumerate(criteria)]
        built.append(PillarScore(id=f"p{p}", title=f"P{p}", weight=weight, coverage=1.0, criteria=scores,
                                 score=_pillar_score(scores)))
    return Snapshot(project="x", taken_at=datetime(2026, 1, 1, tzinfo=timezone.utc), rules_hash="r", complete=True,
                    overall=overall_of(built), pillars=built, sources=[])


def _pillar_score(criteria: list[CriterionScore]) -> float | None:
    return weighted_mean([(c.score * 100, c.weight) for c in criteria if c.status in _SCORED and c.score is not None])


def _rescored_gain(snapshot: Snapshot, pillar_id: str, criterion_id: str) -> float:
    """The definition: set the criterion to 1.0, score its pillar and the overall again."""
    pillars = []
    for pillar in snapshot.pillars:
        if pillar.id == pillar_id:
            criteria = [c.model_copy(update={"score": 1.0, "status": "ok"}) if c.id == criterion_id else c
                        for c in pillar.criteria]
            pillar = pillar.model_copy(update={"criteria": criteria, "score": _pillar_score(criteria)})
        pillars.append(pillar)
    return (overall_of(pillars) or 0.0) - (snapshot.overall or 0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, 2.0]), st.lists(_criterion, min_size=1, max_size=6)),
                min_size=1, max_size=5))
def test_each_gain_is_what_rescoring_that_criterion_at_one_adds(pillars):
    snapshot = _snapshot(pillars)
    gains = missing_next(snapshot)
    expected = {(p.id, c.id) for p in snapshot.pillars for c in p.criteria
                if c.status != "not_applicable" and (c.score is None or c.score < 1.0)}
    assert {(g.pillar, g.criterion) for g in gains} == expected
    for gain in gains:
        assert math.isclose(gain.gain, _rescored_gain(snapshot, gain.pillar, gain.criterion), abs_tol=1e-9)
    assert [g.gain for g in gains] == sorted((g.gain for g in gains), reverse=True)
