"""Each language's own test lister, run as a subprocess over a folder: what the test runner itself would run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

_PARAMETERS = re.compile(r"\[.*\]$")


def pytest_functions(root: Path) -> set[str]:
    """The test functions ``pytest --collect-only -q`` lists under `root`, as node ids without parameter ids.

    A parametrised test (``test_x[1]``, ``test_x[2]``) is one function. Files are imported with
    ``--import-mode=importlib``, so test files of the same name in several folders need no ``__init__.py``.
    """
    (root / "pytest.ini").write_text("[pytest]\n")  # the tree's own root and settings, not ours
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
         "--rootdir", str(root), "-c", str(root / "pytest.ini"), str(root)],
        cwd=root, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {_PARAMETERS.sub("", line) for line in proc.stdout.splitlines() if "::" in line}


def go_tests(root: Path) -> list[str] | None:
    """The sorted names of the Test functions ``go test -list .`` lists in every package under `root` (a name
    once per package), or None without a Go toolchain. Benchmarks, fuzz tests and examples are left out."""
    go = shutil.which("go")
    if go is None:
        return None
    cache = root.parent / "go-cache"
    env = {**os.environ, "GOCACHE": str(cache / "build"), "GOPATH": str(cache / "path"), "GOFLAGS": "-mod=mod",
           "GOPROXY": "off", "GOTOOLCHAIN": "local"}
    proc = subprocess.run([go, "test", "-list", ".", "./..."], cwd=root, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return sorted(line.strip() for line in proc.stdout.splitlines() if line.startswith("Test"))
