"""The HTML dashboard: one page per project (the index of projects is :mod:`daemon.web.overview`'s).

Pages are rendered on the server from Jinja2 templates (``daemon/web/templates``,
through :mod:`daemon.web.templating`) with autoescaping on: every title, reason
and piece of evidence comes from a configuration or a source, never from us, so
none of it is trusted. The pages
load nothing from anywhere (inline CSS, inline SVG charts, no script), so they
work offline and as a single file (``pillarwatch report --format html``).

This module turns query results into small view models with every figure
already formatted; the templates only lay them out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from markupsafe import Markup

from collectors.evidence import Evidence, evidence_key
from daemon import queries
from daemon.config.model import Config, Project
from daemon.gcpause import no_cycle_collection
from daemon.scoring.arithmetic import display
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot
from daemon.store import SeriesPoint, Store
from daemon.web.charts import AXES, Axis, Point, thin, trend_svg
from daemon.web.overview import index
from daemon.web.report import TRUST_COLUMNS, TRUST_LIMIT, TRUST_TITLE, main_gaps, missing_next, trust_intro, trust_rows
from daemon.web.templating import content_security_policy, render
from daemon.web.templating import when as _when

__all__ = ["AXES", "CHART_POINTS", "DEFAULT_RANGE", "RANGES", "Range", "content_security_policy", "docs", "index", "page"]

Range = Literal["7d", "30d", "90d", "all"]
RANGES: dict[Range, timedelta | None] = {"7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90), "all": None}
DEFAULT_RANGE: Range = "30d"
# A chart draws at most about this many points (the rest thinned, see charts.thin): a
# reader cannot tell more apart, and the page stays a few hundred kilobytes.
CHART_POINTS = 600
_VALUE_CHARS = 300  # an evidence value longer than this is cut: the explain link has it whole


def docs() -> str:
    """``/docs``: where the API's description is (no Swagger UI: it would load scripts from a CDN)."""
    return render("docs.html", title="pillarwatch API")


# --- view models -----------------------------------------------------------------------


@dataclass
class EvidenceRow:
    """One check of a criterion and the evidence it read, as shown in the evidence list."""

    what: str  # "repo: file_exists(path=tests/x.py).exists"
    value: str
    score: str
    error: str | None
    commit: str | None  # short SHA
    commit_full: str | None
    location: str | None  # "path:line"
    url: str | None  # only http(s): anything else is shown as text, never as a link
    url_text: str | None
    observed_at: str | None


@dataclass
class CriterionView:
    id: str
    title: str
    score: str
    status: str
    reason: str | None
    scored_at: str | None
    explain_url: str | None
    evidence: list[EvidenceRow]


@dataclass
class PillarView:
    id: str
    title: str
    score: str
    coverage: str
    chart: Markup
    gaps: list[str]
    criteria: list[CriterionView]


@dataclass
class AlertView:
    state: str
    subject: str
    kind: str
    severity: str
    title: str
    change: str
    started_at: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class GainView:
    title: str
    pillar: str
    now: str
    status: str
    gain: str


# --- pages -----------------------------------------------------------------------------


def page(store: Store, config: Config, project_id: str, *, standalone: bool = False,
         snapshot: Snapshot | None = None, range: Range = DEFAULT_RANGE, axis: Axis = "time") -> str:
    """One project's page; raises :class:`~daemon.errors.NotFound` for an unknown project.

    ``standalone`` leaves out the links to the HTTP API (explain, the index,
    the range and axis selector), which lead nowhere from a file opened on its
    own. ``snapshot``: the project's latest, when the caller has already read
    it. ``range`` (back from the latest snapshot) and ``axis`` choose what the
    trend charts show.
    """
    with no_cycle_collection():  # a page of 10,000 criteria allocates a million short-lived, acyclic objects
        return _page(store, config, project_id, standalone, snapshot, range, axis)


def _page(store: Store, config: Config, project_id: str, standalone: bool, snapshot: Snapshot | None,
          range: Range, axis: Axis) -> str:
    project = config.project(project_id)
    decimals = config.display.decimals
    snapshot = snapshot or store.latest(project.id)
    if snapshot is None:
        return render("page.html", title=project.title or project.id, project=project, snapshot=None,
                       standalone=standalone)
    back = RANGES[range]
    series = store.series(project.id, since=snapshot.seen_at - back if back else None)
    drawn = [series[i] for i in thin([h.taken_at for h in series], CHART_POINTS, axis=axis)]
    return render(
        "page.html",
        title=project.title or project.id,
        project=project,
        snapshot=snapshot,
        standalone=standalone,
        overall=display(snapshot.overall, decimals, suffix="%"),
        taken_at=_when(snapshot.taken_at),
        seen_at=_when(snapshot.last_seen_at) if snapshot.last_seen_at else None,
        missing_sources=[s.id + (f" ({s.error.kind}: {s.error.message})" if s.error else "")
                         for s in snapshot.sources if not s.answered],
        answered=_answered(snapshot),
        overall_chart=_chart(drawn, None, f"{project.title or project.id}: overall over time", decimals, axis,
                             width=640, height=180),
        history_note=_history_note(len(series), len(drawn), range),
        selector=_selector(project.id, range, axis),
        pillars=[_pillar(project, snapshot, p, drawn, decimals, standalone, axis) for p in snapshot.pillars],
        alerts=_open_alerts(store, project, snapshot, decimals),
        missing=_missing(snapshot),
        trust=_trust(store, project),
    )


# --- building the views ----------------------------------------------------------------


def _pillar(project: Project, snapshot: Snapshot, pillar: PillarScore, series: list[SeriesPoint],
            decimals: int, standalone: bool, axis: Axis) -> PillarView:
    titles = {c.id: c.title for c in pillar.criteria}
    return PillarView(
        id=pillar.id,
        title=pillar.title,
        score=display(pillar.score, decimals, suffix="%"),
        coverage=display(pillar.coverage * 100, 0, suffix="%"),
        chart=_chart(series, pillar.id, f"{pillar.title}: % over time", decimals, axis),
        gaps=[titles[g] for g in main_gaps(pillar)],
        criteria=[_criterion(project, pillar, c, standalone) for c in pillar.criteria],
    )


def _chart(series: list[SeriesPoint], pillar: str | None, title: str, decimals: int, axis: Axis,
           width: int = 320, height: int = 140) -> Markup:
    points = [
        Point(at=h.taken_at, value=h.overall if pillar is None else h.pillars.get(pillar),
              partial=not h.complete, until=h.last_seen_at)
        for h in series
    ]
    # trend_svg escapes every text it writes, so its markup is safe to insert as it is.
    return Markup(trend_svg(points, title=title, decimals=decimals, axis=axis, width=width, height=height))


def _selector(project: str, range: Range, axis: Axis) -> dict[str, list[dict[str, Any]]]:
    """The range and axis links: server-rendered, each keeping the other choice."""
    base = f"/projects/{quote(project, safe='')}/dashboard?"
    return {
        "ranges": [{"label": r, "url": base + urlencode({"range": r, "axis": axis}), "current": r == range} for r in RANGES],
        "axes": [{"label": a, "url": base + urlencode({"range": range, "axis": a}), "current": a == axis} for a in AXES],
    }


def _answered(snapshot: Snapshot) -> str:
    answered = sum(1 for s in snapshot.sources if s.answered)
    total = len(snapshot.sources)
    return f"{answered} of {total} source{'s' if total != 1 else ''} answered"


def _history_note(found: int, drawn: int, range: Range) -> str:
    span = "all snapshots" if range == "all" else f"the last {range[:-1]} days"
    note = f"{found} snapshot{'s' if found != 1 else ''} in {span}"
    return note + (f", {drawn} drawn" if drawn < found else "")


def _criterion(project: Project, pillar: PillarScore, c: CriterionScore, standalone: bool) -> CriterionView:
    explain = "/api/v1/projects/{}/criteria/{}/{}".format(*(quote(x, safe="") for x in (project.id, pillar.id, c.id)))
    return CriterionView(
        id=c.id,
        title=c.title,
        score=f"{c.score:.2f}" if c.score is not None else "–",
        status=c.status,
        reason=c.reason,
        scored_at=_when(c.scored_at) if c.scored_at else None,
        explain_url=None if standalone else explain,
        evidence=_evidence_rows(c),
    )


def _evidence_rows(c: CriterionScore) -> list[EvidenceRow]:
    """One row per check with the evidence it read (as `pillarwatch explain` pairs them)."""
    keyed = [(e.key, e) for e in c.evidence]  # each key is canonical JSON: made once
    by_key = dict(keyed)
    rows = []
    used: set[str] = set()
    for check in c.checks:
        key = evidence_key(check.source, check.signal, check.params)
        used.add(key)
        what = f"{check.source}: {check.signal}({_params(check.params)}).{check.field}"
        error = f"{check.error.kind}: {check.error.message}" if check.error else None
        score = f"{check.score:.2f}" if check.score is not None else "–"
        rows.append(_row(what, check.value, score, error, by_key.get(key)))
    for key, e in keyed:  # evidence no check points at (a manual criterion's, say): shown too
        if key not in used:
            error = f"{e.error.kind}: {e.error.message}" if e.error else None
            rows.append(_row(f"{e.source}: {e.signal}({_params(e.params)})", e.value, "", error, e))
    return rows


def _row(what: str, value: Any, score: str, error: str | None, evidence: Evidence | None) -> EvidenceRow:
    p = evidence.provenance if evidence else None
    url = p.url if p and p.url else None
    return EvidenceRow(
        what=what,
        value=_short(value),
        score=score,
        error=error,
        commit=p.commit[:7] if p and p.commit else None,
        commit_full=p.commit if p and p.commit else None,
        location=(p.path + (f":{p.line}" if p.line else "")) if p and p.path else None,
        url=url if url and urlsplit(url).scheme in ("http", "https") else None,
        url_text=url,
        observed_at=_when(evidence.observed_at) if evidence else None,
    )


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _short(value: Any) -> str:
    if value is None:
        return "–"
    text = f"{value:.4g}" if isinstance(value, float) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _open_alerts(store: Store, project: Project, snapshot: Snapshot, decimals: int) -> list[AlertView]:
    """Firing alerts first, then pending ones."""
    titles = {p.id: p.title for p in snapshot.pillars}
    found = [a for state in ("firing", "pending") for a in queries.alerts(store, project=project.id, state=state)["alerts"]]
    views = []
    for a in found:
        subject = a["subject"]
        kind, _, name = subject.partition(":")
        said = {"pillar": titles.get(name, name), "source": f"source {name}"}.get(kind, subject.capitalize())
        sent = a["deliveries"]
        views.append(AlertView(
            state=a["state"],
            subject=said,
            kind=a["kind"],
            severity=a["severity"],
            title=sent[0]["title"] if sent else f"{said}: {a['kind']}",
            change=f"{display(a['baseline'], decimals, suffix='%')} → {display(a['value'], decimals, suffix='%')}",
            started_at=_when(datetime.fromisoformat(a["started_at"].replace("Z", "+00:00"))),
            evidence=[e["description"] for e in a["evidence"]],
        ))
    return views


def _missing(snapshot: Snapshot) -> list[GainView]:
    titles = {p.id: p.title for p in snapshot.pillars}
    return [
        GainView(
            title=g.title,
            pillar=titles[g.pillar],
            now=f"{g.score:.2f}" if g.score is not None else "–",
            status=g.status,
            # The same two decimals as the Markdown report: a gain is a difference, not a figure.
            gain=f"+{g.gain:.2f}",
        )
        for g in missing_next(snapshot)
    ]


def _trust(store: Store, project: Project) -> dict[str, Any]:
    """The section "How far to trust these scores": the report's rows, from the same query."""
    found = queries.calibration(store, project, limit=TRUST_LIMIT)
    return {"title": TRUST_TITLE, "intro": trust_intro(found), "columns": TRUST_COLUMNS, "rows": trust_rows(found)}
