"""`pillarwatch init`: a starting configuration from a hand-written snapshot and the repository, over the common layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from daemon.run.initialise import read_repository
from daemon.store import Store
from tests.support.cli import run_cli
from tests.support.git import GitRepo
from tests.support.layouts import DOC_DATE, LAYOUTS, PILLARS, WHEN, layout_repo, progress_document


def _init(tmp_path: Path, *args: str, code: int = 0) -> tuple[dict | None, str]:
    proc = run_cli("init", *args, cwd=tmp_path, code=code)
    return (json.loads(proc.stdout) if "--json" in args and code == 0 else None), proc.stdout + proc.stderr


def _criteria(snapshot: dict) -> dict[str, float | None]:
    return {c["title"]: c["score"] for p in snapshot["pillars"] for c in p["criteria"]}


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, GitRepo]:
    return request.param, layout_repo(tmp_path / "svc", request.param)


def test_init_drafts_the_documents_pillars_and_criteria_and_passes_check(tmp_path: Path, layout: tuple[str, GitRepo]):
    name, _ = layout
    drafted, _ = _init(tmp_path, "--repo", "svc", "--from-doc", "svc/docs/PROGRESS.md", "-o", "pw.yaml", "--json")
    assert [p["title"] for p in drafted["pillars"]] == [p for p, _, _ in PILLARS]
    assert [[c["title"] for c in p["criteria"]] for p in drafted["pillars"]] == [[c for c, _ in cs] for _, _, cs in PILLARS]
    assert all(c["checks"] and all(k["reason"] for k in c["checks"]) for p in drafted["pillars"] for c in p["criteria"])
    config = yaml.safe_load((tmp_path / "pw.yaml").read_text())
    written = config["projects"][0]["pillars"]
    assert [p["title"] for p in written] == [p for p, _, _ in PILLARS]
    # every drafted check has a comment saying why
    lines = (tmp_path / "pw.yaml").read_text().splitlines()
    checks = [i for i, line in enumerate(lines) if line.strip().startswith("- {source:")]
    assert checks
    assert all(lines[i - 1].strip().startswith("# ") for i in checks), "a check without its reason above it"
    text = "\n".join(lines)
    test_file = LAYOUTS[name].test_file
    # (a) the test file the document names under the first criterion, its test cases counted, with the document's line
    assert f"# document line 7 names {test_file}: 2 test case(s) there at HEAD (starts at 0.50)" in text
    assert f"{{source: repo, signal: test_cases, glob: {test_file}, transform: {{scale: [0, 4]}}}}" in text
    if test_name := LAYOUTS[name].test_name:
        assert f"# document line 7 names test {test_name}: 1 test case(s) of that name at HEAD" in text
        assert f"{{source: repo, signal: test_cases, match: ^{test_name}$, transform: {{scale: [0, 2]}}}}" in text
    # (b) test cases whose names share significant words with the title, wherever the language keeps them
    assert "# 1 test case(s) share the words backoff, retry with the title (" in text
    assert "{source: repo, signal: test_cases, match: '(?i)backoff|retry', transform: {scale: [0, 2]}}" in text
    assert "{source: repo, signal: test_cases, match: '(?i)isolation|tenant', transform: {scale: [0, 2]}}" in text
    # (c) the status document's lines, matched to criteria by their words
    assert "# docs/STATUS.md:3 reads Restart stress suite: 4/4: all pass" in text
    assert "{source: status, signal: ratio, label: Restart stress suite, field: numerator, transform: {scale: [0, 8]}}" in text
    assert "# docs/STATUS.md:4 reads Tenant isolation suite: 3/5 (the pass ratio, 0.60 now)" in text
    checked = run_cli("check", "--config", "pw.yaml", cwd=tmp_path)
    assert "ok: project svc: " in checked.stdout and "2 pillars, 4 criteria" in checked.stdout


def test_no_rule_stands_at_one_on_the_first_collect(tmp_path: Path, layout: tuple[str, GitRepo]):
    _init(tmp_path, "--repo", "svc", "--from-doc", "svc/docs/PROGRESS.md", "-o", "pw.yaml")
    snapshot = json.loads(run_cli("collect", "--config", "pw.yaml", "--json", cwd=tmp_path).stdout)
    scores = _criteria(snapshot)
    assert len(scores) == 4
    assert all(s is not None and s < 1.0 for s in scores.values()), scores
    # the first criterion has evidence: the test file, the status ratio
    assert scores["Survive restart without semantic drift"] == pytest.approx(0.5)
    # and the history goes on from there: past commits scored by the drafted rules
    backfilled = json.loads(run_cli("backfill", "--config", "pw.yaml", "--commits", "5", "--json", cwd=tmp_path).stdout)
    assert backfilled[0]["added"] == 1


def test_the_documents_scores_are_imported_as_the_teams_judgment_at_its_date(tmp_path: Path):
    repo = layout_repo(tmp_path / "svc", "python-tests")
    drafted, _ = _init(tmp_path, "--repo", "svc", "--from-doc", "svc/docs/PROGRESS.md", "-o", "pw.yaml", "--json")
    assert drafted["imported"]["taken_at"].startswith(DOC_DATE)
    # named and placed as `import --from-git` would: the path in the repository, the commit that last changed it
    assert drafted["imported"]["path"] == "docs/PROGRESS.md"
    assert drafted["imported"]["commit"] == repo.git("rev-parse", "HEAD")
    history = json.loads(run_cli("history", "--config", "pw.yaml", "--json", cwd=tmp_path).stdout)
    (point,) = history["points"]
    assert point["origin"] == "imported" and point["taken_at"] == f"{DOC_DATE}T00:00:00Z"
    with Store.open(tmp_path / ".pillarwatch" / "svc.db", readonly=True) as store:
        snapshot = store.get(point["id"])
    claimed = {c: s for _, _, cs in PILLARS for c, s in cs}
    ids = {c["title"]: c["id"] for p in drafted["pillars"] for c in p["criteria"]}
    assert {c.title: c.score for p in snapshot.pillars for c in p.criteria} == claimed
    # the imported points carry the drafted criteria's ids: judgment and rules line up per criterion
    assert {c.title: c.id for p in snapshot.pillars for c in p.criteria} == ids
    assert all(c.status == "manual" for p in snapshot.pillars for c in p.criteria)


def test_a_document_without_a_date_outside_git_is_drafted_but_not_imported(tmp_path: Path):
    layout_repo(tmp_path / "svc", "go")
    (tmp_path / "progress.md").write_text(progress_document(LAYOUTS["go"], date=None))
    drafted, _ = _init(tmp_path, "--repo", "svc", "--from-doc", "progress.md", "-o", "pw.yaml", "--json")
    assert drafted["imported"] is None and "no 'Date:' line" in drafted["not_imported"]
    assert (tmp_path / "pw.yaml").exists()


def test_init_never_overwrites_without_force(tmp_path: Path):
    layout_repo(tmp_path / "svc", "python-beside")
    (tmp_path / "pw.yaml").write_text("# mine\n")
    _, said = _init(tmp_path, "--repo", "svc", "-o", "pw.yaml", code=2)
    assert said.strip() == "pillarwatch: error: pw.yaml: exists; pass --force to overwrite it"
    assert (tmp_path / "pw.yaml").read_text() == "# mine\n"
    _init(tmp_path, "--repo", "svc", "-o", "pw.yaml", "--force")
    assert (tmp_path / "pw.yaml").read_text().startswith("# Drafted by `pillarwatch init`")


def test_without_a_document_init_drafts_the_four_example_pillars(tmp_path: Path):
    layout_repo(tmp_path / "svc", "java-maven")
    drafted, _ = _init(tmp_path, "--repo", "svc", "-o", "pw.yaml", "--json")
    assert [p["title"].split(" (")[0] for p in drafted["pillars"]] == [
        "Durability", "Contracts, Artifacts, Promotion", "Policy and Tenancy", "Developer Experience and Distribution"]
    text = (tmp_path / "pw.yaml").read_text()
    assert "# the example looks for these files; at HEAD: LICENSE" in text
    assert "pom.xml" in text  # the lock/build files the example looks for, as this layout has them
    run_cli("check", "--config", "pw.yaml", cwd=tmp_path)
    snapshot = json.loads(run_cli("collect", "--config", "pw.yaml", "--json", cwd=tmp_path).stdout)
    assert all(s is not None and s < 1.0 for s in _criteria(snapshot).values())


@pytest.mark.parametrize(("args", "message"), [
    (("--repo", "nowhere"), "pillarwatch: error: --repo nowhere: repository not found: nowhere"),
    (("--repo", "svc", "--from-doc", "svc/README.md"), "pillarwatch: error: svc/README.md: no pillars found: "),
    (("--repo", "svc", "--from-doc", "missing.md"), "pillarwatch: error: --from-doc: document not found: missing.md"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args: tuple[str, ...], message: str):
    repo = layout_repo(tmp_path / "svc", "python-tests")
    repo.write("README.md", "# svc\n\nA service.\n")
    _, said = _init(tmp_path, *args, "-o", "pw.yaml", code=2)
    assert said.startswith(message) and said.count("\n") == 1, said
    assert not (tmp_path / "pw.yaml").exists()


def test_titles_and_names_that_need_quoting_stay_one_yaml_value(tmp_path: Path):
    repo = GitRepo(tmp_path / "svc")
    repo.write("tests/test_x.py", "def test_quote():\n    pass\n")
    repo.commit("x")
    (tmp_path / "doc.md").write_text(
        "Date: 2026-01-05\n### 1) Odd: \"quoted\" # not a comment\n- Title: with colon, {braces} & *stars*: 0.5\n"
        "  see tests/test_x.py # here\nPillar completion: 50%\n")
    drafted, _ = _init(tmp_path, "--repo", "svc", "--from-doc", "doc.md", "-o", "pw.yaml", "--json")
    config = yaml.safe_load((tmp_path / "pw.yaml").read_text())
    pillar = config["projects"][0]["pillars"][0]
    assert pillar["title"] == drafted["pillars"][0]["title"]
    assert pillar["criteria"][0]["title"] == drafted["pillars"][0]["criteria"][0]["title"]
    run_cli("check", "--config", "pw.yaml", cwd=tmp_path)


def test_init_says_what_it_wrote_and_what_it_imported(tmp_path: Path):
    layout_repo(tmp_path / "svc", "typescript")
    _, said = _init(tmp_path, "--repo", "svc", "--from-doc", "svc/docs/PROGRESS.md", "-o", "pw.yaml")
    assert "pw.yaml: project svc: 2 pillars, 4 criteria, " in said
    assert f"docs/PROGRESS.md: the team's judgment of {DOC_DATE}: imported as snapshot #1" in said
    _, said = _init(tmp_path, "--repo", "svc", "--from-doc", "svc/docs/PROGRESS.md", "-o", "pw.yaml", "--force")
    assert f"docs/PROGRESS.md: the team's judgment of {DOC_DATE}: imported before, kept" in said


def test_file_names_that_are_not_plain_text_are_left_out(tmp_path: Path):
    repo = layout_repo(tmp_path / "svc", "python-tests")
    repo.write("tests/test_new\nline.py", "def test_restart_twice():\n    pass\n")
    (repo.path / "tests").joinpath(b"test_\xff.py".decode("utf-8", "surrogateescape")).write_bytes(b"def test_x():\n    pass\n")
    repo.commit("odd names", when=WHEN)
    view, status = read_repository(repo.path)
    assert "tests/test_restart.py" in view.files and "tests/test_restart.py" in view.texts
    assert not [p for p in view.files if not p.isprintable()] and not [p for p in view.texts if not p.isprintable()]
    assert [s.path for s in status] == ["docs/STATUS.md"]
    _init(tmp_path, "--repo", "svc", "--from-doc", "svc/docs/PROGRESS.md", "-o", "pw.yaml")
    run_cli("check", "--config", "pw.yaml", cwd=tmp_path)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_from_init_to_calibrate_the_rules_meet_the_imported_judgment(tmp_path: Path, layout: str):
    repo = layout_repo(tmp_path / "svc", layout)
    _init(tmp_path, "--repo", "svc", "--from-doc", "svc/docs/PROGRESS.md", "-o", "pw.yaml")
    run_cli("check", "--config", "pw.yaml", cwd=tmp_path)
    run_cli("collect", "--config", "pw.yaml", cwd=tmp_path)
    run_cli("backfill", "--config", "pw.yaml", "--commits", "5", cwd=tmp_path)
    done = json.loads(run_cli("calibrate", "--config", "pw.yaml", "--json", cwd=tmp_path).stdout)
    claimed = {c: s for _, _, cs in PILLARS for c, s in cs}
    pairs = {c["title"]: c["agreement"]["pairs"] for c in done["calibration"]["criteria"]}
    assert set(pairs) == set(claimed)
    for title, (pair,) in pairs.items():  # one judged commit each: the document's, against the drafted rule
        assert pair["commit"] == repo.git("rev-parse", "HEAD") and pair["team"] == claimed[title]
        assert pair["by"] == "docs/PROGRESS.md" and pair["rule"] < 1.0
