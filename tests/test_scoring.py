"""Scoring is pure: tables of evidence in, scores out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from collectors.evidence import CollectResult, Evidence, EvidenceError
from daemon.config.model import FreshWithinDays, Project, Scale, Thresholds
from daemon.scoring.arithmetic import display, round_half_up
from daemon.scoring.score import apply_transform, combine, overall_of, score_project

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
FAR = "2099-01-01"


def manual(cid: str, score: float) -> dict:
    return {"id": cid, "title": cid.upper(), "manual": {"score": score, "reason": "test", "expires": FAR}}


def project(*pillars: dict, complete_share: float = 1.0, sources: list | None = None) -> Project:
    return Project.model_validate(
        {
            "id": "p",
            "complete_share": complete_share,
            "sources": sources or [{"id": "repo", "kind": "git", "path": "/nonexistent"}],
            "pillars": list(pillars),
        }
    )


def pillar(pid: str, *scores: float, weight: float = 1.0) -> dict:
    return {"id": pid, "title": pid, "weight": weight, "criteria": [manual(f"{pid}{i}", s) for i, s in enumerate(scores)]}


def snapshot_of(proj: Project, results=(), previous=None, now=NOW):
    return score_project(proj, list(results), previous=previous, now=now)


@pytest.mark.parametrize(
    ("scores", "full", "shown"),
    [
        ((0.89, 0.94, 0.90), 91.0, "91"),
        ((0.55, 0.78, 0.65, 1.00), 74.5, "75"),
        ((0.60, 0.80, 0.80), 73.333333, "73"),
    ],
)
def test_pillar_percent_is_mean_times_100_displayed_half_up(scores, full, shown):
    snap = snapshot_of(project(pillar("a", *scores)))
    assert snap.pillars[0].score == pytest.approx(full, abs=1e-6)
    assert display(snap.pillars[0].score) == shown


def test_73_33_at_two_decimals():
    snap = snapshot_of(project(pillar("a", 0.60, 0.80, 0.80)))
    assert display(snap.pillars[0].score, 2) == "73.33"


def test_overall_is_computed_from_unrounded_pillars():
    snap = snapshot_of(project(pillar("a", 0.89, 0.94, 0.90), pillar("b", 0.55, 0.78, 0.65, 1.00), pillar("c", 0.60, 0.80, 0.80)))
    unrounded = (91.0 + 74.5 + 73.0 + 1 / 3) / 3
    assert snap.overall == pytest.approx(unrounded, abs=1e-9)
    # From rounded pillars it would be (91 + 75 + 73) / 3 = 79.67.
    assert display(snap.overall, 2) == "79.61"


def test_half_up_not_bankers_rounding():
    assert str(round_half_up(74.5)) == "75"
    assert str(round_half_up(73.5)) == "74"
    assert str(round_half_up(0.125 * 100, 1)) == "12.5"
    assert str(round_half_up(2.675, 2)) == "2.68"  # 2.675 is 2.67499999... as a float


def test_weighted_pillars_and_criteria():
    proj = project(
        {"id": "a", "title": "A", "weight": 3, "criteria": [manual("x", 1.0) | {"weight": 3}, manual("y", 0.0)]},
        pillar("b", 0.0),
    )
    snap = snapshot_of(proj)
    assert snap.pillars[0].score == pytest.approx(75.0)
    assert snap.overall == pytest.approx((75.0 * 3 + 0.0) / 4)


@pytest.mark.parametrize(
    ("transform", "value", "expected"),
    [
        ("bool", True, 1.0),
        ("bool", 0, 0.0),
        ("bool", 3, 1.0),
        ("bool", None, 0.0),
        ("ratio", 0.4, 0.4),
        ("ratio", 1.7, 1.0),
        ("ratio", -1, 0.0),
        (Scale(scale=(0, 10)), 5, 0.5),
        (Scale(scale=(0, 10)), 15, 1.0),
        (Scale(scale=(10, 0)), 2, 0.8),
        (Thresholds(thresholds=[(1, 0.5), (5, 1.0)]), 0, 0.0),
        (Thresholds(thresholds=[(1, 0.5), (5, 1.0)]), 3, 0.5),
        (Thresholds(thresholds=[(5, 1.0), (1, 0.5)]), 5, 1.0),
        (FreshWithinDays(fresh_within_days=(7, 17)), 3, 1.0),
        (FreshWithinDays(fresh_within_days=(7, 17)), 12, 0.5),
        (FreshWithinDays(fresh_within_days=(7, 17)), 30, 0.0),
    ],
)
def test_transforms(transform, value, expected):
    assert apply_transform(transform, value) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("method", "pairs", "expected"),
    [
        ("mean", [(1.0, 1), (0.0, 1)], 0.5),
        ("mean", [(1.0, 3), (0.0, 1)], 0.75),
        ("min", [(1.0, 1), (0.2, 1), (0.5, 1)], 0.2),
        ("all", [(1.0, 1), (1.0, 1)], 1.0),
        ("all", [(1.0, 1), (0.99, 1)], 0.0),
        ("mean", [], None),
    ],
)
def test_combine(method, pairs, expected):
    assert combine(method, pairs) == (pytest.approx(expected) if expected is not None else None)


# --- evidence-backed criteria ------------------------------------------------------------

CHECK = {"source": "repo", "signal": "file_exists", "path": "README.md"}


def evidence_project(max_age: str = "7d") -> Project:
    return project(
        {
            "id": "a",
            "title": "A",
            "criteria": [
                {"id": "readme", "title": "Readme", "max_age": max_age, "checks": [CHECK]},
                manual("m", 0.5),
            ],
        }
    )


def result(exists: bool | None, *, error: EvidenceError | None = None, at: datetime = NOW) -> CollectResult:
    ev = Evidence(
        source="repo", signal="file_exists", params={"path": "README.md"},
        value=None if error else {"exists": exists, "count": int(bool(exists)), "paths": []},
        error=error, observed_at=at,
    )
    return CollectResult(source="repo", evidence=[ev], error=error, fingerprint=None if error else "abc")


DOWN = EvidenceError(kind="unreachable", message="repository not found: /x")


def test_fresh_evidence_scores_ok_and_full_coverage():
    snap = snapshot_of(evidence_project(), [result(True)])
    c = snap.pillars[0].criteria[0]
    assert (c.status, c.score) == ("ok", 1.0)
    assert c.evidence[0].value["exists"] is True
    assert snap.pillars[0].coverage == 1.0
    assert snap.complete


def test_failed_source_keeps_last_score_as_stale_not_zero():
    proj = evidence_project()
    first = snapshot_of(proj, [result(True)])
    later = NOW + timedelta(days=2)
    snap = snapshot_of(proj, [result(None, error=DOWN, at=later)], previous=first, now=later)
    c = snap.pillars[0].criteria[0]
    assert (c.status, c.score) == ("stale", 1.0)
    assert c.scored_at == NOW
    assert "repository not found" in c.reason
    assert snap.pillars[0].score == pytest.approx(75.0)  # (1.0 + 0.5) / 2, not (0 + 0.5) / 2
    assert snap.pillars[0].coverage == 0.5
    assert not snap.complete


def test_stale_becomes_unknown_after_max_age_and_leaves_the_mean():
    proj = evidence_project(max_age="3d")
    first = snapshot_of(proj, [result(True)])
    day2 = NOW + timedelta(days=2)
    stale = snapshot_of(proj, [result(None, error=DOWN, at=day2)], previous=first, now=day2)
    assert stale.pillars[0].criteria[0].status == "stale"
    day4 = NOW + timedelta(days=4)
    gone = snapshot_of(proj, [result(None, error=DOWN, at=day4)], previous=stale, now=day4)
    c = gone.pillars[0].criteria[0]
    assert (c.status, c.score) == ("unknown", None)
    assert "older than max_age" in c.reason
    assert gone.pillars[0].score == pytest.approx(50.0)  # only the manual 0.5 is left
    assert gone.pillars[0].coverage == 0.5


def test_no_previous_score_means_unknown():
    snap = snapshot_of(evidence_project(), [result(None, error=DOWN)])
    assert snap.pillars[0].criteria[0].status == "unknown"


def test_manual_expired_is_unknown_and_says_so():
    proj = project({"id": "a", "title": "A", "criteria": [{"id": "m", "title": "M", "manual": {"score": 0.9, "reason": "audit", "expires": "2026-11-01"}}]})
    c = snapshot_of(proj).pillars[0].criteria[0]
    assert (c.status, c.score) == ("unknown", None)
    assert "expired on 2026-11-01" in c.reason


def test_not_applicable_is_excluded_without_lowering_coverage():
    proj = project({"id": "a", "title": "A", "criteria": [manual("m", 0.4), {"id": "na", "title": "NA", "not_applicable": "no tenants here"}]})
    p = snapshot_of(proj).pillars[0]
    assert p.score == pytest.approx(40.0)
    assert p.coverage == 1.0
    assert p.criteria[1].reason == "no tenants here"


def test_pillar_with_nothing_scorable_is_null_not_zero():
    proj = project(
        {"id": "a", "title": "A", "criteria": [{"id": "na", "title": "NA", "not_applicable": "n/a"}]},
        pillar("b", 0.8),
    )
    snap = snapshot_of(proj)
    assert snap.pillars[0].score is None
    assert snap.overall == pytest.approx(80.0)  # the null pillar is left out, not counted as 0
    assert overall_of([]) is None


def test_complete_share_decides_partial():
    sources = [{"id": "repo", "kind": "git", "path": "/x"}, {"id": "other", "kind": "git", "path": "/y"}]
    half = project(pillar("a", 1.0), complete_share=0.5, sources=sources)
    results = [result(True), CollectResult(source="other", error=DOWN)]
    assert snapshot_of(half, results).complete
    strict = project(pillar("a", 1.0), complete_share=1.0, sources=sources)
    assert not snapshot_of(strict, results).complete


def test_rules_hash_changes_with_rules_not_with_titles():
    a = evidence_project()
    b = evidence_project(max_age="8d")
    renamed = evidence_project()
    renamed.pillars[0].title = "Renamed"
    assert a.rules_hash() != b.rules_hash()
    assert a.rules_hash() == renamed.rules_hash()


def test_scoring_10000_criteria_is_pure_and_deterministic():
    pillars = [pillar(f"p{i}", *[(j % 10) / 10 for j in range(100)]) for i in range(100)]
    proj = project(*pillars)
    one, two = snapshot_of(proj), snapshot_of(proj)
    assert one.content_hash() == two.content_hash()
    assert one.overall == pytest.approx(45.0)
