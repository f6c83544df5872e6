"""The dashboard in a real browser: headless Chromium driven by Playwright.

The page is written by ``pillarwatch report --format html`` (the real CLI) and
served by a stdlib HTTP server on 127.0.0.1. Full-page screenshots at laptop
and phone sizes are kept in ``test-artifacts/`` (or ``$PILLARWATCH_ARTIFACTS``)
for a person to look at.

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
from tests.support.history import DAY0, build_history
from tests.support.paths import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
SIZES = {"laptop": (1280, 800), "phone": (375, 812)}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")


def artifacts() -> Path:
    folder = Path(os.environ.get("PILLARWATCH_ARTIFACTS") or REPO_ROOT / "test-artifacts")
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
def test_dashboard_renders_in_chromium(served: str, size: str) -> None:
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

            page.screenshot(path=str(artifacts() / f"dashboard-{size}.png"), full_page=True)
            # Open every evidence list: the longest texts (SHAs, paths) must wrap as well.
            page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
            page.screenshot(path=str(artifacts() / f"dashboard-{size}-evidence.png"), full_page=True)
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, f"horizontal scroll at {width}px: content is {scroll_width}px wide"
        finally:
            browser.close()
    assert errors == []
    assert foreign == []
