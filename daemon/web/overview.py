"""The dashboard's index: a table of every project, sorted and filtered on the server.

One row per configured project: its overall figure, a small bar per pillar, a
sparkline of its latest snapshots, partial and stale marks, its open alerts and
when it was last collected. The figures come from
:meth:`~daemon.store.overview.OverviewQueries.overview`: a few queries for all
projects, never a few per project. Sorting and filtering are query parameters
(``?sort=overall&order=asc&q=shop&status=stale``); the column headers and the
filter form are plain links and a GET form, so the page needs no script.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote, urlencode

from markupsafe import Markup

from daemon.config.model import Config
from daemon.scoring.arithmetic import display
from daemon.store import LatestState, Store
from daemon.web.minicharts import pillar_bars, sparkline
from daemon.web.templating import render, when

__all__ = ["ORDERS", "SORTS", "SPARKLINE_POINTS", "STATUSES", "Order", "Sort", "Status", "index"]

Sort = Literal["name", "overall", "stale", "alerts", "collected"]
Order = Literal["asc", "desc"]
Status = Literal["stale", "partial", "alerting"]
SORTS: tuple[Sort, ...] = ("name", "overall", "stale", "alerts", "collected")
ORDERS: tuple[Order, ...] = ("asc", "desc")
STATUSES: tuple[Status, ...] = ("stale", "partial", "alerting")
# The order a column takes when its header is first clicked: the worst or the most recent first.
_FIRST_ORDER: dict[str, Order] = {"name": "asc", "overall": "asc", "stale": "desc", "alerts": "desc", "collected": "desc"}
_HEADERS = (("name", "Project"), ("overall", "Overall"), ("stale", "Marks"), ("alerts", "Open alerts"),
            ("collected", "Last collected"))
SPARKLINE_POINTS = 30  # the sparkline's snapshots: the latest of each project


@dataclass
class ProjectRow:
    id: str
    title: str
    url: str
    overall: str
    bars: Markup | None
    sparkline: Markup | None
    partial: bool
    stale: int
    unknown: int
    firing: int
    pending: int
    alerts_url: str
    collected: str | None  # "3 h ago"
    collected_at: str | None  # the exact time, in the cell's title
    state: LatestState | None

    @property
    def alerts(self) -> int:
        return self.firing + self.pending


def index(store: Store, config: Config, *, sort: Sort = "name", order: Order | None = None, q: str = "",
          status: Status | None = None, now: datetime | None = None) -> str:
    """The index page; ``order`` defaults to the column's first order (worst or most recent first)."""
    now = now or datetime.now(timezone.utc)
    order = order or _FIRST_ORDER[sort]
    decimals = config.display.decimals
    states = store.overview([p.id for p in config.projects], recent=SPARKLINE_POINTS)
    rows = [_row(p.id, p.title or p.id, states.get(p.id), decimals, now) for p in config.projects]
    shown = _sorted([r for r in rows if _matches(r, q, status)], sort, order)
    chosen = {"q": q, "status": status or "", "sort": sort, "order": order}
    return render(
        "index.html", title="pillarwatch", projects=shown, total=len(rows), chosen=chosen,
        headers=[_header(key, label, chosen) for key, label in _HEADERS],
        statuses=[("", "any")] + [(s, s) for s in STATUSES],
        sorts=[(s, label) for s, label in zip(SORTS, ("name", "overall", "stale criteria", "open alerts", "last collected"))],
        filtered=bool(q or status),
    )


def _row(project: str, title: str, state: LatestState | None, decimals: int, now: datetime) -> ProjectRow:
    page = f"/projects/{quote(project, safe='')}/dashboard"
    return ProjectRow(
        id=project, title=title, url=page,
        overall=display(state.overall if state else None, decimals, suffix="%"),
        # pillar_bars and sparkline escape every text they write: their markup is safe as it is.
        bars=Markup(pillar_bars([(t, s) for _, t, s in state.pillars], decimals=decimals)) if state and state.pillars else None,
        sparkline=Markup(sparkline(state.recent, title=f"{title}: overall", decimals=decimals)) if state else None,
        partial=bool(state and not state.complete),
        stale=state.stale if state else 0, unknown=state.unknown if state else 0,
        firing=state.firing if state else 0, pending=state.pending if state else 0,
        alerts_url=page + "#alerts-heading",
        collected=_age(state.seen_at, now) if state else None,
        collected_at=when(state.seen_at) if state else None,
        state=state,
    )


def _matches(row: ProjectRow, q: str, status: Status | None) -> bool:
    if q and q.casefold() not in row.id.casefold() and q.casefold() not in row.title.casefold():
        return False
    if status == "stale":
        return row.stale + row.unknown > 0
    if status == "partial":
        return row.partial
    if status == "alerting":
        return row.alerts > 0
    return True


def _sorted(rows: list[ProjectRow], sort: Sort, order: Order) -> list[ProjectRow]:
    """Sorted by the column, ties by title; a project without a snapshot is last either way."""
    def key(row: ProjectRow) -> Any:
        s = row.state
        if sort == "overall":
            return s.overall if s and s.overall is not None else None
        if sort == "stale":
            return row.stale + row.unknown if s else None
        if sort == "alerts":
            return row.alerts if s else None
        if sort == "collected":
            return s.seen_at if s else None
        return row.title.casefold()

    by_title = sorted(rows, key=lambda r: (r.title.casefold(), r.id))
    known = [r for r in by_title if key(r) is not None]
    missing = [r for r in by_title if key(r) is None]
    return sorted(known, key=key, reverse=order == "desc") + missing


def _header(key: str, label: str, chosen: dict[str, str]) -> dict[str, str]:
    """A column header: a link that sorts by it, or reverses the order when it already does."""
    current = chosen["sort"] == key
    order = ("desc" if chosen["order"] == "asc" else "asc") if current else _FIRST_ORDER[key]
    return {
        "key": key, "label": label, "url": link(chosen, sort=key, order=order),
        "aria_sort": ("ascending" if chosen["order"] == "asc" else "descending") if current else "none",
        "arrow": ("▲" if chosen["order"] == "asc" else "▼") if current else "",
    }


def link(chosen: dict[str, str], **change: str) -> str:
    """The index's URL with ``chosen`` parameters, ``change`` applied, and nothing empty."""
    params = {k: v for k, v in {**chosen, **change}.items() if v}
    return "/?" + urlencode(params) if params else "/"


def _age(moment: datetime, now: datetime) -> str:
    """How long ago, as a person says it: "just now", "12 min ago", "5 h ago", "3 d ago"."""
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"
