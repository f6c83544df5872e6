"""The dashboard's index: a table of 120 projects, sorted and filtered by query parameters.

The database is written through the real store (:mod:`tests.support.fleet`);
pages are read back with the stdlib HTML parser, and the query parameters go
through a real API server on 127.0.0.1.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from defusedxml import ElementTree

from daemon.store import Store
from daemon.web import overview
from tests.support.api import running
from tests.support.fleet import NOW, Fleet, build_fleet, overall_of, project_id, title_of
from tests.support.html_tree import Element, parse

SVG = "{http://www.w3.org/2000/svg}"
COUNT = 120
WITH_DATA = range(COUNT - 1)  # the last project has no snapshot


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return build_fleet(tmp_path_factory.mktemp("fleet"), COUNT)


def index(fleet: Fleet, **params: str) -> Element:
    with Store.open(fleet.db, readonly=True) as store:
        return parse(overview.index(store, fleet.config, now=NOW, **params))  # type: ignore[arg-type]


def ids(page: Element) -> list[str]:
    return [row.attrs["data-project"] for row in page.find_all("tr", class_="project")]


def svg(element: Element) -> ElementTree.Element:
    """An inline SVG read as XML again (the HTML parser keeps its tags)."""
    return ElementTree.fromstring(_markup(element.one("svg")))


def _markup(e: Element) -> str:
    attrs = "".join(f' {k}="{v}"' for k, v in e.attrs.items() if v is not None)
    inner = "".join(_markup(c) if isinstance(c, Element) else _escape(c) for c in e.children)
    return f"<{e.tag}{attrs}>{inner}</{e.tag}>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


# --- what a row shows ------------------------------------------------------------------


def test_every_project_is_a_row_sorted_by_name(fleet):
    page = index(fleet)
    assert page.one(id="shown").text() == f"{COUNT} of {COUNT} projects"
    titles = [row.one("th").one("a").text() for row in page.find_all("tr", class_="project")]
    assert titles == sorted(title_of(i) for i in range(COUNT))
    header = page.one("th", data_sort="name")
    assert header.attrs["aria-sort"] == "ascending" and "▲" in header.text()


def test_a_row_has_overall_pillar_bars_sparkline_marks_alerts_and_age(fleet):
    page = index(fleet)
    row = page.one("tr", data_project="p055")  # partial (55 % 7 != 0: no), stale (55 % 5 == 0), firing (55 % 11 == 0)
    assert row.one("th").one("a").attrs["href"] == "/projects/p055/dashboard"
    assert row.one(class_="overall").text() == f"{overall_of(55):.0f}%"
    bars = svg(row.one("td", class_="pillars"))
    tips = [g.findtext(f"{SVG}title") for g in bars.iter(f"{SVG}g")]
    assert tips == [f"Durability: {overall_of(55) - 10:.0f}%", f"Developer experience: {overall_of(55) + 10:.0f}%"]
    # A bar's fill is its figure's share of the track.
    track, fill = list(bars.iter(f"{SVG}rect"))[:2]
    assert float(fill.get("height")) == pytest.approx(float(track.get("height")) * (overall_of(55) - 10) / 100, abs=0.01)
    line = svg(row.one("td", class_="trend"))
    points = line.find(f"{SVG}polyline").get("points").split()
    assert len(points) == 5  # the five snapshots, oldest first, rising to the latest
    heights = [float(p.split(",")[1]) for p in points]
    assert heights == sorted(heights, reverse=True)
    assert [float(p.split(",")[0]) for p in points] == pytest.approx([3, 31.5, 60, 88.5, 117])  # evenly spaced
    assert "over the 5 latest snapshots" in line.findtext(f"{SVG}title")
    marks = row.one("td", class_="marks")
    assert marks.one(class_="stale").text() == "2 stale" and marks.find_all(class_="partial") == []
    alerts = row.one("td", class_="alerts").one("a")
    assert alerts.text() == "1 open" and alerts.attrs["href"] == "/projects/p055/dashboard#alerts-heading"
    assert "firing" in alerts.attrs["class"]
    age = row.one("td", class_="collected").one("time")
    assert age.text() == "55 min ago" and age.attrs["title"] == "2026-12-03 15:05 UTC"


@pytest.mark.parametrize(("i", "partial", "stale", "unknown", "alerts"), [
    (0, True, "2 stale", "1 unknown", "2 open"),  # everything at once
    (7, True, None, None, None),
    (9, False, None, "1 unknown", None),
    (13, False, None, None, "1 open"),  # pending only
    (1, False, None, None, None),
])
def test_marks(fleet, i, partial, stale, unknown, alerts):
    row = index(fleet).one("tr", data_project=project_id(i))
    marks = row.one("td", class_="marks")
    assert bool(marks.find_all(class_="partial")) is partial
    assert [m.text() for m in marks.find_all(class_="stale")] == ([stale] if stale else [])
    assert [m.text() for m in marks.find_all(class_="unknown")] == ([unknown] if unknown else [])
    assert [a.text() for a in row.one("td", class_="alerts").find_all("a")] == ([alerts] if alerts else [])


def test_a_project_without_a_snapshot(fleet):
    row = index(fleet).one("tr", data_project=project_id(COUNT - 1))
    assert row.one(class_="overall").text() == "–"
    assert "no snapshot yet" in row.one("td", class_="marks").text() and "never" in row.one("td", class_="collected").text()
    assert row.find_all("svg") == []


def test_human_ages():
    age = overview._age
    assert [age(NOW - d, NOW) for d in (timedelta(seconds=5), timedelta(minutes=12), timedelta(hours=5),
                                        timedelta(hours=47), timedelta(days=3, hours=1), -timedelta(minutes=3))] == [
        "just now", "12 min ago", "5 h ago", "47 h ago", "3 d ago", "just now"]


# --- sorting ---------------------------------------------------------------------------


def test_sort_by_overall_both_ways_with_no_snapshot_last(fleet):
    by_value = sorted(WITH_DATA, key=lambda i: (overall_of(i), title_of(i)))
    assert ids(index(fleet, sort="overall", order="asc")) == [project_id(i) for i in by_value] + [project_id(COUNT - 1)]
    descending = ids(index(fleet, sort="overall", order="desc"))
    assert [overall_of(int(p[1:])) for p in descending[:-1]] == sorted((overall_of(i) for i in WITH_DATA), reverse=True)
    assert descending[-1] == project_id(COUNT - 1)


def test_sort_by_alerts_stale_and_collected(fleet):
    alerting = ids(index(fleet, sort="alerts"))  # first order: most alerts first
    assert alerting[0] == "p000"  # the only project with two (0 is a multiple of 11 and of 13)
    counts = [int(i % 11 == 0) + int(i % 13 == 0) for i in (int(p[1:]) for p in alerting[:-1])]
    assert counts == sorted(counts, reverse=True)
    stale = ids(index(fleet, sort="stale", order="desc"))
    marks = [2 * (i % 5 == 0) + (i % 9 == 0) for i in (int(p[1:]) for p in stale[:-1])]
    assert marks == sorted(marks, reverse=True) and marks[0] == 3
    recent = ids(index(fleet, sort="collected"))  # first order: the most recent first
    assert recent[:3] == ["p000", "p001", "p002"] and recent[-1] == project_id(COUNT - 1)
    assert ids(index(fleet, sort="collected", order="asc"))[:2] == [project_id(COUNT - 2), project_id(COUNT - 3)]


def test_headers_link_to_their_sort_keeping_the_filters(fleet):
    page = index(fleet, sort="overall", order="asc", q="pay", status="stale")
    overall = page.one("th", data_sort="overall")
    assert overall.attrs["aria-sort"] == "ascending"
    assert overall.one("a").attrs["href"] == "/?q=pay&status=stale&sort=overall&order=desc"  # the same column: reversed
    alerts = page.one("th", data_sort="alerts")
    assert alerts.attrs["aria-sort"] == "none"
    assert alerts.one("a").attrs["href"] == "/?q=pay&status=stale&sort=alerts&order=desc"
    assert page.one("th", data_sort="name").one("a").attrs["href"] == "/?q=pay&status=stale&sort=name&order=asc"
    # The form says what is chosen, so that it works without a script.
    form = page.one("form", class_="filters")
    assert form.attrs["method"] == "get" and form.one("input", name="q").attrs["value"] == "pay"
    assert form.one("select", name="status").one("option", selected="").attrs["value"] == "stale"
    assert form.one("select", name="sort").one("option", selected="").attrs["value"] == "overall"


# --- filtering -------------------------------------------------------------------------


def test_q_matches_the_title_or_the_id_in_any_case(fleet):
    payments = ids(index(fleet, q="PAYments"))
    assert payments == [project_id(i) for i in sorted(range(0, COUNT, 10), key=title_of)]
    assert ids(index(fleet, q="p04")) == [project_id(i) for i in sorted(range(40, 50), key=title_of)]
    empty = index(fleet, q="nothing like it")
    assert ids(empty) == [] and "No project matches" in empty.one("main").text()
    assert empty.one(id="shown").text() == f"0 of {COUNT} projects match"


@pytest.mark.parametrize(("status", "expected"), [
    ("stale", lambda i: i % 5 == 0 or i % 9 == 0),
    ("partial", lambda i: i % 7 == 0),
    ("alerting", lambda i: i % 11 == 0 or i % 13 == 0),
])
def test_status_filters(fleet, status, expected):
    found = ids(index(fleet, status=status, sort="name"))
    assert found == [project_id(i) for i in sorted(WITH_DATA, key=title_of) if expected(i)]


def test_filters_combine(fleet):
    assert ids(index(fleet, q="payments", status="partial")) == [project_id(i) for i in sorted((0, 70), key=title_of)]


# --- a few queries, whatever the number of projects --------------------------------------


def _statements(fleet: Fleet) -> int:
    with Store.open(fleet.db, readonly=True) as store:
        run: list[str] = []
        store.db.conn.set_trace_callback(run.append)
        overview.index(store, fleet.config, now=NOW)
    return len(run)


def test_the_index_reads_as_many_statements_for_120_projects_as_for_3(fleet, tmp_path: Path):
    few = build_fleet(tmp_path, 3)
    assert _statements(fleet) == _statements(few) <= 6


# --- through the HTTP API --------------------------------------------------------------


def test_query_parameters_through_the_api(fleet):
    with running(fleet.config) as url, httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/", params={"sort": "overall", "order": "desc", "status": "alerting"})
        assert page.status_code == 200
        found = ids(parse(page.text))
        assert found and all(int(p[1:]) % 11 == 0 or int(p[1:]) % 13 == 0 for p in found)
        # What the form sends when no status is chosen: every project.
        assert len(ids(parse(client.get("/", params={"q": "", "status": "", "sort": "name"}).text))) == COUNT
        for bad in ({"sort": "colour"}, {"order": "up"}, {"status": "sad"}, {"q": "x" * 201}):
            answer = client.get("/", params=bad)
            assert answer.status_code == 422, bad
            message = answer.json()["error"]["message"]
            assert "\n" not in message and next(iter(bad)) in message
