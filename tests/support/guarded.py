"""Code run in a fresh interpreter under a deadline: a test that fails, rather than hangs, on super-linear work."""

from __future__ import annotations

import json
import subprocess
import sys


def within(seconds: float, code: str) -> object:
    """Run `code` (which prints JSON) in a fresh interpreter; fail, rather than hang, past `seconds`.

    A subprocess, because a regex backtracking in C holds the GIL: a thread could not be timed out.
    """
    try:
        done = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still working after {seconds:g}s: parsing is not linear in line length") from None
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
