"""What pillarwatch answers: the read queries behind the CLI and the HTTP API.

Each function takes an open :class:`~daemon.store.Store` (and the configuration
where it needs one) and returns pydantic models or plain JSON-ready data, so
``pillarwatch X --json`` and ``GET /api/...`` print the same shapes. Nothing
here writes, and nothing here formats for a terminal or a page.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, field_serializer

from collectors.models.git import GitSource
from daemon.config.durations import parse_duration
from daemon.config.model import Config, Project
from daemon.errors import InputError, NotFound
from daemon.scoring import calibrate as trust
from daemon.scoring.snapshot import CriterionScore, Snapshot, rfc3339
from daemon.store import Store

if TYPE_CHECKING:
    from daemon.changes import Blame, SnapshotDiff


def choose_project(config: Config, project_id: str | None) -> Project:
    """The project asked for, or the only one configured."""
    if project_id:
        return config.project(project_id)
    if len(config.projects) == 1:
        return config.projects[0]
    raise InputError(f"several projects are configured; choose one ({', '.join(p.id for p in config.projects)})")


def latest(store: Store, project: Project) -> Snapshot:
    snapshot = store.latest(project.id)
    if snapshot is None:
        raise NotFound(f"no snapshot of project {project.id!r} yet (run `pillarwatch collect` first)")
    return snapshot


def snapshot(store: Store, snapshot_id: int) -> Snapshot:
    return store.get(snapshot_id)


# --- history ---------------------------------------------------------------------------


class HistoryPoint(BaseModel):
    """One snapshot in a series: its figures, without criteria."""

    id: int | None
    taken_at: datetime
    last_seen_at: datetime | None
    complete: bool
    origin: str  # collected, backfilled or imported
    rules_hash: str
    overall: float | None
    pillars: dict[str, float | None]

    @field_serializer("taken_at", "last_seen_at")
    def _time(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None


def parse_moment(value: str | None, name: str, *, now: datetime) -> datetime | None:
    """A ``since``/``until`` value, read the same by the CLI and the API.

    An ISO 8601 date or date-time (``2026-11-01``, ``20261101``,
    ``2026-11-01T08:00Z``; UTC unless it says otherwise), or a duration back
    from ``now`` (``7d``). Nothing else: a bare number is not Unix seconds.
    """
    if value is None:
        return None
    try:
        back = parse_duration(value)
    except ValueError:
        pass
    else:
        try:
            return now - back
        except OverflowError:
            raise InputError(f"{name} {value!r} is out of range") from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{name} {value!r}: use a date (2026-11-01), a time (2026-11-01T08:00Z) "
                         "or a duration back from now (7d)") from None
    try:
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        raise InputError(f"{name} {value!r} is out of range") from None


class History(BaseModel):
    """A page of a project's snapshots, oldest first; ``total`` counts every match."""

    project: str
    pillar: str | None
    pillar_titles: dict[str, str]
    total: int
    limit: int
    offset: int
    points: list[HistoryPoint]


def history(
    store: Store,
    project: Project,
    *,
    pillar: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> History:
    """The series of snapshots of a project (or of one pillar) in a time range, newest page first."""
    if limit < 1 or offset < 0:
        raise InputError("limit must be at least 1 and offset not negative")
    if since is not None and until is not None and since > until:
        raise InputError(f"since ({rfc3339(since)}) is after until ({rfc3339(until)})")
    titles = {p.id: p.title for p in project.expanded_pillars}
    if pillar is not None and pillar not in titles:
        raise NotFound(f"no pillar {pillar!r} in project {project.id!r} (have: {', '.join(titles)})")
    snapshots = store.history(project.id, since=since, until=until, limit=limit, offset=offset)
    points = [
        HistoryPoint(
            id=s.id, taken_at=s.taken_at, last_seen_at=s.last_seen_at, complete=s.complete, origin=s.origin,
            rules_hash=s.rules_hash,
            overall=s.overall,
            pillars={p.id: p.score for p in s.pillars if pillar is None or p.id == pillar},
        )
        for s in snapshots
    ]
    return History(
        project=project.id, pillar=pillar,
        pillar_titles={k: v for k, v in titles.items() if pillar is None or k == pillar},
        total=store.count_history(project.id, since=since, until=until), limit=limit, offset=offset, points=points,
    )


# --- explain ---------------------------------------------------------------------------


class Explanation(BaseModel):
    project: str
    snapshot: int | None
    pillar: str
    criterion: CriterionScore

    def to_json(self) -> dict[str, Any]:
        """The shape of ``pillarwatch explain --json``: the criterion's fields at the top level."""
        return {"project": self.project, "snapshot": self.snapshot, "pillar": self.pillar,
                **self.criterion.model_dump(mode="json")}


def explain(snapshot: Snapshot, criterion: str) -> Explanation:
    """One criterion of a snapshot, by ``ID`` or ``PILLAR/ID``."""
    pillar_id, _, criterion_id = criterion.rpartition("/")
    matches = [
        (p, c) for p in snapshot.pillars for c in p.criteria
        if c.id == criterion_id and (not pillar_id or p.id == pillar_id)
    ]
    if not matches:
        known = ", ".join(f"{p.id}/{c.id}" for p in snapshot.pillars for c in p.criteria)
        raise NotFound(f"no criterion {criterion!r} in project {snapshot.project!r} (have: {known})")
    if len(matches) > 1:
        raise InputError(f"criterion {criterion!r} is in several pillars; write PILLAR/CRITERION "
                         f"({', '.join(p.id + '/' + c.id for p, c in matches)})")
    pillar, found = matches[0]
    return Explanation(project=snapshot.project, snapshot=snapshot.id, pillar=pillar.id, criterion=found)


# --- diff ------------------------------------------------------------------------------


def diff_latest(store: Store, project: Project, a: int | None = None, b: int | None = None, *,
                blame: Blame | None = None) -> SnapshotDiff:
    """``diff`` with defaults: B is the latest snapshot (or the one given), A the one before B."""
    second = _of_project(store.get(b), project) if b is not None else latest(store, project)
    if a is not None:
        first = _of_project(store.get(a), project)
    else:
        before = store.previous(second)
        if before is None:
            raise NotFound(f"snapshot {second.id} is the first of project {second.project!r}: nothing to compare with")
        first = before
    from daemon.changes import diff  # loaded only by diff: start-up time

    return diff(first, second, blame=blame)


def commit_blame(config: Config, project: Project) -> Blame:
    """Finds, in the project's git sources, the commit that made a change (within each source's timeout)."""
    from collectors import git_history  # GitPython loads only when git history is read: start-up time

    return git_history.blamer([s for s in project.sources if isinstance(s, GitSource)], cache_dir=config.cache_path)


def _of_project(found: Snapshot, project: Project) -> Snapshot:
    if found.project != project.id:
        raise NotFound(f"snapshot {found.id} is not of project {project.id!r} (it is of {found.project!r})")
    return found


# --- how far to trust the rules ----------------------------------------------------------


class Calibration(BaseModel):
    """``pillarwatch calibrate``: each rule's verdicts over the stored history."""

    project: str
    rules_hash: str
    timeline: str | None  # the git source whose commits the points are keyed by
    tolerance: float
    limit: int | None = None  # only the latest snapshots were read
    criteria: list[trust.CriterionTrust]


def calibration(store: Store, project: Project, *, tolerance: float = trust.TOLERANCE,
                limit: int | None = None) -> Calibration:
    """Every rule's scores over the stored history (one point per commit, under the current rules: a
    snapshot under other rules is re-scored from its evidence) against the team's scores, analysed.

    ``limit``: only the latest snapshots (and every imported one), for a page that must stay quick.
    """
    return Calibration(project=project.id, rules_hash=project.rules_hash(), timeline=timeline_source(project),
                       tolerance=tolerance, limit=limit,
                       criteria=[trust.assess(h, tolerance=tolerance) for h in calibration_points(store, project, limit=limit)])


def timeline_source(project: Project) -> str | None:
    """The git source whose commits key the points (the one backfill follows by default)."""
    return next((s.id for s in project.sources if s.kind == "git"), None)


def calibration_points(store: Store, project: Project, *, limit: int | None = None) -> list[trust.CriterionHistory]:
    """Each criterion with checks, with its rule's score at each stored commit and the team's scores."""
    timeline, current = timeline_source(project), project.rules_hash()
    rows = store.criterion_points(project.id, limit=limit)
    snapshots: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        snapshots.setdefault(row["snapshot"], []).append(row)
    chosen: dict[str, list[dict[str, Any]]] = {}  # commit -> the rows of the latest snapshot there, current rules first
    for group in snapshots.values():
        head = group[0]
        commit = next((s.get("fingerprint") for s in head["sources"] if s.get("id") == timeline), None)
        if head["origin"] == "imported" or not commit:
            continue
        known = chosen.get(commit)
        if known is None or head["rules_hash"] == current or known[0]["rules_hash"] != current:
            chosen[commit] = group
    rules: dict[tuple[str, str], list[trust.RulePoint]] = {}
    for commit, group in chosen.items():
        head = group[0]
        if head["rules_hash"] != current:
            group = _rescored(store, project, head["snapshot"])
        for row in group:
            if row["status"] == "ok" and row["score"] is not None:
                rules.setdefault((row["pillar"], row["criterion"]), []).append(trust.RulePoint(
                    commit=commit, taken_at=head["taken_at"], origin=head["origin"], score=row["score"],
                    checks=[trust.CheckValue(value=c.get("value"), score=c.get("score"), weight=c.get("weight", 1.0))
                            for c in row["checks"]]))
    judged: dict[tuple[str, str], list[trust.JudgedPoint]] = {}
    for row in rows:
        if row["status"] != "manual" or row["score"] is None:
            continue
        imported = row["origin"] == "imported"
        commit = row["document_commit"] if imported else next(
            (s.get("fingerprint") for s in row["sources"] if s.get("id") == timeline), None)
        judged.setdefault((row["pillar"], row["criterion"]), []).append(trust.JudgedPoint(
            commit=commit, taken_at=row["taken_at"], score=row["score"], by=row["document"] or "manual"))
    return [
        trust.CriterionHistory(
            pillar=p.id, criterion=c.id, title=c.title, combine=c.combine,
            checks=[trust.CheckInfo(what=_check_words(k), transform=k.transform_json) for k in c.checks],
            rules=sorted(rules.get((p.id, c.id), []), key=lambda r: r.taken_at), judged=judged.get((p.id, c.id), []),
        )
        for p in project.expanded_pillars for c in p.criteria if c.checks
    ]


def _rescored(store: Store, project: Project, snapshot_id: int) -> list[dict[str, Any]]:
    """A snapshot scored under other rules, re-scored under the current ones, as criterion rows."""
    from daemon.alerting.evaluate import rescore  # alert evaluation loads only for re-scoring: start-up time

    snap = store.get(snapshot_id)
    again = rescore(project, snap, now=snap.taken_at)
    return [{"pillar": p.id, "criterion": c.id, "score": c.score, "status": c.status,
             "checks": [k.model_dump(mode="json") for k in c.checks]} for p in again.pillars for c in p.criteria]


def _check_words(check: Any) -> str:
    params = ", ".join(f"{k}={v}" for k, v in check.request().params.items())
    return f"{check.source}: {check.signal}({params}).{check.value_field}"


# --- alerts and projects ---------------------------------------------------------------


def alerts(store: Store, *, project: str | None = None, state: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Alerts with the delivery state of each of their messages, and the outbox backlog."""
    if state is not None and state not in ("pending", "firing", "resolved"):
        raise InputError(f"state {state!r}: use pending, firing or resolved")
    found = store.alerts(project=project, state=state, limit=limit)
    return {
        "alerts": [
            {**a.model_dump(mode="json"), "fingerprint": a.fingerprint,
             "deliveries": [d.model_dump(mode="json", exclude={"message"}) | {"event": d.message.event, "title": d.message.title}
                            for d in store.outbox_items(alert_id=a.id)]}
            for a in found
        ],
        "outbox": store.outbox_backlog(project),
        # Channels switched off by a 410, until `alerts enable` or a change of their configuration.
        "disabled_channels": [{k: row[k] for k in ("channel", "disabled_at", "reason")} for row in store.disabled_channel_states()],
    }


def enable_channel(store: Store, config: Config, channel: str) -> bool:
    """Switch a disabled channel back on; False when it was not disabled. An unknown channel is an input error."""
    known = [c.id for c in config.channels] + ["log"]
    if channel not in known:
        raise InputError(f"channel {channel!r}: no such channel in the configuration (have: {', '.join(known)})")
    return store.enable_channel(channel)


class ProjectSummary(BaseModel):
    """A project as configured (no secrets: no source URLs or tokens) and its latest figures."""

    id: str
    title: str
    rules_hash: str
    sources: list[dict[str, str]]
    pillars: list[dict[str, Any]]
    latest_snapshot: int | None
    overall: float | None
    taken_at: datetime | None

    @field_serializer("taken_at")
    def _time(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None


def projects(store: Store, config: Config) -> list[ProjectSummary]:
    return [project_summary(store, p) for p in config.projects]


def project_summary(store: Store, p: Project) -> ProjectSummary:
    snap = store.latest(p.id)
    return ProjectSummary(
        id=p.id, title=p.title or p.id, rules_hash=p.rules_hash(),
        sources=[{"id": s.id, "kind": s.kind, "schedule": p.schedule_of(s).describe()} for s in p.sources],
        pillars=[{"id": x.id, "title": x.title, "weight": x.weight, "below": x.below,
                  "criteria": [{"id": c.id, "title": c.title, "weight": c.weight} for c in x.criteria]}
                 for x in p.expanded_pillars],
        latest_snapshot=snap.id if snap else None, overall=snap.overall if snap else None,
        taken_at=snap.taken_at if snap else None,
    )


# --- health ----------------------------------------------------------------------------


class Readiness(BaseModel):
    """Whether the data is fresh enough to serve: the last successful collection is recent."""

    ready: bool
    reason: str | None
    last_success_at: datetime | None
    max_age_seconds: float

    @field_serializer("last_success_at")
    def _time(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None


def readiness(store: Store, *, max_age: timedelta, now: datetime) -> Readiness:
    """Ready when some source answered within ``max_age`` of ``now``."""
    last = store.last_success()
    if last is None:
        reason: str | None = "no successful collection yet"
    elif now - last > max_age:
        reason = f"the last successful collection was at {rfc3339(last)}, more than {max_age.total_seconds():g}s ago (api.ready_max_age)"
    else:
        reason = None
    return Readiness(ready=reason is None, reason=reason, last_success_at=last, max_age_seconds=max_age.total_seconds())

