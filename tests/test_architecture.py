"""The architecture of docs/ARCHITECTURE.md, guarded by the suite: import-linter's
contracts (pyproject.toml), ruff, and the size of a module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("daemon", "collectors")
MAX_LINES = 400
REASON = "Over 400 lines:"  # how an opening docstring says why a module is longer


def _tool(name: str) -> str:
    beside = Path(sys.executable).with_name(name)  # the venv's own, wherever PATH points
    return str(beside) if beside.exists() else name


def test_import_linter_contracts_are_kept():
    done = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and " KEPT" in done.stdout


def test_ruff_is_clean():
    done = subprocess.run([_tool("ruff"), "check", "--no-cache", "--output-format=concise", *PACKAGES, "tests", "bench"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_a_long_module_says_why_in_its_opening_docstring(path: Path):
    source = path.read_text()
    lines = source.count("\n")
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(source)) or ""
    assert REASON in doc, f"{path.relative_to(REPO)} has {lines} lines: split it, or say why after {REASON!r} in its docstring"


def _explained(lines: list[str], index: int) -> bool:
    """A comment on the import, or on the block of imports (and comments) just above it."""
    while index >= 0:
        line = lines[index].strip()
        if "#" in line:
            return True
        if not line.startswith(("import ", "from ")):
            return False
        index -= 1
    return False


def test_no_import_inside_a_function_dodges_a_cycle():
    """A function-level import must say why (start-up speed, an optional dependency) in a comment."""
    unexplained = []
    for path in _modules():
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)) and not _explained(lines, inner.lineno - 1):
                    unexplained.append(f"{path.relative_to(REPO)}:{inner.lineno}")
    assert not unexplained, f"imports inside functions without a comment saying why: {unexplained}"
