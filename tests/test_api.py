"""The HTTP API served by a real uvicorn on 127.0.0.1, over a database built by real collections.

The figures come from tests/support/history.py: five collections a day apart
from 2026-11-01 08:00 UTC give four stored rows of ``shop`` (overall 20.0,
66.7 (seen again on day 2), 50.0, 98.3); day 3 deleted tests/test_restart.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from daemon.store import Store
from tests.support.api import running, with_api
from tests.support.history import DAY0, SHOP_OVERALL, History, build_history
from tests.support.html_tree import parse

LAST_DAY = DAY0 + timedelta(days=4)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return build_history(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def api(history: History) -> Iterator[httpx.Client]:
    with running(history.config) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def error(response: httpx.Response, status: int) -> str:
    """The message of an error answer, after checking its status and shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and "Traceback" not in response.text
    return body["error"]["message"]


def shop_ids(history: History) -> list[int]:
    with Store.open(history.db, readonly=True) as store:
        return [s.id for s in store.history("shop")]  # type: ignore[misc]


# --- snapshots -------------------------------------------------------------------------


def test_latest_snapshot_is_the_status_json(api, history):
    body = api.get("/api/v1/projects/shop/snapshots/latest").json()
    with Store.open(history.db, readonly=True) as store:
        assert body == store.latest("shop").to_json()  # the same object `pillarwatch status --json` prints
    assert body["overall"] == pytest.approx(SHOP_OVERALL[-1])
    assert body["taken_at"] == "2026-11-05T08:00:00Z" and body["complete"] is True
    pillars = {p["id"]: p for p in body["pillars"]}
    assert pillars["durability"]["score"] == pytest.approx(290 / 3) and pillars["dx"]["score"] == pytest.approx(100)
    assert [c["id"] for c in pillars["durability"]["criteria"]] == ["restart", "retry", "replay"]
    billing = api.get("/api/v1/projects/billing/snapshots/latest").json()
    assert billing["overall"] == pytest.approx(100.0)


def test_one_snapshot_by_id(api, history):
    first = shop_ids(history)[0]
    body = api.get(f"/api/v1/snapshots/{first}").json()
    assert body["id"] == first and body["overall"] == pytest.approx(20.0) and body["taken_at"] == "2026-11-01T08:00:00Z"
    assert "no snapshot 999999" in error(api.get("/api/v1/snapshots/999999"), 404)
    error(api.get("/api/v1/snapshots/0"), 422)
    error(api.get("/api/v1/snapshots/abc"), 422)
    error(api.get(f"/api/v1/snapshots/{2**70}"), 422)


# --- history ---------------------------------------------------------------------------


def overalls(body: dict) -> list[float]:
    return [p["overall"] for p in body["points"]]


def test_history_pages_from_the_newest_and_keeps_full_precision(api):
    full = api.get("/api/v1/projects/shop/history").json()
    assert full["total"] == 4 and full["limit"] == 100 and full["offset"] == 0
    assert overalls(full) == pytest.approx(SHOP_OVERALL)
    # Day 2 was a cheap repeat of day 1.
    assert full["points"][1]["taken_at"] == "2026-11-02T08:00:00Z" and full["points"][1]["last_seen_at"] == "2026-11-03T08:00:00Z"
    assert set(full["pillar_titles"]) == {"durability", "dx"}

    newest = api.get("/api/v1/projects/shop/history", params={"limit": 2}).json()
    assert newest["total"] == 4 and overalls(newest) == pytest.approx(SHOP_OVERALL[2:])
    older = api.get("/api/v1/projects/shop/history", params={"limit": 2, "offset": 2}).json()
    assert overalls(older) == pytest.approx(SHOP_OVERALL[:2])
    beyond = api.get("/api/v1/projects/shop/history", params={"offset": 10}).json()
    assert beyond["points"] == [] and beyond["total"] == 4


def test_history_of_a_pillar_in_a_time_range(api):
    dx = api.get("/api/v1/projects/shop/history", params={"pillar": "dx"}).json()
    assert dx["pillar"] == "dx" and dx["pillar_titles"] == {"dx": "Developer experience"}
    assert [p["pillars"] for p in dx["points"]] == [{"dx": 0.0}, {"dx": 50.0}, {"dx": 50.0}, {"dx": 100.0}]

    window = api.get("/api/v1/projects/shop/history", params={"since": "2026-11-02T08:00:00Z", "until": "2026-11-04T08:00:00Z"}).json()
    assert window["total"] == 2 and overalls(window) == pytest.approx([200 / 3, 50.0])
    # A date alone is midnight UTC; a time without a zone is UTC.
    from_date = api.get("/api/v1/projects/shop/history", params={"since": "2026-11-04"}).json()
    assert [p["taken_at"] for p in from_date["points"]] == ["2026-11-04T08:00:00Z", "2026-11-05T08:00:00Z"]
    naive = api.get("/api/v1/projects/shop/history", params={"until": "2026-11-01T08:00:00"}).json()
    assert overalls(naive) == pytest.approx([20.0])
    offset = api.get("/api/v1/projects/shop/history", params={"since": "2026-11-05T09:00:00+01:00"}).json()
    assert overalls(offset) == pytest.approx([SHOP_OVERALL[-1]])


def test_history_rejects_bad_parameters(api):
    url = "/api/v1/projects/shop/history"
    assert "limit" in error(api.get(url, params={"limit": 0}), 422)
    error(api.get(url, params={"limit": 1001}), 422)
    error(api.get(url, params={"offset": -1}), 422)
    assert "since" in error(api.get(url, params={"since": "last tuesday"}), 422)
    assert "is after until" in error(api.get(url, params={"since": "2026-11-04", "until": "2026-11-02"}), 422)
    assert "out of range" in error(api.get(url, params={"since": "9999-12-31T23:59:59-23:59"}), 422)
    assert "no pillar 'nope'" in error(api.get(url, params={"pillar": "nope"}), 404)


# --- explain and diff ------------------------------------------------------------------


def test_explain_names_the_commit_behind_a_score(api, history):
    for path in ("restart", "durability/restart"):
        body = api.get(f"/api/v1/projects/shop/criteria/{path}").json()
        assert body["project"] == "shop" and body["pillar"] == "durability" and body["id"] == "restart"
        assert body["score"] == 1.0 and body["status"] == "ok"
        assert body["checks"][0]["signal"] == "file_exists" and body["checks"][0]["value"] is True
        provenance = body["evidence"][0]["provenance"]
        assert provenance["commit"] == history.shas[4] and provenance["path"] == "tests/test_restart.py"
    replay = api.get("/api/v1/projects/shop/criteria/replay").json()
    assert replay["score"] == pytest.approx(0.9)
    assert replay["evidence"][0]["provenance"] | {} == {"commit": history.shas[4], "path": "docs/STATUS.md", "line": 1, "url": None}


def test_explain_unknown_criterion_or_pillar_is_404(api):
    assert "no criterion 'nope'" in error(api.get("/api/v1/projects/shop/criteria/nope"), 404)
    error(api.get("/api/v1/projects/shop/criteria/dx/restart"), 404)
    error(api.get("/api/v1/projects/shop/criteria/nope/restart"), 404)
    error(api.get("/api/v1/projects/shop/criteria/"), 404)


def test_diff_defaults_to_the_last_two(api, history):
    ids = shop_ids(history)
    body = api.get("/api/v1/projects/shop/diff").json()
    assert (body["a"], body["b"]) == (ids[2], ids[3])
    assert body["overall"]["before"] == pytest.approx(50.0) and body["overall"]["after"] == pytest.approx(SHOP_OVERALL[-1])
    assert {m["id"] for m in body["pillars"]} == {"durability", "dx"}
    assert "tests/test_restart.py added in " + history.shas[4][:7] in [e["description"] for e in body["evidence"]]


def test_diff_of_two_snapshots_names_the_deleted_file_and_the_commit(api, history):
    ids = shop_ids(history)
    body = api.get("/api/v1/projects/shop/diff", params={"a": ids[1], "b": ids[2]}).json()
    durability = next(m for m in body["pillars"] if m["id"] == "durability")
    assert durability["before"] == pytest.approx(250 / 3) and durability["after"] == pytest.approx(50.0)
    restart = next(c for c in body["criteria"] if c["criterion"] == "restart")
    assert (restart["before"], restart["after"]) == (1.0, 0.0)
    deleted = next(e for e in body["evidence"] if e["path"] == "tests/test_restart.py")
    assert deleted["description"] == f"tests/test_restart.py deleted in {history.shas[3][:7]}"
    assert deleted["commit"] == history.shas[3]


def test_diff_errors(api, history):
    with Store.open(history.db, readonly=True) as store:
        billing = store.latest("billing").id  # type: ignore[union-attr]
    assert "not of project 'shop'" in error(api.get("/api/v1/projects/shop/diff", params={"b": billing}), 404)
    error(api.get("/api/v1/projects/shop/diff", params={"a": billing}), 404)
    error(api.get("/api/v1/projects/shop/diff", params={"a": 999999}), 404)
    error(api.get("/api/v1/projects/shop/diff", params={"a": 0}), 422)
    first = shop_ids(history)[0]
    assert "nothing to compare with" in error(api.get("/api/v1/projects/shop/diff", params={"b": first}), 404)


# --- alerts and projects ---------------------------------------------------------------


def test_alerts_with_their_deliveries(api):
    body = api.get("/api/v1/alerts").json()
    alerts = body["alerts"]
    assert [(a["subject"], a["kind"], a["state"]) for a in alerts] == [
        ("overall", "regression", "resolved"), ("pillar:durability", "floor", "resolved"),
        ("pillar:durability", "regression", "resolved"), ("pillar:durability", "floor", "resolved"),
    ]
    regression = alerts[2]
    assert regression["baseline"] == pytest.approx(250 / 3) and regression["started_at"] == "2026-11-04T08:00:00Z"
    assert any(e["description"].startswith("tests/test_restart.py deleted in") for e in regression["evidence"])
    assert {d["channel"] for d in regression["deliveries"]} == {"log"} and regression["deliveries"][0]["event"] in ("firing", "resolved")
    assert body["outbox"] == {"pending": 8}
    assert len(api.get("/api/v1/alerts", params={"limit": 1}).json()["alerts"]) == 1
    assert api.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"] == []
    assert api.get("/api/v1/alerts", params={"project": "billing"}).json()["alerts"] == []
    assert len(api.get("/api/v1/alerts", params={"project": "shop", "state": "resolved"}).json()["alerts"]) == 4
    error(api.get("/api/v1/alerts", params={"state": "open"}), 422)
    error(api.get("/api/v1/alerts", params={"limit": 0}), 422)
    error(api.get("/api/v1/alerts", params={"project": "nope"}), 404)


def test_projects_summary_without_paths_or_tokens(history, monkeypatch):
    monkeypatch.setenv("PW_API_TOKEN", "tok-projects-1234")
    config = with_api(history.config, token_env="PW_API_TOKEN")
    with running(config) as url:
        response = httpx.get(url + "/api/v1/projects", headers={"Authorization": "Bearer tok-projects-1234"})
        one = httpx.get(url + "/api/v1/projects/shop", headers={"Authorization": "Bearer tok-projects-1234"}).json()
    body = response.json()
    assert [p["id"] for p in body] == ["shop", "billing"]
    shop = body[0]
    assert one == shop
    assert shop["title"] == "Shop service" and shop["overall"] == pytest.approx(SHOP_OVERALL[-1])
    assert shop["latest_snapshot"] == shop_ids(history)[-1] and shop["taken_at"] == "2026-11-05T08:00:00Z"
    assert shop["sources"] == [{"id": "repo", "kind": "git", "schedule": shop["sources"][0]["schedule"]},
                               {"id": "status", "kind": "doc", "schedule": shop["sources"][1]["schedule"]}]
    assert [c["id"] for c in shop["pillars"][0]["criteria"]] == ["restart", "retry", "replay"]
    assert str(history.repo.path) not in response.text and "tok-projects-1234" not in response.text
    assert "PW_API_TOKEN" not in response.text and "history.db" not in response.text


def test_unknown_project_is_404_everywhere(api):
    for path in ("/api/v1/projects/nope", "/api/v1/projects/nope/snapshots/latest", "/api/v1/projects/nope/history",
                 "/api/v1/projects/nope/criteria/restart", "/api/v1/projects/nope/diff", "/projects/nope/dashboard",
                 "/badge/nope.svg", "/badge/nope/durability.svg"):
        assert "no project 'nope'" in error(api.get(path), 404), path
    error(api.get("/badge/shop/nope.svg"), 404)
    assert error(api.get("/no/such/route"), 404)
    response = api.post("/api/v1/projects")
    error(response, 405)
    assert response.headers["allow"] == "GET, HEAD"


# --- health, metrics, pages, badges -----------------------------------------------------


def test_healthz_and_readyz_follow_the_last_successful_collection(history):
    with running(history.config) as url:
        assert httpx.get(url + "/healthz").json()["status"] == "ok"
        stale = httpx.get(url + "/readyz")  # the default ready_max_age is 1h; the fixture collected in November 2026
    assert stale.status_code == 503 if datetime.now(timezone.utc) > LAST_DAY + timedelta(hours=1) else 200
    if stale.status_code == 503:
        assert stale.json()["ready"] is False and "2026-11-05T08:00:00Z" in stale.json()["reason"]
    # Old enough to include the fixture's last collection: ready.
    age = datetime.now(timezone.utc) - LAST_DAY + timedelta(days=1)
    with running(with_api(history.config, ready_max_age=age.total_seconds())) as url:
        ready = httpx.get(url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "reason": None, "last_success_at": "2026-11-05T08:00:00Z",
                            "max_age_seconds": pytest.approx(age.total_seconds())}


def test_readyz_and_routes_without_a_database_are_503(history, tmp_path):
    config = history.config.model_copy(update={"store": str(tmp_path / "none.db")})
    with running(config) as url:
        ready = httpx.get(url + "/readyz")
        projects = httpx.get(url + "/api/v1/projects")
        assert httpx.get(url + "/healthz").status_code == 200
    assert ready.status_code == 503 and "no database yet" in ready.json()["reason"]
    assert "no database yet" in error(projects, 503)
    assert not (tmp_path / "none.db").exists()  # read-only: nothing created


def test_metrics_pages_and_badges_are_served(api):
    metrics = api.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert 'pillarwatch_overall_score_percent{project="shop"} 98.33' in metrics.text
    index = api.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html") and "Shop service" in index.text
    page = api.get("/projects/shop/dashboard")
    assert page.status_code == 200 and "Durability" in page.text
    badge = api.get("/badge/shop.svg")
    assert badge.headers["content-type"].startswith("image/svg+xml") and badge.text.startswith("<svg") and "98" in badge.text
    assert badge.headers["cache-control"] == "no-cache"
    assert "durability" in api.get("/badge/shop/durability.svg").text
    assert ">Shop service<" in badge.text and ">coverage<" in api.get("/badge/shop.svg", params={"label": "coverage"}).text
    assert api.get("/badge/shop.svg", params={"label": "x" * 65}).status_code == 422


# --- the bearer token ------------------------------------------------------------------

SAMPLE_PATHS = ["/readyz", "/api/v1/projects", "/api/v1/projects/shop", "/api/v1/projects/shop/snapshots/latest",
                "/api/v1/projects/shop/history", "/api/v1/projects/shop/criteria/restart", "/api/v1/projects/shop/diff",
                "/api/v1/alerts", "/metrics", "/", "/projects/shop/dashboard", "/badge/shop.svg",
                "/badge/shop/dx.svg", "/openapi.json", "/docs", "/no/such/route"]


def check_token(url: str, token: str, history: History) -> None:
    first = shop_ids(history)[0]
    paths = SAMPLE_PATHS + [f"/api/v1/snapshots/{first}"]
    assert httpx.get(url + "/healthz").status_code == 200
    for path in paths:
        missing = httpx.get(url + path)
        assert "bearer token is required" in error(missing, 401), path
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(url + path, headers={"Authorization": f"Bearer {token}x"})
        assert "wrong" in error(wrong, 401) and wrong.headers["www-authenticate"] == "Bearer"
        error(httpx.get(url + path, headers={"Authorization": f"Basic {token}"}), 401)
        right = httpx.get(url + path, headers={"Authorization": f"Bearer {token}"})
        expected = 404 if path == "/no/such/route" else 503 if path == "/readyz" and right.status_code == 503 else 200
        assert right.status_code == expected, (path, right.text)


def test_token_from_the_environment(history, monkeypatch, caplog):
    monkeypatch.setenv("PW_API_TOKEN", "s3cret-env-token")
    caplog.set_level(logging.DEBUG)
    with running(with_api(history.config, token_env="PW_API_TOKEN")) as url:
        check_token(url, "s3cret-env-token", history)
    assert "s3cret-env-token" not in caplog.text


def test_token_from_a_file(history, tmp_path, caplog):
    token_file = tmp_path / "api-token"
    token_file.write_text("file-token-0042\n")
    caplog.set_level(logging.DEBUG)
    with running(with_api(history.config, token_file=str(token_file))) as url:
        check_token(url, "file-token-0042", history)
        token_file.write_text("rotated-token\n")  # read per request: a rotated token works at once
        assert httpx.get(url + "/api/v1/alerts", headers={"Authorization": "Bearer rotated-token"}).status_code == 200
        token_file.unlink()  # unreadable: every request is refused, none is let through
        assert "cannot be read" in error(httpx.get(url + "/api/v1/alerts", headers={"Authorization": "Bearer rotated-token"}), 503)
    assert "file-token-0042" not in caplog.text and "rotated-token" not in caplog.text


def test_token_file_relative_to_the_config_and_unreadable_token_stops_the_start(tmp_path, history, monkeypatch):
    from daemon.config.loading import load_config
    from daemon.errors import ConfigError
    from daemon.web.server import ApiServer

    text = history.config_path.read_text()
    config_path = tmp_path / "pw.yaml"
    config_path.write_text("api: {token_file: secrets/token}\n" + text.replace("store: history.db", f"store: {history.db}"))
    config = load_config(config_path)
    assert config.api.token_file == str(tmp_path / "secrets" / "token")
    with pytest.raises(ConfigError, match="api.token_file: .*secrets/token: cannot read"):
        ApiServer(lambda: config, host="127.0.0.1", port=0)
    monkeypatch.delenv("PW_UNSET_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="environment variable PW_UNSET_TOKEN is not set"):
        ApiServer(lambda: with_api(config, token_env="PW_UNSET_TOKEN"), host="127.0.0.1", port=0)


# --- the OpenAPI document ---------------------------------------------------------------


def test_openapi_document_lists_every_route_with_its_errors(api):
    doc = api.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    expected = {
        "/healthz", "/readyz", "/metrics", "/", "/projects/{project}/dashboard", "/badge/{project}.svg",
        "/badge/{project}/{pillar}.svg", "/api/v1/projects", "/api/v1/projects/{project}",
        "/api/v1/projects/{project}/snapshots/latest", "/api/v1/snapshots/{snapshot_id}",
        "/api/v1/projects/{project}/history", "/api/v1/projects/{project}/criteria/{criterion}",
        "/api/v1/projects/{project}/diff", "/api/v1/alerts",
    }
    assert set(doc["paths"]) == expected
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, operations in doc["paths"].items():
        operation = operations["get"]
        assert operation["responses"]["500"]["content"]["application/json"]["schema"] == error_ref
        if path == "/healthz":
            assert "security" not in operation and "401" not in operation["responses"]
        else:
            assert operation["security"] == [{"bearer": []}, {}]
            assert operation["responses"]["401"]["content"]["application/json"]["schema"] == error_ref
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and path != "/readyz":
                assert response["content"]["application/json"]["schema"] == error_ref, (path, status)
    history = doc["paths"]["/api/v1/projects/{project}/history"]["get"]
    assert {p["name"] for p in history["parameters"]} == {"project", "pillar", "since", "until", "limit", "offset"}
    assert history["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/History"}
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in doc["components"]["schemas"]


# --- HEAD, pages, security headers and the Host header (issue 12, section 5) ----------------


def concrete_paths(doc: dict, history: History) -> list[str]:
    """Every GET route of the OpenAPI document with real parameters filled in."""
    values = {"project": "shop", "pillar": "dx", "criterion": "restart", "snapshot_id": str(shop_ids(history)[0])}
    paths = []
    for path, operations in doc["paths"].items():
        assert "get" in operations, path
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        paths.append(path)
    return paths


def test_head_answers_like_get_on_every_get_route(api, history):
    paths = concrete_paths(api.get("/openapi.json").json(), history)
    assert "/healthz" in paths and "/projects/shop/dashboard" in paths
    for path in [*paths, "/openapi.json", "/docs", "/api/v1/projects/nope", "/no/such/route",
                 "/api/v1/projects/shop/history?since=not-a-date"]:
        got, head = api.get(path), api.head(path)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert head.content == b"", path
        # /metrics reports ages from the clock: its length may differ by a digit between two scrapes.
        moving = {"date", "content-length"} if path == "/metrics" else {"date"}
        assert {k: v for k, v in head.headers.items() if k not in moving} == \
            {k: v for k, v in got.headers.items() if k not in moving}, path
    # Another method is still refused, and the refusal names both methods that work.
    refused = api.post("/healthz")
    error(refused, 405)
    assert refused.headers["allow"] == "GET, HEAD"


def test_head_behind_a_token_is_refused_without_a_body(history, monkeypatch):
    monkeypatch.setenv("PW_API_TOKEN", "tok-head-5678")
    with running(with_api(history.config, token_env="PW_API_TOKEN")) as url:
        assert httpx.head(url + "/healthz").status_code == 200
        refused = httpx.head(url + "/api/v1/projects")
        allowed = httpx.head(url + "/api/v1/projects", headers={"Authorization": "Bearer tok-head-5678"})
    assert refused.status_code == 401 and refused.content == b"" and refused.headers["www-authenticate"] == "Bearer"
    assert allowed.status_code == 200 and allowed.content == b"" and int(allowed.headers["content-length"]) > 0


def external_references(html: str) -> list[str]:
    """What in a page would make a browser reach another host: anything loaded, a form, a base URL."""

    found = []
    for element in parse(html).iter():
        for name, value in element.attrs.items():
            if element.tag == "a" and name == "href":
                continue  # a link is followed by a person, not loaded with the page
            if name in ("src", "href", "srcset", "action", "data", "poster", "xlink:href") and \
                    value.strip().lower().startswith(("http:", "https:", "//", "ftp:")):
                found.append(f"<{element.tag} {name}={value}>")
        if element.tag in ("script", "style") and ("http:" in element.text() or "https:" in element.text()):
            found.append(f"<{element.tag}> with a URL")
    return found


def test_no_page_served_by_the_api_references_an_external_host(api, history):
    paths = concrete_paths(api.get("/openapi.json").json(), history)
    pages = 0
    for path in [*paths, "/docs", "/redoc", "/docs/oauth2-redirect"]:
        response = api.get(path)
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        pages += 1
        assert external_references(response.text) == [], path
        assert "cdn" not in response.text.lower(), path
        policy = response.headers["content-security-policy"]
        assert "http" not in policy and "*" not in policy, (path, policy)
    assert pages >= 3  # the index, a project's page and /docs
    docs = api.get("/docs")
    assert docs.status_code == 200 and '<a href="/openapi.json">' in docs.text and "swagger" not in docs.text.lower()
    assert api.get("/redoc").status_code == 404


def test_since_and_until_are_iso_8601_dates_or_times_and_nothing_else(api):
    url = "/api/v1/projects/shop/history"
    # The basic ISO 8601 form is a date, as on the command line: not Unix seconds.
    basic = api.get(url, params={"since": "20261104"}).json()
    assert [p["taken_at"] for p in basic["points"]] == ["2026-11-04T08:00:00Z", "2026-11-05T08:00:00Z"]
    assert api.get(url, params={"until": "20261101T0800Z"}).json()["total"] == 1
    for bad in ("1762243200", "1762243200.5", "0", "-1", "2026-13-01", "yesterday", "2026-11-04T25:00"):
        for name in ("since", "until"):
            assert name in error(api.get(url, params={name: bad}), 422), (name, bad)
    # A duration back from now means the same as on the command line.
    assert api.get(url, params={"since": "36500d"}).json()["total"] == 4
    assert api.get(url, params={"since": "1d"}).json()["total"] == (4 if datetime.now(timezone.utc) < LAST_DAY else 0)


def test_alerts_of_one_project_count_only_its_outbox(api):
    assert api.get("/api/v1/alerts", params={"project": "billing"}).json()["outbox"] == {}
    assert api.get("/api/v1/alerts", params={"project": "shop"}).json()["outbox"] == {"pending": 8}
    assert api.get("/api/v1/alerts").json()["outbox"] == {"pending": 8}


def test_diff_of_an_equal_or_reversed_pair_is_422(api, history):
    ids = shop_ids(history)
    url = "/api/v1/projects/shop/diff"
    assert "the same snapshot" in error(api.get(url, params={"a": ids[2], "b": ids[2]}), 422)
    assert "is later than" in error(api.get(url, params={"a": ids[3], "b": ids[1]}), 422)
    assert "the same snapshot" in error(api.get(url, params={"a": ids[3]}), 422)  # b defaults to the latest: ids[3]
    assert api.get(url, params={"a": ids[1], "b": ids[3]}).status_code == 200


SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def check_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'"
    assert "script-src" not in policy  # no script may run: default-src 'none' covers it
    assert "unsafe" not in policy.get("style-src", "") and "http" not in " ".join(policy.values())


def test_every_answer_carries_the_security_headers_and_the_page_style_is_allowed(api):
    import base64
    import hashlib
    import re

    for path in ("/", "/projects/shop/dashboard", "/docs", "/healthz", "/api/v1/projects", "/badge/shop.svg",
                 "/metrics", "/no/such/route"):
        check_security_headers(api.get(path))
    page = api.get("/projects/shop/dashboard")
    (style,) = re.findall(r"<style>(.*?)</style>", page.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.headers["content-security-policy"]  # the stylesheet still applies
    assert page.headers["content-security-policy"].startswith(
        parse_meta_policy(page.text))  # the page's own <meta> policy says the same, less what only a header can say


def parse_meta_policy(html: str) -> str:
    return parse(html).one("meta", http_equiv="Content-Security-Policy").attrs["content"]


def test_loopback_without_a_token_refuses_a_foreign_host_header(history, monkeypatch):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the open API."""
    with running(history.config) as url:
        port = url.rsplit(":", 1)[1]
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            assert httpx.get(url + "/api/v1/projects", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{int(port) + 1}",
                     f"localhost.evil.example:{port}", ""):
            refused = httpx.get(url + "/api/v1/projects", headers={"Host": host})
            assert "Host header" in error(refused, 421), host
            check_security_headers(refused)
        assert httpx.head(url + "/healthz", headers={"Host": "evil.example"}).status_code == 421
    # The configured host name is accepted (a name in /etc/hosts for the loopback address, say).
    with running(with_api(history.config, host="pw.internal")) as url:
        port = url.rsplit(":", 1)[1]
        assert httpx.get(url + "/healthz", headers={"Host": f"pw.internal:{port}"}).status_code == 200
        assert httpx.get(url + "/healthz", headers={"Host": f"evil.example:{port}"}).status_code == 421
    # With a token, the token is the protection: a proxy may send any Host.
    monkeypatch.setenv("PW_API_TOKEN", "tok-host-0001")
    with running(with_api(history.config, token_env="PW_API_TOKEN")) as url:
        answer = httpx.get(url + "/api/v1/projects", headers={"Host": "pillarwatch.example.com",
                                                              "Authorization": "Bearer tok-host-0001"})
        assert answer.status_code == 200


def test_the_asgi_app_checks_the_host_and_sends_the_headers(history):
    import asyncio

    from daemon.web.api import create_app

    app = create_app(lambda: history.config)

    async def ask(base: str, host: str | None, method: str = "GET") -> httpx.Response:
        headers = {"Host": host} if host is not None else {}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as client:
            return await client.request(method, "/api/v1/projects", headers=headers)

    async def scenario() -> None:
        ok = await ask("http://127.0.0.1:8477", None)
        assert ok.status_code == 200
        check_security_headers(ok)
        assert (await ask("http://[::1]:8477", "[::1]:8477")).status_code == 200
        assert (await ask("http://127.0.0.1:8477", "attacker.example:8477")).status_code == 421
        assert (await ask("http://[::1]:8477", "attacker.example:8477")).status_code == 421
        head = await ask("http://127.0.0.1:8477", None, "HEAD")
        assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == ok.headers["content-length"]
        # Not bound to a loopback address (0.0.0.0 reached as 10.1.2.3, say): the operator chose to expose it.
        assert (await ask("http://10.1.2.3:8477", "dashboard.example.com")).status_code == 200

    asyncio.run(scenario())
