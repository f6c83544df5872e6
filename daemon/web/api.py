"""The read-only HTTP API: ``/api/v1`` over :mod:`daemon.queries`, plus health, metrics, pages and badges.

``create_app(config)`` builds the ASGI app; ``config`` is a callable, so the
daemon's app sees a configuration reloaded on SIGHUP. Every request opens the
database read-only for its own length and closes it: readers of a WAL
database never block the daemon's writes, and a short read never holds back a
checkpoint. The routes are thin, like the CLI's commands: look up the
project, call one query function, send its JSON (the same shapes as
``--json``). The bearer token and the shape of errors are
:mod:`daemon.web.guard`'s; the OpenAPI document is :mod:`daemon.web.schema`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response

from collectors.secrets import one_line
from daemon import __version__, changes, queries
from daemon.config.model import Config
from daemon.errors import StoreError
from daemon.scoring.snapshot import Snapshot
from daemon.store import DatabaseError, Store
from daemon.web import badges, dashboard, overview
from daemon.web import metrics as metrics_page
from daemon.web.charts import Axis
from daemon.web.guard import OPEN_PATHS, api_token, guard
from daemon.web.schema import AlertsBody, ExplanationBody, Health, errors, openapi_document

__all__ = ["ConfigSource", "api_token", "create_app"]

ConfigSource = Callable[[], Config]

_MAX_ID = 2**63 - 1  # SQLite's largest integer; a larger id is a bad parameter, not a crash

router = APIRouter()


def create_app(config: ConfigSource) -> FastAPI:
    """The API as an ASGI app reading ``config()`` on every request."""
    app = FastAPI(
        title="pillarwatch",
        version=__version__,
        description="Read-only access to pillarwatch's snapshots, history, evidence and alerts.",
        # Swagger UI and ReDoc load their scripts from a CDN: blank offline, and the browser reaches out.
        # /docs points to /openapi.json instead.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.config = config
    app.include_router(router)
    guard(app, config)
    app.openapi = lambda: openapi_document(app, open_paths=OPEN_PATHS)  # type: ignore[method-assign]
    return app


# --- plumbing shared by the routes -----------------------------------------------------


def _config(request: Request) -> Config:
    source: ConfigSource = request.app.state.config
    return source()


Cfg = Annotated[Config, Depends(_config)]
ProjectId = Annotated[str, PathParam(description="A project id from the configuration.")]
SnapshotId = Annotated[int, PathParam(ge=1, le=_MAX_ID, description="A snapshot id.")]


@contextmanager
def _store(config: Config) -> Iterator[Store]:
    # Opened and closed in the worker thread that runs the route: a sqlite3
    # connection belongs to the thread that made it.
    with Store.open(config.store_path, readonly=True) as store:
        yield store


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


_MOMENT = ("an ISO 8601 date (2026-11-01 or 20261101, midnight UTC) or date-time (UTC unless it says otherwise), "
           "or a duration back from now (7d), as on the command line; anything else, a bare number included, is a 422")


def _moment(value: str | None, name: str) -> datetime | None:
    return queries.parse_moment(value, name, now=datetime.now(timezone.utc))


# --- health ----------------------------------------------------------------------------


@router.get("/healthz", response_model=Health, tags=["health"], summary="The process is up (never needs a token)")
async def healthz() -> Response:
    # On the event loop, not in the worker threads: a liveness probe must answer while slow reads fill them.
    return _json({"status": "ok", "version": __version__})


@router.get(
    "/readyz", response_model=queries.Readiness, tags=["health"],
    summary="The database is readable and the last successful collection is recent (api.ready_max_age)",
    responses={503: {"model": queries.Readiness, "description": "Not ready; `reason` says why."}},
)
def readyz(config: Cfg) -> Response:
    max_age = config.api.ready_max_age
    try:
        with _store(config) as store:
            found = queries.readiness(store, max_age=max_age, now=datetime.now(timezone.utc))
    except (StoreError, DatabaseError) as exc:
        found = queries.Readiness(ready=False, reason=one_line(str(exc)), last_success_at=None,
                                  max_age_seconds=max_age.total_seconds())
    return _json(found.model_dump(mode="json"), 200 if found.ready else 503)


# --- /api/v1 ---------------------------------------------------------------------------


@router.get("/api/v1/projects", response_model=list[queries.ProjectSummary], tags=["projects"],
            summary="Every configured project: sources, pillars, criteria and latest figures (no secrets)",
            responses=errors(503))
def list_projects(config: Cfg) -> Response:
    with _store(config) as store:
        return _json([p.model_dump(mode="json") for p in queries.projects(store, config)])


@router.get("/api/v1/projects/{project}", response_model=queries.ProjectSummary, tags=["projects"],
            summary="One project's configuration summary and latest figures", responses=errors(404, 503))
def get_project(project: ProjectId, config: Cfg) -> Response:
    chosen = config.project(project)
    with _store(config) as store:
        return _json(queries.project_summary(store, chosen).model_dump(mode="json"))


@router.get("/api/v1/projects/{project}/snapshots/latest", response_model=Snapshot, tags=["snapshots"],
            summary="The latest snapshot of a project (`pillarwatch status --json`)", responses=errors(404, 503))
def latest_snapshot(project: ProjectId, config: Cfg) -> Response:
    chosen = config.project(project)
    with _store(config) as store:
        return _json(queries.latest(store, chosen).to_json())


@router.get("/api/v1/snapshots/{snapshot_id}", response_model=Snapshot, tags=["snapshots"],
            summary="One snapshot by id", responses=errors(404, 422, 503))
def get_snapshot(snapshot_id: SnapshotId, config: Cfg) -> Response:
    with _store(config) as store:
        return _json(queries.snapshot(store, snapshot_id).to_json())


@router.get("/api/v1/projects/{project}/history", response_model=queries.History, tags=["snapshots"],
            summary="A page of a project's (or one pillar's) snapshots in a time range, oldest first",
            responses=errors(404, 422, 503))
def history(
    project: ProjectId,
    config: Cfg,
    pillar: Annotated[str | None, Query(description="Only this pillar's figures.")] = None,
    since: Annotated[str | None, Query(description=f"From this time, inclusive: {_MOMENT}.")] = None,
    until: Annotated[str | None, Query(description=f"Up to this time, inclusive: {_MOMENT}.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many snapshots: the newest page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=_MAX_ID, description="Skip this many of the newest first.")] = 0,
) -> Response:
    chosen = config.project(project)
    with _store(config) as store:
        found = queries.history(store, chosen, pillar=pillar, since=_moment(since, "since"), until=_moment(until, "until"),
                                limit=limit, offset=offset)
    return _json(found.model_dump(mode="json"))


@router.get("/api/v1/projects/{project}/criteria/{criterion:path}", response_model=ExplanationBody, tags=["snapshots"],
            summary="The checks and evidence behind one criterion of the latest snapshot (`ID` or `PILLAR/ID`)",
            responses=errors(404, 422, 503))
def explain(
    project: ProjectId,
    criterion: Annotated[str, PathParam(description="A criterion id, or PILLAR/ID when ids repeat across pillars.")],
    config: Cfg,
) -> Response:
    chosen = config.project(project)
    with _store(config) as store:
        return _json(queries.explain(queries.latest(store, chosen), criterion).to_json())


@router.get("/api/v1/projects/{project}/diff", response_model=changes.SnapshotDiff, tags=["snapshots"],
            summary="What changed from snapshot a to snapshot b (default: the one before b, and the latest)",
            responses=errors(404, 422, 503))
def diff(
    project: ProjectId,
    config: Cfg,
    a: Annotated[int | None, Query(ge=1, le=_MAX_ID, description="The earlier snapshot (default: the one before b).")] = None,
    b: Annotated[int | None, Query(ge=1, le=_MAX_ID, description="The later snapshot (default: the latest).")] = None,
) -> Response:
    chosen = config.project(project)
    with _store(config) as store:
        found = queries.diff_latest(store, chosen, a, b, blame=queries.commit_blame(config, chosen))
        return _json(found.model_dump(mode="json"))


@router.get("/api/v1/alerts", response_model=AlertsBody, tags=["alerts"],
            summary="Alerts, newest first, with the delivery state of each message (`pillarwatch alerts --json`)",
            responses=errors(404, 422, 503))
def alerts(
    config: Cfg,
    project: Annotated[str | None, Query(description="Only this project's alerts.")] = None,
    state: Annotated[Literal["pending", "firing", "resolved"] | None, Query(description="Only alerts in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    if project is not None:
        config.project(project)
    with _store(config) as store:
        return _json(queries.alerts(store, project=project, state=state, limit=limit))


# --- metrics, pages and badges (their modules render; these routes only serve) --------------


BadgeLabel = Annotated[str | None, Query(min_length=1, max_length=64,
                                         description="The text on the badge's left (default: the project's name, or the pillar's id).")]
_SVG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}}, "description": "An SVG badge."}}


@router.get("/metrics", response_class=Response, tags=["metrics"], summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."},
                       **errors(503)})
def metrics(config: Cfg) -> Response:
    with _store(config) as store:
        return Response(metrics_page.metrics_text(store, config), media_type=metrics_page.CONTENT_TYPE)


@router.get("/", response_class=HTMLResponse, tags=["pages"],
            summary="The dashboard's index: every project in a table, sorted and filtered", responses=errors(422, 503))
def index(
    config: Cfg,
    sort: Annotated[overview.Sort, Query(description="The column to sort by.")] = "name",
    order: Annotated[overview.Order | None, Query(description="asc or desc (default: the column's worst or latest first).")] = None,
    q: Annotated[str, Query(max_length=200, description="Only projects whose id or title contains this (any case).")] = "",
    # Empty is "any": what the page's form sends when no status is chosen.
    status: Annotated[Literal[overview.Status, ""] | None,
                      Query(description="Only projects with stale criteria, a partial latest snapshot, or open alerts.")] = None,
) -> Response:
    with _store(config) as store:
        return HTMLResponse(overview.index(store, config, sort=sort, order=order, q=q, status=status or None))


@router.get("/projects/{project}/dashboard", response_class=HTMLResponse, tags=["pages"],
            summary="One project's dashboard with trend charts", responses=errors(404, 422, 503))
def dashboard_page(
    project: ProjectId,
    config: Cfg,
    range: Annotated[dashboard.Range, Query(description="How far back from the latest snapshot the trend charts go.")] = dashboard.DEFAULT_RANGE,
    axis: Annotated[Axis, Query(description="time: x linear in time; sample: snapshots evenly spaced.")] = "time",
) -> Response:
    config.project(project)
    with _store(config) as store:
        return HTMLResponse(dashboard.page(store, config, project, range=range, axis=axis))


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs() -> Response:
    return HTMLResponse(dashboard.docs())


@router.get("/badge/{project}.svg", response_class=Response, tags=["badges"], summary="A project's overall % as a badge",
            responses={**_SVG, **errors(404, 503)})
def project_badge(project: ProjectId, config: Cfg, label: BadgeLabel = None) -> Response:
    config.project(project)
    with _store(config) as store:
        return _svg(badges.project_badge(store, config, project, label=label))


@router.get("/badge/{project}/{pillar}.svg", response_class=Response, tags=["badges"], summary="One pillar's % as a badge",
            responses={**_SVG, **errors(404, 503)})
def pillar_badge(project: ProjectId, pillar: Annotated[str, PathParam(description="A pillar id.")], config: Cfg,
                 label: BadgeLabel = None) -> Response:
    config.project(project)
    with _store(config) as store:
        return _svg(badges.pillar_badge(store, config, project, pillar, label=label))


def _svg(text: str) -> Response:
    # Image proxies (GitHub's camo) cache for as long as they are allowed to.
    return Response(text, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})


