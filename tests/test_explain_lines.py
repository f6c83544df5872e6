"""`explain` names the file and line behind a score, as the README promises: the first match of
`content_match`, and each test case `test_cases` found."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.cli import pillarwatch
from tests.support.git import GitRepo
from tests.support.paths import REPO_ROOT

CONFIG = """\
version: 1
store: pw.db
projects:
  - id: svc
    sources:
      - {id: repo, kind: git, path: repo}
    pillars:
      - id: durability
        title: Durability
        criteria:
          - id: retry
            title: Retries are explicit
            checks:
              - {source: repo, signal: content_match, glob: "**/*.py", regex: "retry\\\\(", transform: {scale: [0, 4]}}
          - id: restart
            title: Survive restart
            checks:
              - {source: repo, signal: test_cases, match: restart, transform: {scale: [0, 4]}}
          - id: suite
            title: A test suite
            checks:
              - {source: repo, signal: file_count, glob: "@tests"}
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    repo = GitRepo(tmp_path / "repo")
    repo.write("svc/client.py", "import time\n\n\ndef call():\n    return retry(3)\n")
    repo.write("svc/test_client.py", "def test_restart_resumes():\n    pass\n\n\ndef test_other():\n    pass\n")
    repo.write("tests/test_restart.py", "class TestAfterCrash:\n    def test_state_is_kept(self):\n        pass\n")
    repo.commit("service", when=datetime(2026, 11, 1, tzinfo=timezone.utc))
    (tmp_path / "pw.yaml").write_text(CONFIG)
    assert pillarwatch(tmp_path, "collect").returncode == 0
    return tmp_path


def test_explain_json_gives_the_line_of_the_first_match_and_of_the_first_test(workspace: Path) -> None:
    retry = json.loads(pillarwatch(workspace, "explain", "retry", "--json").stdout)
    (evidence,) = retry["evidence"]
    assert evidence["provenance"]["path"] == "svc/client.py" and evidence["provenance"]["line"] == 5
    restart = json.loads(pillarwatch(workspace, "explain", "restart", "--json").stdout)
    (evidence,) = restart["evidence"]
    assert evidence["provenance"]["path"] == "svc/test_client.py" and evidence["provenance"]["line"] == 1
    assert evidence["value"]["count"] == 2 and restart["score"] == 0.5
    assert evidence["value"]["cases"] == [
        {"path": "svc/test_client.py", "line": 1, "name": "test_restart_resumes"},
        {"path": "tests/test_restart.py", "line": 2, "name": "test_state_is_kept"},
    ]
    assert evidence["value"]["names"] == ["svc/test_client.py::test_restart_resumes",
                                          "tests/test_restart.py::TestAfterCrash::test_state_is_kept"]
    suite = json.loads(pillarwatch(workspace, "explain", "suite", "--json").stdout)
    assert suite["evidence"][0]["value"]["paths"] == ["svc/test_client.py", "tests/test_restart.py"]


def test_explain_text_shows_file_and_line_and_each_test_case(workspace: Path) -> None:
    text = pillarwatch(workspace, "explain", "retry").stdout
    assert "svc/client.py:5" in text
    text = pillarwatch(workspace, "explain", "restart").stdout
    assert "svc/test_client.py:1" in text
    assert "test cases of repo (glob=@tests, match=restart)" in text
    assert re.search(r"svc/test_client\.py:1 test_restart_resumes", text)
    assert re.search(r"tests/test_restart\.py:2 test_state_is_kept", text)
    assert "test_other" not in text


def test_the_readme_promises_file_and_line_where_explain_gives_them() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert "commit, file and line" in readme
    row = next(line for line in readme.splitlines() if line.startswith("| `pillarwatch explain CRITERION`"))
    assert "path and line" in row and "test_cases" in row
