"""Start-up stays light: what loading a configuration and `pillarwatch status --json` import (issue 15).

No timing here: each run is a new process that reports the modules it ended
with, and the heavy ones a read does not need must not be among them (GitPython,
httpx, markdown-it, APScheduler, the collectors, alert evaluation, rich, the web
layer). bench/bench_startup.py measures what that buys.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.git import GitRepo

# Modules a configuration's loading, and `status --json`, must not import. (A URL given to an http or github
# source is checked by collectors.http, which loads then, without httpx; a cron schedule loads APScheduler;
# PyYAML only when a message needs a line: the data is read by yaml-rs.)
HEAVY = ("git", "yaml", "httpx", "markdown_it", "apscheduler", "rich", "jinja2", "fastapi", "celery",
         "collectors.git", "collectors.gitrepo", "collectors.gitcommand", "collectors.git_history", "collectors.docs",
         "collectors.probe", "collectors.github", "collectors.gitlab", "collectors.command",
         "collectors.artifacts", "daemon.alerting.evaluate", "daemon.run", "daemon.web", "daemon.service",
         "daemon.terminal")

CONFIG = """\
version: 1
store: pw.db
projects:
  - id: svc
    schedule: 15m
    sources:
      - {id: repo, kind: git, path: repo}
      - {id: status, kind: doc, git: repo, path: docs/STATUS.md}
      - {id: site, kind: http, url: "http://127.0.0.1:9/health"}
      - {id: ci, kind: github, repo: o/r, workflow: ci.yml, api_url: "https://example.invalid/api/v3"}
    pillars:
      - id: code
        title: Code
        criteria:
          - id: readme
            title: README present
            checks:
              - {source: repo, signal: file_exists, path: README.md}
          - id: todos
            title: Few TODOs
            checks:
              - {source: repo, signal: content_match, glob: "**/*.py", regex: TODO, transform: {scale: [10, 0]}}
          - id: declared
            title: Docs parity
            checks:
              - {source: status, signal: declared_score}
          - id: up
            title: Up
            checks:
              - {source: site, signal: status}
          - id: green
            title: CI green
            checks:
              - {source: ci, signal: latest_run}
"""

# Runs `body` in a new process and prints the modules loaded when it ends (at exit, so a command's sys.exit counts).
_REPORT = "import atexit, json, sys; atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"


def _modules_after(body: str, cwd: Path) -> set[str]:
    done = subprocess.run([sys.executable, "-c", _REPORT + textwrap.dedent(body)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    repo = GitRepo(tmp_path / "repo")
    repo.write("README.md", "# hello\n")
    repo.write("docs/STATUS.md", "# Status\nDocs parity: 0.60\n")
    repo.commit("first", when=datetime(2026, 11, 1, tzinfo=timezone.utc))
    (tmp_path / "pw.yaml").write_text(CONFIG)
    return tmp_path


def test_loading_a_configuration_imports_no_collector(workspace: Path):
    loaded = _modules_after("""
        from daemon.config.loading import load_config
        config = load_config("pw.yaml")
        assert [s.kind for s in config.projects[0].sources] == ["git", "doc", "http", "github"]
    """, workspace)
    assert _heavy(loaded) == []
    assert "daemon.config.loading" in loaded and "collectors.models.git" in loaded  # the light models did the work


def test_status_json_imports_only_what_it_reads(workspace: Path):
    # The project is collected once without its network sources (they would only be stale).
    (workspace / "local.yaml").write_text(CONFIG.replace("      - {id: site", "#").replace("      - {id: ci", "#")
                                          .split("          - id: up")[0])
    run_cli("collect", "--config", "local.yaml", cwd=workspace)
    expected = json.loads(run_cli("status", "--json", "--config", "local.yaml", cwd=workspace).stdout)
    loaded = _modules_after("""
        import sys
        sys.argv = ["pillarwatch", "status", "--json", "--config", "local.yaml"]
        from daemon.__main__ import main
        main()
    """, workspace)
    assert _heavy(loaded) == []
    assert "daemon.store" in loaded and expected["project"] == "svc" and expected["overall"] is not None


def test_only_the_signals_and_kinds_a_configuration_uses_get_a_model(workspace: Path):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from daemon.config.loading import load_config
        from daemon.config.model import CHECKS, SOURCES
        load_config("pw.yaml")
        print(CHECKS.member.cache_info().currsize, SOURCES.member.cache_info().currsize, len(CHECKS.tags()))
    """)], cwd=workspace, capture_output=True, text=True, timeout=120, check=True)
    checks, sources, signals = map(int, done.stdout.split())
    assert (checks, sources) == (5, 4) and signals > 15  # five signals and four kinds used, of all there are
