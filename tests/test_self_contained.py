"""A user's clone carries everything its tests read and declares everything they import."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from tests.support.paths import FIXTURES, REPO_ROOT

# A path built to leave the repository: `ROOT.parent / ...`, `parents[2]`.
_SIBLING = "sha" + "red"  # the folder beside our own checkouts, which a user's clone lacks
_OUTSIDE = re.compile(r"\.\./" + _SIBLING + r"|ROOT\.parent\b|\.parent\s*/\s*\"" + _SIBLING + r"\"|parents\[[2-9]\]")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _python_files(*folders: str):
    for folder in folders:
        yield from (REPO_ROOT / folder).rglob("*.py")


def test_no_test_or_benchmark_reads_outside_the_repository():
    offenders = [f"{path.relative_to(REPO_ROOT)}:{n}: {line.strip()}"
                 for path in _python_files("tests", "bench") if path.name != "test_self_contained.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if _OUTSIDE.search(line)]
    assert offenders == []
    assert FIXTURES.is_relative_to(REPO_ROOT)


def test_every_fixture_has_its_provenance():
    provenance = (FIXTURES / "PROVENANCE.md").read_text()
    fixtures = sorted(p.name for p in FIXTURES.iterdir() if p.name != "PROVENANCE.md")
    assert len(fixtures) >= 10
    assert [name for name in fixtures if f"| {name} |" not in provenance] == []


def test_every_library_the_tests_import_is_declared():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    declared = {_canonical(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in requirements} | {"pillarwatch"}
    distributions = importlib.metadata.packages_distributions()
    imported: set[str] = set()
    for path in _python_files("tests"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"tests", "bench"}
    undeclared = sorted(module for module in third_party
                        if not any(_canonical(d) in declared for d in distributions.get(module, [module])))
    assert undeclared == []


def test_ci_runs_the_readme_commands_in_a_clone_that_stands_alone():
    script = (REPO_ROOT / ".ci" / "run").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    commands = re.findall(r"\*\*Run the (?:main job|test suite)[:*].*?```sh\n(.+?)\n```", readme, re.S)
    assert len(commands) == 2
    clone = script.index('git clone -q "$PWD" "$work/pillarwatch"')
    assert "work=$(mktemp -d)" in script[:clone]
    assert all(clone < script.index(command) for command in commands)
