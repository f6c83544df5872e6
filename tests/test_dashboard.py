"""The HTML dashboard, the trend charts in it, the badges and `report --format html`.

Pages are rendered from a database built by real collections
(:func:`tests.support.history.build_history`) and read back with the stdlib
HTML parser (:mod:`tests.support.html_tree`).
"""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from defusedxml import ElementTree

from collectors.evidence import Evidence, Provenance
from daemon.config.loading import load_config
from daemon.errors import NotFound
from daemon.run.runner import run_projects
from daemon.scoring.snapshot import CheckResult, CriterionScore, PillarScore, Snapshot
from daemon.store import Store
from daemon.web import badges, dashboard
from tests.support.git import GitRepo
from tests.support.history import DAY0, History, build_history
from tests.support.html_tree import Element, parse
from tests.support.paths import REPO_ROOT

SVG = "{http://www.w3.org/2000/svg}"
DAY5 = DAY0 + timedelta(days=5)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> History:
    """The five-day history, shared by the tests that only read it."""
    return build_history(tmp_path_factory.mktemp("history"))


def render(history: History, project: str = "shop", **options: bool) -> Element:
    with Store.open(history.db, readonly=True) as store:
        return parse(dashboard.page(store, history.config, project, **options))


def points(svg: Element) -> list[Element]:
    return svg.find_all("circle", class_="point")


# --- the project page ------------------------------------------------------------------


def test_page_shows_the_figures_with_the_configured_decimals(built):
    page = render(built)
    assert page.one(id="overall").text() == "98.3%"
    assert page.one("article", data_pillar="durability").one(class_="pillar-score").text() == "96.7%"
    assert page.one("article", data_pillar="dx").one(class_="pillar-score").text() == "100.0%"
    assert page.one("head").one("title").text() == "Shop service"
    assert page.one("meta", name="viewport").attrs["content"] == "width=device-width, initial-scale=1"


def test_one_chart_per_pillar_with_a_point_per_snapshot(built):
    page = render(built)
    for pillar, title in (("durability", "Durability"), ("dx", "Developer experience")):
        svg = page.one("figure", data_chart=f"pillar:{pillar}").one("svg")
        assert svg.attrs["role"] == "img"
        assert svg.attrs["aria-label"].startswith(title)
        assert svg.child("title").text().startswith(title)
        assert len(points(svg)) == 4  # four stored rows: day 2 was a repeat of day 1
        assert svg.find_all("circle", class_="partial") == []
    assert len(points(page.one("figure", data_chart="overall").one("svg"))) == 4
    # A point's tooltip carries its time and figure: durability day by day.
    tips = [c.one("title").text() for c in points(page.one("figure", data_chart="pillar:durability"))]
    assert tips == ["2026-11-01 08:00Z: 40.0%", "2026-11-02 08:00Z: 83.3%", "2026-11-04 08:00Z: 50.0%", "2026-11-05 08:00Z: 96.7%"]


def test_criteria_with_status_explain_link_and_evidence(built):
    page = render(built)
    statuses = {li.attrs["data-criterion"]: li.attrs["data-status"] for li in page.find_all("li", class_="criterion")}
    assert statuses == {"durability/restart": "ok", "durability/retry": "ok", "durability/replay": "ok",
                        "dx/readme": "ok", "dx/ci": "ok"}
    replay = page.one("li", data_criterion="durability/replay")
    assert replay.one(class_="status").text() == "ok"
    assert replay.one(class_="score").text() == "0.90"
    assert replay.one("a", class_="explain").attrs["href"] == "/api/v1/projects/shop/criteria/durability/replay"
    details = replay.one("details")
    sha = built.shas[-1]
    assert details.one("code", title=sha).text() == sha[:7]
    assert "docs/STATUS.md:1" in details.text()
    assert "declared_score" in details.text()


def test_missing_next_and_main_gaps(built):
    page = render(built)
    items = page.one("ol", class_="missing-next").find_all("li")
    assert [(li.one(class_="gain").text(), li.one(class_="what").text()) for li in items] == [("+1.67", "Replay compatibility")]
    assert page.one("article", data_pillar="durability").one(class_="gaps").text() == "Main gaps: Replay compatibility"
    assert page.one("article", data_pillar="dx").one(class_="gaps").text() == "Main gaps: none"


def test_no_open_alert_once_everything_resolved(built):
    # Day 3's drop fired alerts; day 4 resolved them all.
    page = render(built)
    assert page.find_all(class_="alert") == []
    assert page.one("section", class_="alerts").one(class_="none").text() == "No open alerts."


def test_a_firing_alert_after_a_regression(tmp_path):
    history = build_history(tmp_path)
    history.repo.remove("tests/test_retry.py")
    sha = history.repo.commit("day 5", when=DAY5 - timedelta(hours=1))
    with Store.open(history.db) as store:
        run_projects(history.config, [history.config.project("shop")], store=store, now=DAY5)
    page = render(history)
    alerts = page.find_all("li", class_="alert")
    assert {a.attrs["data-state"] for a in alerts} == {"firing"}
    texts = [a.text() for a in alerts]
    durability = next(t for t in texts if "Durability fell" in t)
    assert "96.7% → 63.3%" in durability
    assert f"tests/test_retry.py deleted in {sha[:7]}" in durability
    assert any("Overall fell from 98.3% to 81.7%" in t for t in texts)
    assert page.one(id="overall").text() == "81.7%"
    assert len(points(page.one("figure", data_chart="pillar:durability"))) == 5


def test_a_partial_snapshot_is_marked_and_its_criteria_stale(tmp_path):
    history = build_history(tmp_path)
    history.repo.path.rename(tmp_path / "gone")  # every source of shop now fails
    with Store.open(history.db) as store:
        run_projects(history.config, [history.config.project("shop")], store=store, now=DAY5)
    page = render(history)
    assert page.one("span", class_="partial").text() == "partial"
    assert "sources that did not answer" in page.one("p", class_="warning").text()
    chart = page.one("figure", data_chart="pillar:durability")
    assert len(points(chart)) == 5
    hollow = chart.find_all("circle", class_="partial")
    assert len(hollow) == 1 and hollow[0].one("title").text().endswith("(partial)")
    statuses = {li.attrs["data-status"] for li in page.find_all("li", class_="criterion")}
    assert statuses == {"stale"}


def test_a_complete_snapshot_with_a_silent_source_tells_one_truth(tmp_path):
    """complete_share 0.5: one of two sources failing leaves the snapshot complete; the page must not call it partial."""
    main, extra = GitRepo(tmp_path / "main"), GitRepo(tmp_path / "extra")
    for repo in (main, extra):
        repo.write("README.md", "# x\n")
        repo.commit("one", when=DAY0)
    raw = {"version": 1, "store": "one.db", "projects": [{
        "id": "one", "complete_share": 0.5,
        "sources": [{"id": "main", "kind": "git", "path": str(main.path)},
                    {"id": "extra", "kind": "git", "path": str(extra.path)}],
        "pillars": [{"id": "p", "title": "P", "criteria": [
            {"id": "a", "title": "A", "checks": [{"source": "main", "signal": "file_exists", "path": "README.md"}]},
            {"id": "b", "title": "B", "checks": [{"source": "extra", "signal": "file_exists", "path": "README.md"}]}]}],
    }]}
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    extra.path.rename(tmp_path / "gone")
    with Store.open(config.store_path) as store:
        run_projects(config, config.projects, store=store, now=DAY0 + timedelta(hours=1))
        snapshot = store.latest("one")
        assert snapshot is not None and snapshot.complete
        page = parse(dashboard.page(store, config, "one"))
    header = page.one("header")
    assert header.one("span", class_="pill").text() == "complete" and header.find_all(class_="partial") == []
    note = header.one("p", class_="warning")
    assert "partial" not in note.text().lower() and "complete" in note.text()
    assert "1 of 2 sources answered" in note.text() and "extra" in note.text()

    # The same page for a snapshot that is partial: the pill and the note both say so.
    config = config.model_copy(update={"projects": [config.projects[0].model_copy(update={"complete_share": 1.0})]})
    with Store.open(config.store_path) as store:
        run_projects(config, config.projects, store=store, now=DAY0 + timedelta(hours=2))
        page = parse(dashboard.page(store, config, "one"))
    header = page.one("header")
    assert header.one("span", class_="pill").text() == "partial"
    assert header.one("p", class_="warning").text().startswith("Partial snapshot: 1 of 2 sources answered")


def test_unknown_project_is_not_found(built):
    with Store.open(built.db, readonly=True) as store, pytest.raises(NotFound):
        dashboard.page(store, built.config, "nope")


def test_a_project_without_a_snapshot_yet(tmp_path, built):
    config = load_config(built.config_path)
    with Store.open(tmp_path / "empty.db") as store:
        page = parse(dashboard.page(store, config, "shop"))
        assert "No snapshot of project shop yet" in page.one("header").text()
        row = parse(dashboard.index(store, config)).one("tr", data_project="shop")
        assert row.one(class_="overall").text() == "–" and "no snapshot yet" in row.text()


def test_standalone_page_has_no_links_to_the_api(built):
    page = render(built, standalone=True)
    assert page.find_all("a", class_="explain") == []
    assert all(not a.attrs["href"].startswith("/") for a in page.find_all("a"))


def test_the_page_loads_nothing_from_anywhere(built):
    for page in (render(built), render(built, "billing")):
        assert page.find_all("script") == []
        for element in page.iter():
            if element.tag == "a":
                continue  # a link is followed by a person, not loaded with the page
            for name in ("src", "href", "xlink:href", "srcset", "data", "poster"):
                value = element.attrs.get(name, "")
                assert not value.startswith(("http:", "https:", "//")), f"<{element.tag} {name}={value}>"
        style = " ".join(s.text() for s in page.find_all("style"))
        assert "url(" not in style and "@import" not in style
        assert page.one("meta", http_equiv="Content-Security-Policy").attrs["content"].startswith("default-src 'none'")


# --- escaping --------------------------------------------------------------------------

NASTY = "<script>alert(1)</script>"


def _nasty_history(tmp_path: Path) -> History:
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "# x\n")
    repo.commit("one", when=DAY0)
    raw = {
        "version": 1, "store": "x.db",
        "projects": [{
            "id": "evil", "title": f"Evil {NASTY}",
            "sources": [{"id": "repo", "kind": "git", "path": str(repo.path)}],
            "pillars": [{"id": "p", "title": "Pillar <b>bold</b>", "criteria": [
                {"id": "c", "title": f"Criterion {NASTY}",
                 "checks": [{"source": "repo", "signal": "file_exists", "path": "README.md"}]},
                {"id": "m", "title": "Manual", "manual": {"score": 0.5, "reason": '<img src=x onerror="alert(2)">',
                                                          "expires": "2099-01-01"}},
            ]}],
        }],
    }
    path = tmp_path / "pillarwatch.yaml"
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    with Store.open(config.store_path) as store:
        run_projects(config, config.projects, store=store, now=DAY0 + timedelta(hours=1))
    return History(config_path=path, config=config, repo=repo, shas=[])


def test_text_from_configuration_is_escaped(tmp_path):
    history = _nasty_history(tmp_path)
    with Store.open(history.db, readonly=True) as store:
        html = dashboard.page(store, history.config, "evil")
        index = dashboard.index(store, history.config)
    for text in (html, index):
        assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
        tree = parse(text)
        assert tree.find_all("script") == [] and tree.find_all("img") == [] and tree.find_all("b") == []
    page = parse(html)
    assert page.one("h1").text() == f"Evil {NASTY}"
    assert page.one("li", data_criterion="p/c").one(class_="title").text().startswith(f"Criterion {NASTY}")
    assert page.one("li", data_criterion="p/m").attrs["data-status"] == "manual"
    assert '<img src=x onerror="alert(2)">' in page.one("li", data_criterion="p/m").text()
    chart = page.one("figure", data_chart="pillar:p").one("svg")
    assert chart.attrs["aria-label"] == "Pillar <b>bold</b>: % over time"


def test_evidence_is_escaped_and_only_web_urls_become_links(tmp_path):
    def evidence(url: str) -> Evidence:
        return Evidence(source="ci", signal="workflow", params={"name": '"><script>x</script>'},
                        value={"conclusion": "<b>success</b>"}, observed_at=DAY0,
                        provenance=Provenance(commit="0123456789abcdef", path="a<b>.yml", line=3, url=url))

    criteria = [
        CriterionScore(id=f"c{n}", title=f"C{n}", score=1.0, status="ok", evidence=[evidence(url)],
                       checks=[CheckResult(source="ci", signal="workflow", params={"name": '"><script>x</script>'},
                                           field="conclusion", transform="bool", value="<b>success</b>", score=1.0)])
        for n, url in enumerate(["javascript:alert(1)", "https://ci.example/run/1?a=1&b=<2>"])
    ]
    snapshot = Snapshot(project="shop", taken_at=DAY0, rules_hash="x", complete=True, overall=100.0,
                        pillars=[PillarScore(id="durability", title="Durability", score=100.0, coverage=1.0, criteria=criteria)])
    config = load_config(_write_shop_config(tmp_path))
    with Store.open(config.store_path) as store:
        store.save_snapshot(snapshot)
        page = parse(dashboard.page(store, config, "shop"))
    assert page.find_all("script") == [] and page.find_all("b") == []
    hrefs = [a.attrs["href"] for a in page.find_all("a") if not a.attrs["href"].startswith(("/", "#"))]
    assert hrefs == ["https://ci.example/run/1?a=1&b=<2>"]
    first = page.one("li", data_criterion="durability/c0").one("details")
    assert "javascript:alert(1)" in first.text()  # shown, not linked
    assert "a<b>.yml:3" in first.text() and '"><script>x</script>' in first.text()
    assert first.one("code", title="0123456789abcdef").text() == "0123456"


def _write_shop_config(tmp_path: Path) -> Path:
    raw = {"version": 1, "store": "shop.db", "projects": [{
        "id": "shop", "sources": [{"id": "ci", "kind": "git", "path": str(tmp_path / "none")}],
        "pillars": [{"id": "durability", "title": "Durability", "criteria": [
            {"id": f"c{n}", "title": f"C{n}", "checks": [{"source": "ci", "signal": "file_exists", "path": "x"}]}
            for n in range(2)]}],
    }]}
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# --- the index -------------------------------------------------------------------------


def test_index_lists_projects_with_overall_and_links(built):
    with Store.open(built.db, readonly=True) as store:
        page = parse(dashboard.index(store, built.config))
    shop, billing = page.one("tr", data_project="shop"), page.one("tr", data_project="billing")
    assert shop.one("th").one("a").attrs["href"] == "/projects/shop/dashboard"
    assert shop.one(class_="overall").text() == "98.3%" and shop.one("th").one("a").text() == "Shop service"
    assert billing.one("th").one("a").attrs["href"] == "/projects/billing/dashboard"
    assert billing.one(class_="overall").text() == "100.0%"


# --- badges ----------------------------------------------------------------------------


def _badge(svg: str) -> tuple[str, str, list[str]]:
    """(title, colour of the value half, texts) of a badge, read as XML."""
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    rects = root.findall(f"{SVG}g/{SVG}rect")
    texts = [t.text or "" for t in root.iter(f"{SVG}text") if t.get("aria-hidden") != "true"]
    return root.findtext(f"{SVG}title") or "", rects[1].get("fill") or "", texts


def test_project_and_pillar_badges(built):
    with Store.open(built.db, readonly=True) as store:
        title, colour, texts = _badge(badges.project_badge(store, built.config, "shop"))
        assert (title, colour, texts) == ("Shop service: 98.3%", "#4c1", ["Shop service", "98.3%"])
        title, _, texts = _badge(badges.project_badge(store, built.config, "shop", label="shop <prod>"))
        assert (title, texts) == ("shop <prod>: 98.3%", ["shop <prod>", "98.3%"])  # escaped in the SVG, read back whole
        assert _badge(badges.pillar_badge(store, built.config, "shop", "durability", label="Durability"))[2][0] == "Durability"
        title, colour, texts = _badge(badges.pillar_badge(store, built.config, "shop", "durability"))
        assert (title, colour, texts) == ("durability: 96.7%", "#4c1", ["durability", "96.7%"])
        with pytest.raises(NotFound):
            badges.pillar_badge(store, built.config, "shop", "nope")
        with pytest.raises(NotFound):
            badges.project_badge(store, built.config, "nope")


def test_a_badge_without_data_is_grey(tmp_path, built):
    with Store.open(tmp_path / "empty.db") as store:
        title, colour, texts = _badge(badges.project_badge(store, built.config, "shop"))
    assert (title, colour, texts) == ("Shop service: no data", "#9f9f9f", ["Shop service", "no data"])


@pytest.mark.parametrize("score, decimals, name", [
    (100.0, 0, "brightgreen"), (90.0, 0, "brightgreen"),
    (89.5, 0, "brightgreen"),  # shown as 90%, so coloured as 90
    (89.4, 0, "green"), (89.96, 1, "brightgreen"), (89.94, 1, "green"),
    (75.0, 0, "green"), (74.4, 0, "yellowgreen"), (60.0, 0, "yellowgreen"), (59.0, 0, "yellow"),
    (40.0, 0, "yellow"), (39.0, 0, "orange"), (20.0, 0, "orange"), (19.4, 0, "red"), (0.0, 0, "red"),
])
def test_badge_colour_bands(score, decimals, name):
    hex_ = next(h for _, n, h in badges.BANDS if n == name)
    assert _badge(badges.figure_badge("x", score, decimals))[1] == hex_


def test_badge_width_follows_the_text_and_text_is_escaped():
    short = ElementTree.fromstring(badges.badge_svg("ci", "1%", "#4c1"))
    long_ = ElementTree.fromstring(badges.badge_svg("a much longer label", "100%", "#4c1"))
    assert int(long_.get("width")) > int(short.get("width")) + 80
    for root in (short, long_):
        halves = root.findall(f"{SVG}g/{SVG}rect")[:2]
        texts = [t for t in root.iter(f"{SVG}text") if t.get("aria-hidden") != "true"]
        for half, text in zip(halves, texts):  # each text fits its half, with padding
            assert float(text.get("textLength")) < float(half.get("width"))
    assert badges.text_width("mmmm") > badges.text_width("iiii") * 3
    assert badges.text_width("进度") > badges.text_width("ab")
    title, _, texts = _badge(badges.badge_svg('<b>&"x"', "5%", "#e05d44"))
    assert title == '<b>&"x": 5%' and texts[0] == '<b>&"x"'


# --- packaging -------------------------------------------------------------------------


def test_every_template_is_packaged():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["daemon.web"]
    files = [p.relative_to(REPO_ROOT / "daemon" / "web").as_posix() for p in (REPO_ROOT / "daemon" / "web" / "templates").rglob("*") if p.is_file()]
    assert files
    unpackaged = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert not unpackaged, f"add to [tool.setuptools.package-data] in pyproject.toml: {unpackaged}"


# --- report --format html --------------------------------------------------------------


def test_report_html_through_the_cli(built, tmp_path):
    target = tmp_path / "dashboard.html"
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "report", "--format", "html", "--config", str(built.config_path),
         "--project", "shop", "-o", str(target)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    page = parse(target.read_text(encoding="utf-8"))
    assert page.one(id="overall").text() == "98.3%"
    assert len(page.find_all("figure", class_="chart")) == 3  # overall and two pillars
    assert page.find_all("a", class_="explain") == []  # a file on its own has no API to link to


def test_report_rejects_an_unknown_format(built):
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "report", "--format", "pdf", "--config", str(built.config_path), "-p", "shop"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "use markdown, json or html" in proc.stderr
