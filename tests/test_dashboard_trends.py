"""Trend charts on the project page for the commonest history: months of daily backfill, then a
collection every 15 minutes. The range selector (7d, 30d, 90d, all) and the axis (time, sample).

Coordinates are read from the SVG the page carries (the overall chart is 640 wide, its plot
area x 38..630).
"""

from __future__ import annotations

from itertools import pairwise

import httpx
import pytest
from defusedxml import ElementTree

from daemon.store import Store
from daemon.web import dashboard
from tests.support.api import running
from tests.support.fleet import TODAY, Fleet, build_long_history
from tests.support.html_tree import Element, parse

SVG = "{http://www.w3.org/2000/svg}"
DAYS, TODAY_POINTS = 120, 60  # a snapshot a day for 120 days, then 15 hours of 15-minute collections
PLOT = 630 - 38


@pytest.fixture(scope="module")
def long(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return build_long_history(tmp_path_factory.mktemp("long"), days=DAYS, today=TODAY_POINTS)


def render(fleet: Fleet, **options: str) -> Element:
    with Store.open(fleet.db, readonly=True) as store:
        return parse(dashboard.page(store, fleet.config, "long", **options))  # type: ignore[arg-type]


def overall_points(page: Element) -> list[tuple[float, str]]:
    """(x, tooltip) of each point of the overall chart, in order."""
    circles = page.one("figure", data_chart="overall").find_all("circle", class_="point")
    return [(float(c.attrs["cx"]), c.one("title").text()) for c in circles]


def today(points: list[tuple[float, str]]) -> list[float]:
    return [x for x, tip in points if tip.startswith(f"{TODAY:%Y-%m-%d}")]


def test_7d_on_the_time_axis_gives_today_a_readable_spread(long):
    week = overall_points(render(long, range="7d", axis="time"))
    everything = overall_points(render(long, range="all", axis="time"))
    # The range ends at the latest snapshot (14:45): the daily point of seven days ago, at 08:00, is out.
    assert len(week) == 6 + TODAY_POINTS and len(everything) == DAYS + TODAY_POINTS
    spread_week, spread_all = (max(today(p)) - min(today(p)) for p in (week, everything))
    # 15 hours of a week (and a few hours) of 592 px; over four months they were squeezed into a few px.
    assert spread_week > 45 and spread_all < 4
    steps = [b - a for a, b in pairwise(today(week))]
    assert min(steps) > 0.7  # 15 minutes apart: every point a little further right
    assert today(week)[-1] == 630  # the latest point at the right edge


def test_the_sample_axis_spaces_points_evenly(long):
    points = overall_points(render(long, range="7d", axis="sample"))
    xs = [x for x, _ in points]
    assert xs[0] == 38 and xs[-1] == 630
    steps = [b - a for a, b in pairwise(xs)]
    assert max(steps) - min(steps) < 0.02 and steps[0] == pytest.approx(PLOT / (len(xs) - 1), abs=0.01)
    # Today's 60 points take 60 of 67 places: most of the chart.
    assert max(today(points)) - min(today(points)) > 0.85 * PLOT
    # The pillar charts follow the same choice.
    pillar = render(long, range="7d", axis="sample").one("figure", data_chart="pillar:dx").find_all("circle", class_="point")
    pillar_steps = [b - a for a, b in pairwise(float(c.attrs["cx"]) for c in pillar)]
    assert len(pillar_steps) == len(steps) and max(pillar_steps) - min(pillar_steps) < 0.02


@pytest.mark.parametrize(("chosen", "days", "daily"), [("7d", 7, 6), ("30d", 30, 29), ("90d", 90, 89), ("all", None, DAYS)])
def test_a_range_goes_back_from_the_latest_snapshot(long, chosen, days, daily):
    page = render(long, range=chosen)
    assert len(overall_points(page)) == daily + TODAY_POINTS  # the daily points since 14:45 that many days ago
    span = "all snapshots" if chosen == "all" else f"the last {days} days"
    assert f"{daily + TODAY_POINTS} snapshots in {span}" in page.one("article", class_="total").text()


def test_the_default_range_is_30_days_on_the_time_axis(long):
    assert overall_points(render(long)) == overall_points(render(long, range="30d", axis="time"))


def test_tooltips_carry_the_date_and_the_figure(long):
    svg = ElementTree.fromstring(render_svg(long))
    tips = [c.findtext(f"{SVG}title") for c in svg.iter(f"{SVG}circle")]
    assert tips[-1] == f"{TODAY:%Y-%m-%d} 14:45Z: 72%"  # the 60th collection: 60 + (59 % 8) * 4


def render_svg(fleet: Fleet) -> str:
    with Store.open(fleet.db, readonly=True) as store:
        html = dashboard.page(store, fleet.config, "long", range="7d")
    start = html.index("<svg", html.index('data-chart="overall"'))
    return html[start:html.index("</svg>", start) + len("</svg>")]


def test_selector_links_are_rendered_by_the_server(long):
    nav = render(long, range="90d", axis="sample").one("nav", class_="ranges")
    ranges = {a.attrs["data-range"]: a for a in nav.find_all("a") if "data-range" in a.attrs}
    axes = {a.attrs["data-axis"]: a for a in nav.find_all("a") if "data-axis" in a.attrs}
    assert list(ranges) == ["7d", "30d", "90d", "all"] and list(axes) == ["time", "sample"]
    assert ranges["7d"].attrs["href"] == "/projects/long/dashboard?range=7d&axis=sample"  # keeps the axis
    assert axes["time"].attrs["href"] == "/projects/long/dashboard?range=90d&axis=time"  # keeps the range
    assert [k for k, a in {**ranges, **axes}.items() if "aria-current" in a.attrs] == ["90d", "sample"]


def test_a_standalone_page_has_no_selector(long):
    with Store.open(long.db, readonly=True) as store:
        page = parse(dashboard.page(store, long.config, "long", standalone=True))
    assert page.find_all("nav", class_="ranges") == []


def test_long_series_are_thinned_to_what_a_chart_can_show(long, monkeypatch):
    monkeypatch.setattr(dashboard, "CHART_POINTS", 50)  # a smaller limit than the default 600, on the same data
    page = render(long, range="all")
    drawn = overall_points(page)
    assert len(drawn) <= 50 and drawn[-1][1].startswith(f"{TODAY:%Y-%m-%d} 14:45Z")
    assert f"{DAYS + TODAY_POINTS} snapshots in all snapshots, {len(drawn)} drawn" in page.one("article", class_="total").text()


def test_range_and_axis_through_the_api(long):
    with running(long.config) as url, httpx.Client(base_url=url, timeout=10) as client:
        page = client.get("/projects/long/dashboard", params={"range": "7d", "axis": "sample"})
        assert page.status_code == 200 and len(overall_points(parse(page.text))) == 6 + TODAY_POINTS
        for bad in ({"range": "1y"}, {"axis": "log"}):
            answer = client.get("/projects/long/dashboard", params=bad)
            assert answer.status_code == 422 and next(iter(bad)) in answer.json()["error"]["message"]
