"""deploy/ci/: the CI gate's example files, checked with the real tools.

The workflow and the job validate against the published schemas (the ones
check-jsonschema vendors: no network), every `pillarwatch` command in them names
options the real command line has, and their commands, run by bash in a real git
repository, gate and write the pull-request comment.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from tests.support.cli import run_cli
from tests.support.git import GitRepo
from tests.support.paths import REPO_ROOT

CI = REPO_ROOT / "deploy" / "ci"
FILES = {"github-actions.yml": "vendor.github-workflows", "gitlab-ci.yml": "vendor.gitlab-ci"}


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(FILES))
def test_ci_files_match_the_published_schemas(name):
    proc = check_jsonschema(FILES[name], CI / name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_schema_check_does_catch_mistakes(tmp_path):
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    del workflow["jobs"]["pillarwatch"]["runs-on"]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(workflow))
    assert check_jsonschema(FILES["github-actions.yml"], tmp_path / "broken.yml").returncode == 1
    job = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    job["pillarwatch-gate"]["script"] = {"not": "a list"}
    (tmp_path / "broken-gitlab.yml").write_text(yaml.safe_dump(job))
    assert check_jsonschema(FILES["gitlab-ci.yml"], tmp_path / "broken-gitlab.yml").returncode == 1


def shell_lines(name: str) -> list[str]:
    """Every shell line the file runs: GitHub steps' `run`, GitLab jobs' `before_script` and `script`."""
    found = yaml.safe_load((CI / name).read_text())
    if name == "github-actions.yml":
        scripts = [s["run"] for job in found["jobs"].values() for s in job["steps"] if "run" in s]
    else:
        scripts = [line for job in found.values() if isinstance(job, dict)
                   for key in ("before_script", "script") for line in job.get(key, [])]
    return [line for script in scripts for line in script.replace("\\\n", " ").splitlines()]


def pillarwatch_commands(name: str) -> list[list[str]]:
    commands = []
    for line in shell_lines(name):
        for part in line.split("||"):
            words = shlex.split(part.split(">")[0])
            if words[:1] == ["pillarwatch"]:
                commands.append(words[1:])
    return commands


@pytest.mark.parametrize("name", sorted(FILES))
def test_ci_files_run_the_gate_and_the_comment_with_real_options(name, tmp_path):
    commands = pillarwatch_commands(name)
    assert ["collect"] in commands  # main's snapshot, stored
    gate = next(c for c in commands if c[0] == "collect" and "--dry-run" in c)
    assert "--fail-under" in gate and "--json" in gate
    comment = next(c for c in commands if c[0] == "diff")
    assert comment[comment.index("--format") + 1] == "markdown" and "--snapshot-file" in comment
    env = {"COLUMNS": "200", "TERM": "dumb"}
    for words in commands:
        helped = run_cli(words[0], "--help", cwd=tmp_path, env=env).stdout
        for option in (w for w in words[1:] if w.startswith("--")):
            assert option in helped, f"{name}: pillarwatch {words[0]} has no {option}"


CONFIG = """\
version: 1
store: ${PILLARWATCH_DB:-pw.db}
display: {decimals: 1}
projects:
  - id: svc
    title: My service
    sources:
      - {id: repo, kind: git, path: .}
    pillars:
      - id: durability
        title: Durability
        criteria:
          - id: restart
            title: Survive restart
            checks:
              - {source: repo, signal: file_exists, glob: "tests/test_restart*.py"}
          - id: docs
            title: Documented
            checks:
              - {source: repo, signal: file_exists, path: README.md}
"""


def run_lines(lines: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The lines through bash, the `pillarwatch` on PATH being this checkout's."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(["bash", "-c", "\n".join(lines)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env, "PATH": path})


def test_github_workflow_steps_gate_a_branch_and_write_the_comment(tmp_path):
    """The workflow's own `run` lines, in order, on a real repository: main stored, then a branch that regressed."""
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = {s["name"]: s for s in workflow["jobs"]["pillarwatch"]["steps"] if "name" in s}
    repo = GitRepo(tmp_path / "work")
    repo.write("tests/test_restart.py", "def test_restart():\n    pass\n")
    repo.write("README.md", "# svc\n")
    repo.write("pillarwatch.yaml", CONFIG)
    repo.commit("main", when=datetime(2026, 11, 1, tzinfo=timezone.utc))
    env = {k: v for k, v in workflow["env"].items() if "${{" not in v}
    env |= {"PILLARWATCH_DB": str(repo.path / ".pillarwatch" / "pillarwatch.db"), "RUNNER_TEMP": str(tmp_path)}
    main = run_lines([steps["Store main's snapshot"]["run"]], repo.path, env)
    assert main.returncode == 0, main.stderr
    assert (repo.path / ".pillarwatch" / "pillarwatch.db").exists()

    repo.remove("tests/test_restart.py")
    dropped = repo.commit("drop the restart test")
    gate = run_lines([steps["Gate"]["run"]], repo.path, env)
    assert gate.returncode == 1, gate.stderr
    assert "svc: overall 50.00% is below --fail-under 70" in gate.stderr
    comment_lines = [line for line in steps["Comment on the pull request"]["run"].splitlines() if line.startswith("pillarwatch ")]
    made = run_lines(comment_lines, repo.path, env)
    assert made.returncode == 0, made.stderr
    comment = (tmp_path / "comment.md").read_text().splitlines()
    assert "| Overall | 100.0 % | 50.0 % | -50.0 |" in comment
    assert f"| repo | tests/test_restart.py deleted in {dropped[:7]} |" in comment
    history = run_cli("history", "--json", cwd=repo.path, env=env).stdout
    assert '"total": 1' in history  # the gate and the comment stored nothing
