"""`pillarwatch import`: hand-written progress documents become imported snapshots in the history."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from tests.support.cli import pillarwatch
from tests.support.git import GitRepo

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def document(restart: float, replay: float, *, claimed_pillar: str, claimed_overall: str, date: str | None) -> str:
    head = f"# Progress snapshot\nDate: {date}\n\n" if date else "# Progress snapshot\n\n"
    return head + f"""### 1) Durability
1. Survive restart without semantic drift: {restart:.2f}
2. Idempotent replay: {replay:.2f}
Pillar completion: {claimed_pillar}

### 2) Developer experience
- Docs: 0.50
Pillar completion: 50%

**Overall target architecture completion: {claimed_overall}**
"""


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Path, GitRepo, list[str]]:
    """Three committed versions of docs/PROGRESS.md; the second claims figures its criteria do not give."""
    repo = GitRepo(tmp_path / "repo")
    texts = [
        document(0.20, 0.40, claimed_pillar="30%", claimed_overall="40%", date="2026-03-01"),
        document(0.60, 0.80, claimed_pillar="90%", claimed_overall="75%", date=None),  # 70% and 60% really
        document(1.00, 0.90, claimed_pillar="95%", claimed_overall="72.5%", date="2026-03-20"),
    ]
    shas = []
    for n, text in enumerate(texts):
        repo.write("docs/PROGRESS.md", text)
        shas.append(repo.commit(f"progress {n}", when=T0 + timedelta(days=7 * n)))
    config = {"store": "pw.db", "projects": [{
        "id": "svc",
        "sources": [{"id": "repo", "kind": "git", "path": "repo"}],
        "pillars": [{"id": "durability", "title": "Durability", "criteria": [
            {"id": "restart", "title": "Survive restart without semantic drift",
             "checks": [{"source": "repo", "signal": "file_exists", "path": "tests/test_restart.py"}]},
        ]}, {"id": "devex", "title": "Developer experience", "criteria": [
            {"id": "docs", "title": "Docs", "checks": [{"source": "repo", "signal": "file_exists", "path": "README.md"}]},
        ]}],
    }]}
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path, repo, shas


def test_every_committed_version_is_imported_with_its_findings(versions):
    root, _, shas = versions
    proc = pillarwatch(root, "import", "--from-git", "repo", "--path", "docs/PROGRESS.md", "--json")
    assert proc.returncode == 0, proc.stderr
    outcomes = json.loads(proc.stdout)
    assert [o["commit"] for o in outcomes] == shas
    # The Date: line wins; without one, the commit time.
    assert [o["taken_at"] for o in outcomes] == ["2026-03-01T00:00:00Z", "2026-03-09T10:00:00Z", "2026-03-20T00:00:00Z"]
    assert [o["overall"] for o in outcomes] == pytest.approx([40.0, 60.0, 72.5])
    assert outcomes[0]["disagreements"] == []
    assert outcomes[1]["disagreements"] == ["Durability: claims 90%, criteria give 70%", "Overall: claims 75%, criteria give 60%"]
    assert outcomes[2]["disagreements"] == []

    history = json.loads(pillarwatch(root, "history", "--json").stdout)
    assert [p["overall"] for p in history["points"]] == pytest.approx([40.0, 60.0, 72.5])
    assert [p["pillars"]["durability"] for p in history["points"]] == pytest.approx([30.0, 70.0, 95.0])
    assert {p["origin"] for p in history["points"]} == {"imported"}

    db = sqlite3.connect(root / "pw.db")
    assert {r[0] for r in db.execute("SELECT origin FROM snapshots")} == {"imported"}
    findings = [json.loads(r[0]) for r in db.execute("SELECT verification FROM imported_documents ORDER BY snapshot_id")]
    assert [f["ok"] for f in findings] == [True, False, True]
    # A criterion the configuration knows keeps its id; the claim is its evidence, with the line.
    explained = json.loads(pillarwatch(root, "explain", "durability/restart", "--json").stdout)
    assert explained["status"] == "manual" and explained["score"] == 1.0
    assert explained["evidence"][0]["provenance"] == {"commit": shas[2], "path": "docs/PROGRESS.md", "line": 5, "url": None}

    again = json.loads(pillarwatch(root, "import", "--from-git", "repo", "--path", "docs/PROGRESS.md", "--json").stdout)
    assert [o["snapshot"] for o in again] == [None, None, None]
    assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 3


def test_a_file_takes_its_date_from_its_last_commit_and_the_text_names_disagreements(versions):
    root, repo, _ = versions
    repo.write("docs/PROGRESS.md", document(0.6, 0.8, claimed_pillar="90%", claimed_overall="60%", date=None))
    sha = repo.commit("again", when=T0 + timedelta(days=30))
    proc = pillarwatch(root, "import", "repo/docs/PROGRESS.md")
    assert proc.returncode == 0, proc.stderr
    assert f"repo/docs/PROGRESS.md at {sha[:7]}: snapshot #1 of 2026-04-01, overall 60%" in proc.stdout
    assert "1 figure(s) disagree" in proc.stdout and "Durability: claims 90%, criteria give 70%" in proc.stdout


def test_documents_that_cannot_be_imported_say_why(versions, tmp_path):
    root, _, _ = versions
    undated = tmp_path / "loose.md"
    undated.write_text(document(0.5, 0.5, claimed_pillar="50%", claimed_overall="50%", date=None))
    proc = pillarwatch(root, "import", str(undated))
    assert proc.returncode == 2 and "no 'Date:' line and not in a git repository" in proc.stderr
    empty = tmp_path / "empty.md"
    empty.write_text("# Notes\nnothing here\n")
    proc = pillarwatch(root, "import", str(empty))
    assert proc.returncode == 2 and "no pillars found" in proc.stderr and str(empty) in proc.stderr
    proc = pillarwatch(root, "import", "--from-git", "repo")
    assert proc.returncode == 2 and "--from-git and --path go together" in proc.stderr
    assert not (root / "pw.db").exists() or sqlite3.connect(root / "pw.db").execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0


def test_retention_keeps_imported_history_unless_told_to_thin_it(versions):
    root, _, _ = versions
    config = yaml.safe_load((root / "pw.yaml").read_text())
    retention = {"keep_all": "1d", "daily_for": "1d", "weekly_for": "1d"}  # the tiers would keep one a month
    (root / "pw.yaml").write_text(yaml.safe_dump({**config, "retention": retention}, sort_keys=False))
    args = ("import", "--from-git", "repo", "--path", "docs/PROGRESS.md", "--json")
    assert len([o for o in json.loads(pillarwatch(root, *args).stdout) if o["snapshot"]]) == 3
    pruned = json.loads(pillarwatch(root, "prune", "--json").stdout)["projects"][0]
    assert (pruned["kept"], pruned["removed"]) == (3, 0)


def test_import_reads_regular_files_within_the_document_size_limit(versions, tmp_path):
    root, _, _ = versions
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    for path, said in (("/dev/zero", "not a regular file: /dev/zero"), (str(fifo), f"not a regular file: {fifo}")):
        proc = subprocess.run([sys.executable, "-m", "daemon.cli", "import", path, "--config", "pw.yaml"], cwd=root,
                              capture_output=True, text=True, timeout=30)  # a blocked FIFO read fails here
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (root / "pw.db").exists() or sqlite3.connect(root / "pw.db").execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0


def test_pillars_the_project_does_not_have_are_refused_unless_added(versions, tmp_path):
    root, _, _ = versions
    other = tmp_path / "other.md"
    other.write_text("Date: 2026-03-05\n### 1) Durability\n- Survive restart without semantic drift: 0.5\n"
                     "Pillar completion: 50%\n### 2) Settings\n- retries: 0.2\nPillar completion: 20%\n")
    proc = pillarwatch(root, "import", str(other))
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert str(other) in line and "'Settings'" in line and "--add-pillars" in line and "Durability" not in line
    assert not (root / "pw.db").exists() or sqlite3.connect(root / "pw.db").execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0

    proc = pillarwatch(root, "import", str(other), "--add-pillars", "--json")
    assert proc.returncode == 0, proc.stderr
    history = json.loads(pillarwatch(root, "history", "--json").stdout)
    (point,) = history["points"]
    assert point["pillars"] == {"durability": pytest.approx(50.0), "settings": pytest.approx(20.0)}


def test_a_text_that_is_not_a_progress_snapshot_is_refused(versions, tmp_path):
    root, _, _ = versions
    readme = tmp_path / "README.md"
    readme.write_text("Date: 2026-03-05\n# Service\n## Durability\n```yaml\nretry: 0.2\n```\n## Settings\n- timeout: 1\n")
    verify_doc = subprocess.run([sys.executable, "-m", "daemon.cli", "verify-doc", str(readme)], cwd=root,
                                capture_output=True, text=True, timeout=120)
    for proc in (pillarwatch(root, "import", str(readme)), verify_doc):
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert str(readme) in line and "not a progress snapshot" in line
    assert not (root / "pw.db").exists() or sqlite3.connect(root / "pw.db").execute("SELECT count(*) FROM snapshots").fetchone()[0] == 0


def test_what_retention_removed_a_second_import_does_not_bring_back(versions):
    root, _, _ = versions
    config = yaml.safe_load((root / "pw.yaml").read_text())
    retention = {"keep_all": "1d", "daily_for": "1d", "weekly_for": "1d", "imported": "tiers"}  # then the latest of each month
    (root / "pw.yaml").write_text(yaml.safe_dump({**config, "retention": retention}, sort_keys=False))
    args = ("import", "--from-git", "repo", "--path", "docs/PROGRESS.md", "--json")
    assert len([o for o in json.loads(pillarwatch(root, *args).stdout) if o["snapshot"]]) == 3
    pruned = json.loads(pillarwatch(root, "prune", "--json").stdout)["projects"][0]
    assert (pruned["kept"], pruned["removed"]) == (1, 2)

    assert [o["snapshot"] for o in json.loads(pillarwatch(root, *args).stdout)] == [None, None, None]
    db = sqlite3.connect(root / "pw.db")
    assert db.execute("SELECT count(*) FROM snapshots").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM pruned_origins WHERE origin = 'imported'").fetchone()[0] == 2
