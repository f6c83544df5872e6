"""Regression detection: snapshots scored from real-looking evidence, an injected clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from collectors.evidence import CollectResult, Evidence, EvidenceError, EvidenceRequest, Provenance, failed
from daemon.alerting.evaluate import Evaluation, evaluate, rescore
from daemon.alerting.rules import Alert
from daemon.changes import describe_evidence
from daemon.config.model import Project
from daemon.scoring.score import score_project
from daemon.scoring.snapshot import Snapshot

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
SHA1 = "1111111aaaaaaabbbbbbbccccccc0000000000001"
SHA2 = "3f2a1c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f7"
RESTART = "tests/test_restart.py"
STATUS = "docs/STATUS.md"
RUNS = "https://github.com/acme/store/actions/runs"
DOWN = EvidenceError(kind="unreachable", message="GitHub API: 503 Service Unavailable")


# --- a project, its sources and the world they observe ------------------------------------


def project(
    *,
    alerts: dict[str, Any] | None = None,
    weights: tuple[float, float, float] = (1, 1, 1),
    below: float | None = None,
    complete_share: float = 1.0,
    ci_max_age: str = "7d",
    runbook: bool = False,
) -> Project:
    durability = [
        {"id": "restart", "title": "Restart test exists", "weight": weights[0],
         "checks": [{"source": "repo", "signal": "file_exists", "path": RESTART}]},
        {"id": "ci", "title": "Durability workflow passes", "weight": weights[1], "max_age": ci_max_age,
         "checks": [{"source": "ci", "signal": "latest_run"}]},
        {"id": "declared", "title": "Survive restart", "weight": weights[2],
         "checks": [{"source": "status", "signal": "declared_score", "title": "Survive restart"}]},
    ]
    if runbook:  # a criterion added by a change of rules
        durability.append({"id": "runbook", "title": "Runbook", "checks": [{"source": "status", "signal": "declared_score", "title": "Runbook"}]})
    return Project.model_validate(
        {
            "id": "store",
            "complete_share": complete_share,
            "alerts": {"threshold": 5, "for": 1, "repeat_interval": "24h", "stale_after": "6h"} | (alerts or {}),
            "sources": [
                {"id": "repo", "kind": "git", "path": "/srv/store"},
                {"id": "ci", "kind": "github", "repo": "acme/store", "workflow": "durability.yml"},
                {"id": "status", "kind": "doc", "path": STATUS, "git": "repo"},
            ],
            "pillars": [
                {"id": "durability", "title": "Durability", "criteria": durability},
                {"id": "observability", "title": "Observability", "below": below,
                 "criteria": [{"id": "traces", "title": "Traces", "checks": [{"source": "status", "signal": "declared_score", "title": "Traces"}]}]},
            ],
        }
    )


@dataclass(frozen=True)
class World:
    """What the sources would say: one field per fact, and which sources are down."""

    restart: bool = True
    ci: str = "success"
    run: int = 4811
    declared: float = 0.6
    traces: float = 0.8
    runbook: float = 0.0
    sha: str = SHA1
    down: frozenset[str] = frozenset()


def results(w: World, at: datetime) -> list[CollectResult]:
    url = f"{RUNS}/{900000 + w.run}"
    by_source = {
        "repo": [Evidence(source="repo", signal="file_exists", params={"path": RESTART},
                          value={"exists": w.restart, "count": int(w.restart), "paths": [RESTART] if w.restart else []},
                          provenance=Provenance(commit=w.sha, path=RESTART), observed_at=at)],
        "ci": [Evidence(source="ci", signal="latest_run", params={},
                        value={"success": w.ci == "success", "conclusion": w.ci, "run_id": 900000 + w.run, "run_number": w.run,
                               "url": url, "head_sha": w.sha, "created_at": "2026-11-25T11:00:00Z", "duration_seconds": 61.0},
                        provenance=Provenance(url=url, commit=w.sha), observed_at=at)],
        "status": [Evidence(source="status", signal="declared_score", params={"title": title}, value={"score": score},
                            provenance=Provenance(commit=w.sha, path=STATUS, line=line), observed_at=at)
                   for title, score, line in (("Survive restart", w.declared, 12), ("Traces", w.traces, 14), ("Runbook", w.runbook, 20))],
    }
    out = []
    for source, items in by_source.items():
        if source in w.down:
            out.append(failed(source, [EvidenceRequest(signal=e.signal, params=e.params) for e in items], DOWN, now=at))
        else:
            out.append(CollectResult(source=source, evidence=items, fingerprint=w.sha))
    return out


class Series:
    """Snapshots in time order, with the alert store a daemon would keep."""

    def __init__(self, proj: Project):
        self.project = proj
        self.snapshots: list[Snapshot] = []
        self.alerts: dict[int, Alert] = {}

    @staticmethod
    def blame(source: str, old: str, new: str, pattern: str, is_glob: bool) -> str | None:
        """Each world is one commit after the one before: a change to files was made in the newer one."""
        return new

    def run(self, world: World, at: datetime, *, failing_since: dict[str, datetime] | None = None,
            proj: Project | None = None, rescore_baseline: bool = True, decimals: int = 0) -> Evaluation:
        self.project = proj or self.project
        previous = self.snapshots[-1] if self.snapshots else None
        snap = score_project(self.project, results(world, at), previous=previous, now=at)
        snap = snap.model_copy(update={"id": len(self.snapshots) + 1})
        baseline = previous
        if previous is not None and rescore_baseline and previous.rules_hash != snap.rules_hash:
            baseline = rescore(self.project, previous, now=at)
        out = evaluate(self.project, snap, baseline, self.open(), failing_since=failing_since or {}, decimals=decimals, now=at,
                       blame=self.blame)
        for alert in out.alerts:
            if alert.id is None:
                alert.id = len(self.alerts) + 1
            self.alerts[alert.id] = alert
        self.snapshots.append(snap)
        return out

    def open(self) -> list[Alert]:
        return [a for a in self.alerts.values() if a.state != "resolved"]

    def alert(self, subject: str, kind: str = "regression") -> Alert:
        (found,) = [a for a in self.alerts.values() if (a.subject, a.kind) == (subject, kind)]
        return found


def events(out: Evaluation, subject: str | None = None) -> list[tuple[str, str, str]]:
    return [(m.event, m.subject, m.title) for m in out.messages if subject in (None, m.subject)]


def of(out: Evaluation, subject: str) -> list[Alert]:
    return [a for a in out.alerts if a.subject == subject]


OBS = "pillar:observability"
DUR = "pillar:durability"


# --- thresholds and hysteresis -------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "fires"),
    [(0.75, True), (0.7501, False), (0.60, True), (0.80, False), (0.95, False)],
)
def test_a_drop_of_exactly_the_threshold_fires_and_just_under_does_not(after, fires):
    series = Series(project())
    assert series.run(World(traces=0.80), T0).alerts == []
    out = series.run(World(traces=after), T0 + H)
    if fires:
        shown = f"{after * 100:.0f}%"
        assert events(out, OBS) == [("firing", OBS, f"Observability fell from 80% to {shown}")]
        (alert,) = of(out, OBS)
        assert (alert.state, alert.kind, alert.pending_count, alert.severity) == ("firing", "regression", 1, "warning")
        assert alert.baseline == pytest.approx(80.0) and alert.value == pytest.approx(after * 100)
        assert (alert.started_at, alert.fired_at, alert.last_notified_at, alert.snapshot_id) == (T0 + H, T0 + H, T0 + H, 2)
        assert events(out, OBS) and out.messages[0].fingerprint == alert.fingerprint
    else:
        assert (out.alerts, out.messages) == ([], [])


@pytest.mark.parametrize(
    ("series_of_traces", "states", "fired_at_step"),
    [
        # for: 3 needs three consecutive complete snapshots with the drop
        ((0.8, 0.6, 0.6, 0.6), ["pending", "pending", "firing"], 3),
        # a further drop while pending still counts
        ((0.8, 0.6, 0.5, 0.6), ["pending", "pending", "firing"], 3),
        # a recovery before the third resolves silently
        ((0.8, 0.6, 0.6, 0.78), ["pending", "pending", "resolved"], None),
    ],
)
def test_for_three_needs_three_consecutive_complete_snapshots(series_of_traces, states, fired_at_step):
    series = Series(project(alerts={"for": 3}))
    series.run(World(traces=series_of_traces[0]), T0)
    seen, messages = [], []
    for step, traces in enumerate(series_of_traces[1:], start=1):
        out = series.run(World(traces=traces), T0 + step * H)
        seen.append(series.alert(OBS).state)
        messages += [(step, m.event) for m in out.messages if m.subject == OBS]
    assert seen == states
    assert messages == ([(fired_at_step, "firing")] if fired_at_step else [])
    alert = series.alert(OBS)
    assert alert.started_at == T0 + H
    if fired_at_step is None:
        assert alert.resolved_at == T0 + 3 * H and alert.fired_at is None


def test_for_one_fires_at_once():
    series = Series(project(alerts={"for": 1}))
    series.run(World(), T0)
    out = series.run(World(traces=0.5), T0 + H)
    assert [a.state for a in of(out, OBS)] == ["firing"]


# --- partial snapshots and failing sources ---------------------------------------------------


def test_a_partial_snapshot_does_not_raise_a_regression():
    series = Series(project())
    series.run(World(traces=0.8), T0)
    out = series.run(World(traces=0.5, down=frozenset({"ci"})), T0 + H)
    assert not series.snapshots[-1].complete
    assert (out.alerts, out.messages) == ([], [])


def test_a_partial_snapshot_neither_advances_nor_resolves_an_alert():
    series = Series(project(alerts={"for": 2}))
    series.run(World(traces=0.8), T0)
    series.run(World(traces=0.5), T0 + H)
    assert series.alert(OBS).pending_count == 1
    out = series.run(World(traces=0.5, down=frozenset({"ci"})), T0 + 2 * H)
    assert (out.alerts, out.messages) == ([], [])
    assert series.alert(OBS).pending_count == 1
    series.run(World(traces=0.5), T0 + 3 * H)
    assert series.alert(OBS).state == "firing"
    # back up, but only in a partial snapshot: still firing, nothing said
    out = series.run(World(traces=0.8, down=frozenset({"ci"})), T0 + 4 * H)
    assert (out.alerts, out.messages) == ([], [])
    assert series.alert(OBS).state == "firing"
    out = series.run(World(traces=0.8), T0 + 5 * H)
    assert events(out, OBS) == [("resolved", OBS, "Observability is back at 80%")]


@pytest.mark.parametrize(
    ("ci_max_age", "status"),
    [("7d", "stale"), ("1h", "unknown")],
)
def test_a_failing_source_whose_criteria_go_stale_or_unknown_is_no_regression(ci_max_age, status):
    # 2 of 3 sources answering is complete, so alerts are evaluated
    series = Series(project(complete_share=0.6, ci_max_age=ci_max_age))
    series.run(World(), T0)
    out = series.run(World(down=frozenset({"ci"})), T0 + 2 * H)
    snap = series.snapshots[-1]
    assert snap.complete and snap.criterion("durability", "ci").status == status
    if status == "unknown":
        # the raw figure fell (the passing workflow left the mean) ...
        assert series.snapshots[0].pillar("durability").score - snap.pillar("durability").score > 5
    # ... but a collector failure is never a regression
    assert (out.alerts, out.messages) == ([], [])
    # and when the source answers again, nothing rises or falls either
    out = series.run(World(), T0 + 3 * H)
    assert (out.alerts, out.messages) == ([], [])


def test_a_real_drop_still_counts_while_another_source_is_failing():
    series = Series(project(complete_share=0.6, ci_max_age="1h"))
    series.run(World(), T0)
    out = series.run(World(down=frozenset({"ci"}), declared=0.0, restart=False), T0 + 2 * H)
    assert [(m.subject, m.title) for m in out.messages] == [
        (DUR, "Durability fell from 87% to 33%"),  # ci counted at its last score, 1.0, on both sides
        ("overall", "Overall fell from 83% to 57%"),
    ]


# --- a change of rules -------------------------------------------------------------------


def test_a_change_of_weights_is_not_a_regression_when_the_baseline_is_rescored():
    before, after = project(), project(weights=(1, 1, 4))
    world = World(declared=0.4)
    rescored_series = Series(before)
    rescored_series.run(world, T0)
    assert rescored_series.snapshots[0].pillar("durability").score == pytest.approx(80.0)
    out = rescored_series.run(world, T0 + H, proj=after)
    assert rescored_series.snapshots[1].pillar("durability").score == pytest.approx(60.0)
    assert (out.alerts, out.messages) == ([], [])

    naive = Series(before)
    naive.run(world, T0)
    out = naive.run(world, T0 + H, proj=after, rescore_baseline=False)
    assert [m.title for m in out.messages] == ["Durability fell from 80% to 60%", "Overall fell from 80% to 70%"]


def test_rescore_keeps_identity_and_scores_under_the_new_rules():
    old = Series(project())
    old.run(World(declared=0.4), T0)
    original = old.snapshots[0]
    again = rescore(project(weights=(1, 1, 4), runbook=True), original, now=T0 + H)
    assert (again.id, again.taken_at, again.project) == (original.id, original.taken_at, original.project)
    assert again.rules_hash == project(weights=(1, 1, 4), runbook=True).rules_hash() != original.rules_hash
    assert again.pillar("durability").score == pytest.approx(60.0)
    # the Runbook line was never read under the old rules: unknown there, not 0
    runbook = again.criterion("durability", "runbook")
    assert (runbook.status, runbook.score) == ("unknown", None)
    assert [s.answered for s in again.sources] == [s.answered for s in original.sources]


def test_rescore_keeps_a_stale_criterion_and_a_failed_source_unanswered():
    series = Series(project(complete_share=0.6))
    series.run(World(), T0)
    series.run(World(down=frozenset({"ci"})), T0 + H)
    stale = series.snapshots[-1]
    again = rescore(project(complete_share=0.6, weights=(2, 1, 1)), stale, now=T0 + 2 * H)
    ci = again.criterion("durability", "ci")
    assert (ci.status, ci.score, ci.scored_at) == ("stale", 1.0, T0)
    assert [s.answered for s in again.sources] == [True, False, True]


def test_a_criterion_added_by_a_change_of_rules_is_not_a_regression():
    series = Series(project())
    series.run(World(), T0)
    out = series.run(World(runbook=0.0), T0 + H, proj=project(runbook=True))
    assert series.snapshots[-1].pillar("durability").score == pytest.approx(65.0)  # from 86.7
    assert (out.alerts, out.messages) == ([], [])


# --- one alert per pillar, reminders, recovery ------------------------------------------------


def test_a_further_drop_updates_the_open_alert_instead_of_opening_another():
    series = Series(project())
    series.run(World(traces=0.8), T0)
    first = series.run(World(traces=0.6), T0 + H).alerts[0]
    out = series.run(World(traces=0.4), T0 + 2 * H)
    assert out.messages == []
    (alert,) = of(out, OBS)
    assert (alert.id, alert.state, alert.baseline, alert.value) == (first.id, "firing", pytest.approx(80.0), pytest.approx(40.0))
    assert len([a for a in series.alerts.values() if a.subject == OBS]) == 1


@pytest.mark.parametrize(
    ("later", "reminded"),
    [(timedelta(hours=23, minutes=59), False), (timedelta(hours=24), True), (timedelta(hours=30), True)],
)
def test_a_reminder_after_repeat_interval_not_before(later, reminded):
    series = Series(project())
    series.run(World(traces=0.8), T0)
    series.run(World(traces=0.6), T0 + H)
    out = series.run(World(traces=0.6), T0 + H + later)
    if reminded:
        assert events(out, OBS) == [("reminder", OBS, "Observability fell from 80% to 60%")]
        assert series.alert(OBS).last_notified_at == T0 + H + later
        assert out.messages[0].started_at == T0 + H
    else:
        assert out.messages == []
        assert series.alert(OBS).last_notified_at == T0 + H


def test_resolved_when_back_to_baseline_not_when_partly_recovered():
    series = Series(project())
    series.run(World(traces=0.8), T0)
    series.run(World(traces=0.6), T0 + H)
    out = series.run(World(traces=0.78), T0 + 2 * H)
    assert out.messages == [] and series.alert(OBS).state == "firing"
    assert series.alert(OBS).value == pytest.approx(78.0)
    out = series.run(World(traces=0.8), T0 + 3 * H)
    assert events(out, OBS) == [("resolved", OBS, "Observability is back at 80%")]
    message = next(m for m in out.messages if m.subject == OBS)
    assert (message.ended_at, message.started_at, message.value_display) == (T0 + 3 * H, T0 + H, "80%")
    assert series.alert(OBS).resolved_at == T0 + 3 * H
    # a new drop afterwards is a new alert
    out = series.run(World(traces=0.5), T0 + 4 * H)
    assert [a.state for a in series.alerts.values() if a.subject == OBS] == ["resolved", "firing"]


def test_a_pending_alert_that_recovers_says_nothing():
    series = Series(project(alerts={"for": 2}))
    series.run(World(traces=0.8), T0)
    series.run(World(traces=0.6), T0 + H)
    out = series.run(World(traces=0.8), T0 + 2 * H)
    assert out.messages == [] and [a.state for a in of(out, OBS)] == ["resolved"]


# --- floors ----------------------------------------------------------------------------------


def test_pillar_and_overall_floors():
    series = Series(project(below=60, alerts={"threshold": 50, "overall_below": 72}))
    out = series.run(World(traces=0.55), T0)  # no baseline needed for a floor
    assert events(out) == [
        ("firing", OBS, "Observability is below its floor of 60%: 55%"),
        ("firing", "overall", "Overall is below its floor of 72%: 71%"),
    ]
    assert series.alert(OBS, "floor").baseline == 60
    out = series.run(World(traces=0.60), T0 + H)  # exactly at the floor is not below it
    assert events(out) == [
        ("resolved", OBS, "Observability is back above its floor of 60%: 60%"),
        ("resolved", "overall", "Overall is back above its floor of 72%: 73%"),
    ]


def test_a_floor_with_for_two_and_a_silent_recovery():
    series = Series(project(below=60, alerts={"threshold": 50, "for": 2}))
    assert [a.state for a in series.run(World(traces=0.5), T0).alerts] == ["pending"]
    out = series.run(World(traces=0.7), T0 + H)
    assert out.messages == [] and [a.state for a in of(out, OBS)] == ["resolved"]


# --- failing sources ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "fires"),
    [(timedelta(hours=5, minutes=59), False), (timedelta(hours=6), True), (timedelta(hours=7), True)],
)
def test_a_source_failing_longer_than_stale_after_fires(after, fires):
    series = Series(project())
    series.run(World(), T0)
    out = series.run(World(down=frozenset({"ci"})), T0 + after, failing_since={"ci": T0})
    if fires:
        hours = int(after.total_seconds() // 3600)
        assert events(out) == [("firing", "source:ci", f"Source ci has been failing for {hours}h: {DOWN.message}")]
        (alert,) = out.alerts
        assert (alert.kind, alert.severity, alert.state) == ("source_failing", "warning", "firing")
    else:
        assert (out.alerts, out.messages) == ([], [])


def test_a_failing_source_alert_reminds_and_then_resolves():
    series = Series(project(alerts={"severity": "critical"}))
    series.run(World(), T0)
    series.run(World(down=frozenset({"ci"})), T0 + 6 * H, failing_since={"ci": T0})
    assert series.alert("source:ci", "source_failing").severity == "critical"
    out = series.run(World(down=frozenset({"ci"})), T0 + 7 * H, failing_since={"ci": T0})
    assert out.messages == []
    out = series.run(World(down=frozenset({"ci"})), T0 + 30 * H, failing_since={"ci": T0})
    assert events(out) == [("reminder", "source:ci", f"Source ci has been failing for 30h: {DOWN.message}")]
    out = series.run(World(), T0 + 31 * H)
    assert events(out) == [("resolved", "source:ci", "Source ci is answering again")]
    assert out.messages[0].severity == "critical"


def test_no_source_alert_without_stale_after():
    series = Series(project(alerts={"stale_after": None}))
    out = series.run(World(down=frozenset({"ci"})), T0 + 100 * H, failing_since={"ci": T0})
    assert out.messages == []


# --- what an alert says ---------------------------------------------------------------------------


def test_the_alert_names_the_criteria_and_the_evidence_that_moved():
    series = Series(project())
    series.run(World(), T0)
    out = series.run(World(restart=False, ci="failure", run=4812, declared=0.4, sha=SHA2), T0 + H)
    durability = next(m for m in out.messages if m.subject == DUR)
    assert durability.title == "Durability fell from 87% to 13%"
    assert (durability.baseline_display, durability.value_display) == ("87%", "13%")
    assert [(c.criterion, c.before, c.after, c.status_before, c.status_after) for c in durability.criteria] == [
        ("restart", 1.0, 0.0, "ok", "ok"),
        ("ci", 1.0, 0.0, "ok", "ok"),
        ("declared", 0.6, pytest.approx(0.4), "ok", "ok"),
    ]
    described = {e.signal: e for e in durability.evidence}
    deleted = described["file_exists"]
    assert deleted.description == "tests/test_restart.py deleted in 3f2a1c9"
    assert (deleted.commit, deleted.path) == (SHA2, RESTART)
    run = described["latest_run"]
    assert run.description == "workflow run 4812: success → failure"
    assert run.url == f"{RUNS}/904812"
    doc = described["declared_score"]
    assert doc.description == "docs/STATUS.md:12: 0.60 → 0.40"
    assert (doc.path, doc.line, doc.commit) == (STATUS, 12, SHA2)
    assert durability.links == [f"{RUNS}/904812"]
    for line in ("Criteria that moved:", "- Restart test exists (durability): 1.00 → 0.00",
                 "Evidence that changed:", "- tests/test_restart.py deleted in 3f2a1c9"):
        assert line in durability.summary.splitlines()
    # the overall alert lists what moved in every pillar; unchanged criteria are left out
    overall = next(m for m in out.messages if m.subject == "overall")
    assert [c.criterion for c in overall.criteria] == ["restart", "ci", "declared"]
    # the alert keeps the story for its reminders
    assert [e.description for e in series.alert(DUR).evidence] == [e.description for e in durability.evidence]
    # with no way to look into the history, the commit is not guessed
    unknown = evaluate(series.project, series.snapshots[1], series.snapshots[0], [], failing_since={}, decimals=0, now=T0 + H)
    assert "tests/test_restart.py deleted between 1111111 and 3f2a1c9" in [
        e.description for m in unknown.messages if m.subject == DUR for e in m.evidence]


def test_with_for_two_the_firing_message_still_says_what_moved_first():
    series = Series(project(alerts={"for": 2}))
    series.run(World(), T0)
    series.run(World(restart=False, sha=SHA2), T0 + H)
    out = series.run(World(restart=False, sha=SHA2), T0 + 2 * H)
    firing = next(m for m in out.messages if m.subject == DUR)
    assert [e.description for e in firing.evidence] == ["tests/test_restart.py deleted in 3f2a1c9"]
    assert [(c.criterion, c.before, c.after) for c in firing.criteria] == [("restart", 1.0, 0.0)]


def test_a_criterion_whose_status_changed_moved_too():
    series = Series(project(complete_share=0.6, ci_max_age="1h"))
    series.run(World(), T0)
    out = series.run(World(down=frozenset({"ci"}), traces=0.5), T0 + 2 * H)
    assert [m.title for m in out.messages] == ["Observability fell from 80% to 50%", "Overall fell from 83% to 68%"]
    overall = out.messages[1]
    assert [(c.criterion, c.before, c.after, c.status_before, c.status_after) for c in overall.criteria] == [
        ("ci", 1.0, None, "ok", "unknown"),
        ("traces", 0.8, 0.5, "ok", "ok"),
    ]
    assert f"ci: {DOWN.message}" in [e.description for e in overall.evidence]
    assert "- Durability workflow passes (durability): 1.00 → – (unknown)" in overall.summary.splitlines()


def ev(signal: str, value: dict | None, *, params: dict | None = None, error: EvidenceError | None = None,
       source: str = "s", **prov: Any) -> Evidence:
    return Evidence(source=source, signal=signal, params=params or {}, value=value, error=error,
                    provenance=Provenance(**prov), observed_at=T0)


GLOB = {"glob": "tests/**/test_*.py"}


@pytest.mark.parametrize(
    ("old", "new", "field", "description"),
    [
        (ev("file_exists", {"exists": False, "count": 0, "paths": []}, params={"path": "a.py"}),
         ev("file_exists", {"exists": True, "count": 1, "paths": ["a.py"]}, params={"path": "a.py"}, commit=SHA2),
         None, "a.py added in 3f2a1c9"),
        (ev("file_exists", {"exists": True, "count": 2, "paths": ["t/x.py", "t/y.py"]}, params=GLOB),
         ev("file_exists", {"exists": False, "count": 0, "paths": []}, params=GLOB, commit=SHA2),
         None, "t/x.py deleted in 3f2a1c9"),
        (ev("content_match", {"files": 2, "matches": 5, "paths": []}, params=GLOB | {"regex": "fsync"}),
         ev("content_match", {"files": 2, "matches": 3, "paths": []}, params=GLOB | {"regex": "fsync"}, commit=SHA2),
         "matches", "tests/**/test_*.py: 5 → 3 matches in 3f2a1c9"),
        (ev("content_match", {"files": 3, "matches": 5}, params=GLOB | {"regex": "x"}),
         ev("content_match", {"files": 2, "matches": 5}, params=GLOB | {"regex": "x"}),
         "matches", "tests/**/test_*.py: 3 → 2 files"),
        (ev("file_count", {"count": 5, "paths": []}, params=GLOB),
         ev("file_count", {"count": 3, "paths": []}, params=GLOB, commit=SHA2),
         "count", "tests/**/test_*.py: 5 → 3 files in 3f2a1c9"),
        (ev("ratio", {"ratio": 1.0, "numerator": 5, "denominator": 5}, path="STATUS.md", line=7),
         ev("ratio", {"ratio": 0.8, "numerator": 4, "denominator": 5}, path="STATUS.md", line=8),
         "ratio", "STATUS.md:8: 1.00 → 0.80"),
        (ev("checklist", {"ratio": 0.5, "done": 1, "total": 2}, path="PLAN.md", line=3),
         ev("checklist", {"ratio": 0.25, "done": 1, "total": 4}, path="PLAN.md", line=3),
         "ratio", "PLAN.md:3: 0.50 → 0.25"),
        (ev("tests", {"tests": 10, "passed": 10, "skipped": 0, "pass_ratio": 1.0}, path="reports/junit.xml"),
         ev("tests", {"tests": 10, "passed": 8, "skipped": 0, "pass_ratio": 0.8}, path="reports/junit.xml"),
         "pass_ratio", "reports/junit.xml: 10/10 → 8/10 tests pass"),
        (ev("latest_run", {"conclusion": "success", "run_id": 1, "run_number": None, "url": "u1"}),
         ev("latest_run", {"conclusion": "failure", "run_id": 77, "run_number": None, "url": "https://ci/77"}),
         "success", "workflow run 77: success → failure"),
        (ev("declared_score", {"score": 0.6}, source="status"),
         ev("declared_score", None, source="status", error=EvidenceError(kind="not_found", message="STATUS.md: no line 'X: <score>'")),
         "score", "status: STATUS.md: no line 'X: <score>'"),
        (ev("status", {"status": 200, "ok": True}, params={"path": "/healthz"}),
         ev("status", {"status": 503, "ok": False}, params={"path": "/healthz"}),
         "ok", "status(path=/healthz): ok true → false"),
        (ev("latency", {"ms": 120.5}), ev("latency", {"ms": 980.0}), None, "latency(): ms 120.5 → 980"),
        (ev("head", {"age_days": 1.0}), None, "age_days", "head(): no longer observed"),
    ],
)
def test_evidence_is_described_the_way_a_person_would_say_it(old, new, field, description):
    change = describe_evidence(old, new, field=field)
    assert change is not None and change.description == description


def test_unchanged_evidence_is_not_described():
    item = ev("file_count", {"count": 3}, params=GLOB)
    assert describe_evidence(item, item.model_copy(update={"observed_at": T0 + H})) is None


def test_a_gitlab_run_is_a_pipeline_and_keeps_its_url():
    old = ev("latest_run", {"conclusion": "success", "run_number": None, "run_id": 10, "url": "https://gl/p/10"})
    new = ev("latest_run", {"conclusion": "failed", "run_number": None, "run_id": 11, "url": "https://gl/p/11"}, url="https://gl/p/11")
    change = describe_evidence(old, new, kind="gitlab")
    assert (change.description, change.url) == ("pipeline 11: success → failed", "https://gl/p/11")


def test_decimals_and_half_up_in_titles():
    series = Series(project())
    series.run(World(traces=0.80), T0)
    out = series.run(World(traces=0.745), T0 + H, decimals=0)
    assert out.messages[0].title == "Observability fell from 80% to 75%"  # 74.5 -> 75, half-up
    series = Series(project())
    series.run(World(traces=0.80), T0)
    out = series.run(World(traces=0.745), T0 + H, decimals=1)
    assert out.messages[0].title == "Observability fell from 80.0% to 74.5%"


def test_alerts_of_other_states_and_inputs_are_not_mutated():
    series = Series(project())
    series.run(World(traces=0.8), T0)
    series.run(World(traces=0.6), T0 + H)
    before = [a.model_copy(deep=True) for a in series.open()]
    snapshot = score_project(series.project, results(World(traces=0.8), T0 + 2 * H), previous=series.snapshots[-1], now=T0 + 2 * H)
    evaluate(series.project, snapshot, series.snapshots[-1], series.open(), failing_since={}, decimals=0, now=T0 + 2 * H)
    assert series.open() == before


def test_the_same_evaluation_twice_is_the_same():
    proj = project()
    base = score_project(proj, results(World(), T0), previous=None, now=T0)
    cur = score_project(proj, results(World(traces=0.5, restart=False, sha=SHA2), T0 + H), previous=base, now=T0 + H)
    one = evaluate(proj, cur, base, [], failing_since={}, decimals=0, now=T0 + H)
    two = evaluate(proj, cur, base, [], failing_since={}, decimals=0, now=T0 + H)
    assert one == two
