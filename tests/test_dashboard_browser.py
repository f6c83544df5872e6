"""The dashboard in a real browser: headless Chromium driven by Playwright.

The project page is written by ``pillarwatch report --format html`` (the real
CLI) and served by a stdlib HTTP server on 127.0.0.1; the index of 120
projects and a project page with months of history are served by the real
API on 127.0.0.1. Full-page screenshots at laptop and phone sizes are kept
under pytest's temporary folder (``screenshots/``), or in
``$PILLARWATCH_ARTIFACTS`` when it is set, for a person to look at.

Chromium comes from the system (Debian's ``chromium`` package), never from a
Playwright download; the test is skipped only when it is not installed.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import sync_playwright

from daemon.run.runner import run_projects
from daemon.store import Store
from tests.support.api import running
from tests.support.fleet import build_fleet, build_long_history
from tests.support.history import DAY0, build_history
from tests.support.paths import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
SIZES = {"laptop": (1280, 800), "phone": (375, 812)}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("PILLARWATCH_ARTIFACTS") or tmp_path_factory.getbasetemp() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a dashboard file with history, a firing alert and evidence, served over HTTP."""
    tmp = tmp_path_factory.mktemp("browser")
    history = build_history(tmp)
    history.repo.remove("tests/test_retry.py")  # a regression, so that an alert is open
    when = DAY0 + timedelta(days=5)
    history.repo.commit("day 5", when=when - timedelta(hours=1))
    with Store.open(history.db) as store:
        run_projects(history.config, [history.config.project("shop")], store=store, now=when)
    site = tmp / "site"
    site.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "report", "--format", "html", "--config", str(history.config_path),
         "--project", "shop", "-o", str(site / "dashboard.html")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/dashboard.html"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_renders_in_chromium(served: str, size: str, artifacts: Path) -> None:
    width, height = SIZES[size]
    errors: list[str] = []
    foreign: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            # Everything must come from the one file: any other host is an external asset.
            page.on("request", lambda r: foreign.append(r.url) if urlsplit(r.url).hostname != "127.0.0.1" else None)
            response = page.goto(served, wait_until="load")
            assert response is not None and response.ok

            charts = page.locator("figure[data-chart^='pillar:'] svg")
            assert charts.count() == 2
            for i in range(charts.count()):
                box = charts.nth(i).bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 40, box
                # The points are drawn too, not only the frame.
                assert charts.nth(i).locator("circle.point").count() == 5
            assert page.locator("#overall").inner_text() == "81.7%"
            assert page.locator("li.alert[data-state=firing]").count() >= 1

            page.screenshot(path=str(artifacts / f"dashboard-{size}.png"), full_page=True)
            # Open every evidence list: the longest texts (SHAs, paths) must wrap as well.
            page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
            page.screenshot(path=str(artifacts / f"dashboard-{size}-evidence.png"), full_page=True)
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, f"horizontal scroll at {width}px: content is {scroll_width}px wide"
        finally:
            browser.close()
    assert errors == []
    assert foreign == []


# --- the index of many projects, and a long history, through the API ----------------------

WIDTHS = (1400, 390)


@pytest.fixture(scope="module")
def api_pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The URLs of the index of 120 projects and of a project page with months of history."""
    fleet = build_fleet(tmp_path_factory.mktemp("fleet"), 120)
    long = build_long_history(tmp_path_factory.mktemp("long"))
    with running(fleet.config) as index_url, running(long.config) as long_url:
        yield {"index": index_url + "/", "index-stale": index_url + "/?status=stale&sort=overall&order=asc",
               "project": long_url + "/projects/long/dashboard?range=7d&axis=time",
               "project-sample": long_url + "/projects/long/dashboard?range=7d&axis=sample"}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["index", "index-stale", "project", "project-sample"])
def test_pages_fit_the_width_in_chromium(api_pages: dict[str, str], name: str, width: int, artifacts: Path) -> None:
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on("request", lambda r: errors.append(f"foreign: {r.url}") if urlsplit(r.url).hostname != "127.0.0.1" else None)
            response = page.goto(api_pages[name], wait_until="load")
            assert response is not None and response.ok
            if name == "index":
                assert page.locator("tr.project").count() == 120
                assert page.locator("tr.project svg.sparkline").count() == 119
            elif name.startswith("project"):
                box = page.locator("figure[data-chart=overall] svg").bounding_box()
                assert box is not None and box["width"] > min(300, width - 60), box
                assert page.locator("figure[data-chart=overall] circle.point").count() == 66
            page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
            scroll, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            assert scroll <= client, f"{name} scrolls sideways at {width}px: content {scroll}px, window {client}px"
            # Every row fits too, not only the document: nothing is cut off at its right.
            widest = page.evaluate("Math.max(0, ...Array.from(document.querySelectorAll('tr, figure, form'), e => e.getBoundingClientRect().right))")
            assert widest <= client, f"{name} at {width}px: something ends at {widest}px"
        finally:
            browser.close()
    assert (artifacts / f"{name}-{width}.png").stat().st_size > 10_000
    assert errors == []


def test_sorting_through_a_header_link_in_chromium(api_pages: dict[str, str]) -> None:
    """No script: a header is a link, and the page it leads to is sorted by the server."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, java_script_enabled=False)
            page.goto(api_pages["index"], wait_until="load")
            page.click("th[data-sort=overall] a")
            page.wait_for_load_state("load")
            assert "sort=overall" in page.url
            figures = [float(t.rstrip("%")) for t in page.locator("tr.project td.overall").all_inner_texts() if t != "–"]
            assert figures == sorted(figures) and len(figures) == 119
            page.fill("input[name=q]", "payments")
            page.click("form.filters button")
            page.wait_for_load_state("load")
            assert page.locator("tr.project").count() == 12 and "q=payments" in page.url, (page.url, page.content()[-1500:])
        finally:
            browser.close()
