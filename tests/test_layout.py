"""The suite's own layout: harnesses in tests/support/, fixtures in conftest.py files, nothing imported from either kind of test file.

A conftest is pytest's to load; importing it as a module runs it a second
time under another name, and a helper hidden in a test module is copied
rather than found. So tests and benchmarks import harnesses from
``tests.support`` only, and a conftest holds fixtures, pytest hooks and the
constants they read.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO_ROOT

_FOLDERS = ("tests", "bench")


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for folder in _FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            yield path.relative_to(REPO_ROOT), ast.parse(path.read_text(), filename=str(path))


def _imported(path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement loads, relative ones resolved against ``path``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = list(path.parent.parts)
    base = package[: len(package) - node.level + 1] if node.level else []
    module = [*base, *(node.module.split(".") if node.module else [])]
    return [".".join(module)] + [".".join([*module, alias.name]) for alias in node.names]


def _offending(name: str) -> bool:
    return any(part == "conftest" or part.startswith("test_") for part in name.split("."))


def test_no_module_imports_a_conftest_or_a_test_module() -> None:
    offenders = sorted(
        f"{path}:{node.lineno}: {ast.unparse(node)}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(_offending(name) for name in _imported(path, node))
    )
    assert offenders == [], "import harnesses from tests.support instead:\n" + "\n".join(offenders)


def _is_fixture(node: ast.FunctionDef) -> bool:
    return any(ast.unparse(d.func if isinstance(d, ast.Call) else d) in {"pytest.fixture", "fixture"} for d in node.decorator_list)


def test_conftests_hold_fixtures_hooks_and_their_constants_only() -> None:
    problems = []
    for path, tree in _modules():
        if path.name != "conftest.py":
            continue
        functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        used = {n.id for f in functions for n in ast.walk(f) if isinstance(n, ast.Name)}
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) or (
                    isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):  # the docstring
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    _is_fixture(node) or node.name.startswith("pytest_")):  # type: ignore[arg-type]
                continue
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names and all(name.isupper() and name in used for name in names):
                    continue  # a constant a fixture or a hook reads
                if names == ["pytest_plugins"] or names == ["collect_ignore"] or names == ["collect_ignore_glob"]:
                    continue
            problems.append(f"{path}:{node.lineno}: {ast.unparse(node).splitlines()[0]}")
    assert problems == [], "move it to tests/support/ (a conftest holds fixtures and hooks):\n" + "\n".join(problems)


def test_the_layout_check_sees_both_kinds_of_offence() -> None:
    """The checks above read real imports: a relative and an absolute import of a conftest and of a test module."""
    here = Path("tests/reliability/test_x.py")
    for source in ("from ..conftest import GitRepo", "from .conftest import rng", "from tests.conftest import REPO_ROOT",
                   "from ..test_daemon import query", "import tests.test_daemon", "from tests import conftest"):
        (node,) = ast.parse(source).body
        assert any(_offending(name) for name in _imported(here, node)), source  # type: ignore[arg-type]
    for source in ("from ..support.git import GitRepo", "from tests.support.ports import free_port", "import pytest"):
        (node,) = ast.parse(source).body
        assert not any(_offending(name) for name in _imported(here, node)), source  # type: ignore[arg-type]
