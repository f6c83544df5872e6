"""Regression detection: compare a snapshot with its baseline and move alerts along.

Pure functions, no I/O, ``now`` passed in. Each alert is one (project,
subject, kind): ``pending`` until its condition has held for ``for`` complete
snapshots, then ``firing`` (with a message, and reminders every
``repeat_interval``), then ``resolved``. What the messages say is
:mod:`daemon.alerting.wording`'s business.

Two promises of DESIGN.md shape the comparison: a collector failure is never a
regression, and neither is a change of rules. So the baseline is re-scored
under the current rules (:func:`rescore`), and pillars are compared over the
same criteria on both sides (:func:`_compare_pillar`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, Field

from collectors.evidence import CollectResult, Evidence, EvidenceError
from daemon import changes
from daemon.alerting import wording
from daemon.alerting.rules import Alert, AlertKind, AlertMessage
from daemon.changes import CriterionChange, EvidenceChange
from daemon.config.alerts import AlertRules, EventKind
from daemon.config.model import Project
from daemon.scoring.arithmetic import weighted_mean
from daemon.scoring.score import score_project
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot

_EPS = 1e-9  # float noise: a drop of exactly the threshold is a drop
_SCORED = ("ok", "stale", "manual")
_NOT_ANSWERED = EvidenceError(kind="not_found", message="the source did not answer")


class Evaluation(BaseModel):
    alerts: list[Alert] = Field(default_factory=list)  # every alert created or changed
    messages: list[AlertMessage] = Field(default_factory=list)  # events to deliver, in order


def rescore(project: Project, snapshot: Snapshot, *, now: datetime) -> Snapshot:
    """``snapshot`` re-scored under the project's current rules from the evidence stored in it."""
    stored: dict[str, dict[str, Evidence]] = {}
    for pillar in snapshot.pillars:
        for criterion in pillar.criteria:
            for item in criterion.evidence:
                stored.setdefault(item.source, {}).setdefault(item.key, item)
    states = {s.id: s for s in snapshot.sources}
    results = []
    for source_id in dict.fromkeys([*states, *stored]):
        state = states.get(source_id)
        # A source the snapshot did not record (an imported one) answered if it left evidence.
        answered = state.answered if state is not None else True
        error = None if answered else (state.error if state and state.error else _NOT_ANSWERED)
        results.append(CollectResult(source=source_id, evidence=list(stored.get(source_id, {}).values()), error=error,
                                     fingerprint=state.fingerprint if state else None))
    # Stale criteria keep carrying their last score, exactly as the current snapshot
    # does; everything else is scored afresh (evidence it lacks makes it unknown).
    # Scored at `now` so that ages (max_age, manual expiry) are judged as for the
    # current snapshot: only the evidence differs between the two.
    carried = snapshot.model_copy(update={"pillars": [
        p.model_copy(update={"criteria": [c for c in p.criteria if c.status == "stale"]}) for p in snapshot.pillars
    ]})
    scored = score_project(project, results, previous=carried, now=now)
    return scored.model_copy(update={"id": snapshot.id, "taken_at": snapshot.taken_at,
                                     "last_seen_at": snapshot.last_seen_at, "origin": snapshot.origin})


def needs_rebase(alert: Alert, rules_hash: str, *, rules_changed: bool) -> bool:
    """Whether an open regression's baseline is scored under other rules than ``rules_hash``.

    An alert stored before baselines carried their rules hash is re-scored when the rules change.
    """
    if alert.kind != "regression" or alert.state == "resolved" or alert.baseline is None:
        return False
    if alert.baseline_rules_hash is None:
        return rules_changed
    return alert.baseline_rules_hash != rules_hash


def rebase(project: Project, current: Snapshot, alerts: list[Alert], baselines: Mapping[int, Snapshot], *,
           now: datetime) -> list[Alert]:
    """Copies of the regression ``alerts`` with their baseline re-scored under the current rules.

    ``baselines`` maps an alert's id to its baseline snapshot. The stored
    evidence of that snapshot is re-scored (:func:`rescore`) and compared with
    ``current`` as a new regression would be, so the alert resolves or stays
    by the rules in force. An alert whose baseline snapshot is gone, or whose
    subject is no longer measured, is left as it is.
    """
    out = []
    for alert in alerts:
        snapshot = baselines.get(alert.id) if alert.id is not None else None
        if snapshot is None:
            continue
        old = _figures(current, rescore(project, snapshot, now=now)).get(alert.subject, (None, None, ""))[0]
        if old is None:
            continue
        out.append(alert.model_copy(update={"baseline": old, "baseline_rules_hash": current.rules_hash,
                                            "baseline_snapshot_id": snapshot.id}))
    return out


def evaluate(
    project: Project,
    current: Snapshot,
    baseline: Snapshot | None,
    open_alerts: list[Alert],
    *,
    failing_since: dict[str, datetime],
    decimals: int,
    now: datetime,
    blame: changes.Blame | None = None,
) -> Evaluation:
    """Alerts created or changed by ``current``, and the messages to deliver.

    ``blame`` names the commit that made a change to files (see :func:`daemon.queries.commit_blame`).
    """
    run = _Run(project, current, baseline, open_alerts, decimals=decimals, now=now)
    run.blame = blame
    if current.complete:
        run.figures()
    run.sources(failing_since)
    return Evaluation(alerts=run.changed(), messages=run.messages)


def _rules(project: Project) -> AlertRules:
    return getattr(project, "alerts", None) or AlertRules()


# --- comparison ------------------------------------------------------------------------


def _score(criterion: CriterionScore | None) -> float | None:
    if criterion is None or criterion.status not in _SCORED or criterion.score is None:
        return None
    return criterion.score


def _compare_pillar(current: PillarScore, baseline: PillarScore | None) -> tuple[float | None, float | None]:
    """(baseline %, current %), each side filled in where only the other side has a score.

    A criterion unknown now but scored in the baseline counts now with its
    baseline score (it vanished because its source failed: that lowers
    nothing); one scored now but not in the baseline (a source back, a new
    criterion) counts in the baseline with today's score (that raises nothing).
    Otherwise the baseline side is the baseline's own figure, with its weights.
    """
    before = {c.id: c for c in baseline.criteria} if baseline else {}
    now: list[tuple[float, float]] = []
    then = [(score * 100, c.weight) for c in baseline.criteria if (score := _score(c)) is not None] if baseline else []
    for criterion in current.criteria:
        new, old = _score(criterion), _score(before.get(criterion.id))
        if new is not None:
            now.append((new * 100, criterion.weight))
            if old is None:
                then.append((new * 100, criterion.weight))
        elif old is not None:
            now.append((old * 100, criterion.weight))
    return (weighted_mean(then) if baseline is not None else None), weighted_mean(now)


def _figures(current: Snapshot, baseline: Snapshot | None) -> dict[str, tuple[float | None, float | None, str]]:
    """subject -> (baseline, current, name): pillars in order, then overall (filled in the same way)."""
    out: dict[str, tuple[float | None, float | None, str]] = {}
    now: list[tuple[float, float]] = []
    then: list[tuple[float, float]] = []
    for pillar in current.pillars:
        before = baseline.pillar(pillar.id) if baseline else None
        old, new = _compare_pillar(pillar, before)
        out[f"pillar:{pillar.id}"] = (old, new, pillar.title)
        if new is not None:
            now.append((new, pillar.weight))
        if old is not None and before is not None:
            then.append((old, before.weight))
        elif new is not None:
            then.append((new, pillar.weight))
    if baseline is not None:
        gone = [p for p in baseline.pillars if current.pillar(p.id) is None and p.score is not None]
        then += [(p.score, p.weight) for p in gone]  # type: ignore[misc]
    out["overall"] = (weighted_mean(then) if baseline is not None else None, weighted_mean(now), "Overall")
    return out


# --- the state machine -----------------------------------------------------------------


class _Run:
    """One evaluation: the open alerts, updated in place on copies."""

    def __init__(self, project: Project, current: Snapshot, baseline: Snapshot | None, open_alerts: list[Alert],
                 *, decimals: int, now: datetime) -> None:
        self.project, self.current, self.baseline = project, current, baseline
        self.rules, self.decimals, self.now = _rules(project), decimals, now
        self.before = {(a.subject, a.kind): a for a in open_alerts if a.project == project.id and a.state != "resolved"}
        self.existing = {key: a.model_copy(deep=True) for key, a in self.before.items()}
        self.open = dict(self.existing)  # the live alert of each (subject, kind), new ones included
        self.created: list[Alert] = []
        self.blame: changes.Blame | None = None
        self.messages: list[AlertMessage] = []

    def changed(self) -> list[Alert]:
        touched = [a for key, a in self.existing.items() if a != self.before[key]]
        return touched + self.created

    # --- regressions and floors (complete snapshots only)

    def figures(self) -> None:
        floors = {f"pillar:{p.id}": getattr(p, "below", None) for p in self.project.expanded_pillars}
        floors["overall"] = self.rules.overall_below
        figures = _figures(self.current, self.baseline)
        for subject, (old, new, name) in figures.items():
            if new is None:
                continue  # nothing scorable: neither a drop nor a recovery
            pillar_id = subject.removeprefix("pillar:") if subject != "overall" else None
            criteria = changes.criterion_changes(self.baseline, self.current, pillar_id)
            evidence = changes.evidence_changes(self.baseline, self.current, criteria, blame=self.blame)
            step = (criteria, evidence)
            self._regression(subject, name, old, new, step)
            self._floor(subject, name, floors.get(subject), new, step)
        for (subject, kind), alert in list(self.open.items()):
            if kind != "source_failing" and subject not in figures and alert.state != "resolved":
                self._resolve(alert, subject.removeprefix("pillar:"), headline=f"{subject.removeprefix('pillar:')} is no longer measured")

    def _regression(self, subject: str, name: str, old: float | None, new: float,
                    step: tuple[list[CriterionChange], list[EvidenceChange]]) -> None:
        threshold = self.rules.threshold
        alert = self._live(subject, "regression")
        if alert is not None:
            self._gather(alert, new, step)
            holds = alert.baseline is not None and alert.baseline - new >= threshold - _EPS
            if alert.state == "pending":
                if not holds:
                    self._resolve(alert, name)  # never fired: silently
                else:
                    self._count(alert, name)
            elif alert.baseline is not None and new >= alert.baseline - _EPS:
                self._resolve(alert, name, step=step)
            else:
                self._remind(alert, name)
            if alert.state != "resolved":
                return
        if old is not None and old - new >= threshold - _EPS:
            alert = self._new(subject, "regression", baseline=old, value=new, step=step)
            # The baseline is already scored under the current rules (the caller re-scores a changed one).
            alert.baseline_snapshot_id = self.baseline.id if self.baseline is not None else None
            alert.baseline_rules_hash = self.current.rules_hash
            self._count(alert, name)

    def _floor(self, subject: str, name: str, floor: float | None, new: float,
               step: tuple[list[CriterionChange], list[EvidenceChange]]) -> None:
        alert = self._live(subject, "floor")
        below = floor is not None and new < floor - _EPS
        if alert is not None:
            self._gather(alert, new, step)
            if floor is not None:
                alert.baseline = floor
            if not below:
                self._resolve(alert, name, step=step)  # a pending one goes silently
            elif alert.state == "pending":
                self._count(alert, name)
            else:
                self._remind(alert, name)
        elif below:
            self._count(self._new(subject, "floor", baseline=floor, value=new, step=step), name)

    # --- failing sources (every snapshot)

    def sources(self, failing_since: dict[str, datetime]) -> None:
        errors = {s.id: s.error.message for s in self.current.sources if s.error is not None}
        stale_after = self.rules.stale_after
        for source in self.project.sources:
            since = failing_since.get(source.id)
            subject, name = f"source:{source.id}", f"Source {source.id}"
            alert = self._live(subject, "source_failing")
            if alert is not None and since is None:
                self._resolve(alert, name)
            elif alert is not None:
                if alert.state == "pending":
                    self._fire(alert, name, error=errors.get(source.id), since=since)
                else:
                    self._remind(alert, name, error=errors.get(source.id), since=since)
            elif since is not None and stale_after is not None and self.now - since >= stale_after:
                alert = self._new(subject, "source_failing", baseline=None, value=None, step=([], []))
                self._fire(alert, name, error=errors.get(source.id), since=since)
        known = {f"source:{s.id}" for s in self.project.sources}
        for (subject, kind), alert in list(self.open.items()):
            if kind == "source_failing" and subject not in known and alert.state != "resolved":
                self._resolve(alert, subject.replace("source:", "Source ", 1))

    # --- transitions

    def _live(self, subject: str, kind: AlertKind) -> Alert | None:
        alert = self.open.get((subject, kind))
        return alert if alert is not None and alert.state != "resolved" else None

    def _new(self, subject: str, kind: AlertKind, *, baseline: float | None, value: float | None,
             step: tuple[list[CriterionChange], list[EvidenceChange]]) -> Alert:
        alert = Alert(project=self.project.id, subject=subject, kind=kind, state="pending", severity=self.rules.severity,
                      baseline=baseline, value=value, low=value, low_at=self.now if value is not None else None,
                      pending_count=0, started_at=self.now,
                      snapshot_id=self.current.id, criteria=step[0], evidence=step[1])
        self.open[(subject, kind)] = alert
        self.created.append(alert)
        return alert

    def _gather(self, alert: Alert, value: float, step: tuple[list[CriterionChange], list[EvidenceChange]]) -> None:
        alert.value = value
        if alert.low is None or value < alert.low:
            alert.low, alert.low_at = value, self.now
        alert.criteria = changes.merge_criteria(alert.criteria, step[0])
        alert.evidence = changes.merge_evidence(alert.evidence, step[1])

    def _count(self, alert: Alert, name: str) -> None:
        alert.pending_count += 1
        if alert.pending_count >= self.rules.for_:
            self._fire(alert, name)

    def _fire(self, alert: Alert, name: str, **words: object) -> None:
        alert.state, alert.fired_at, alert.last_notified_at = "firing", self.now, self.now
        alert.snapshot_id = self.current.id
        self._say(alert, "firing", name, **words)

    def _remind(self, alert: Alert, name: str, **words: object) -> None:
        if alert.last_notified_at is None or self.now - alert.last_notified_at >= self.rules.repeat_interval:
            alert.last_notified_at = self.now
            self._say(alert, "reminder", name, **words)

    def _resolve(self, alert: Alert, name: str, *, headline: str | None = None,
                 step: tuple[list[CriterionChange], list[EvidenceChange]] | None = None) -> None:
        had_fired = alert.state == "firing"
        alert.state, alert.resolved_at = "resolved", self.now
        if had_fired:  # nobody was told of a pending alert, so nobody is told it ended
            criteria, evidence = step if step is not None else ([], [])
            self._say(alert, "resolved", name, criteria=criteria, evidence=evidence, headline=headline)

    def _say(self, alert: Alert, event: EventKind, name: str, *, since: datetime | None = None, **words: object) -> None:
        self.messages.append(wording.message(alert, event, name=name, decimals=self.decimals, now=self.now,
                                             snapshot_id=self.current.id, since=since, **words))  # type: ignore[arg-type]

