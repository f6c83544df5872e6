"""`pillarwatch ...` as a user runs it: ``python -m daemon.cli`` in a subprocess, with a deadline."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_cli(*args: str, cwd: Path, code: int | None = 0, timeout: float = 120,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``pillarwatch ARGS`` in ``cwd``; unless ``code`` is None, assert it exits ``code`` without a traceback."""
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if code is not None:
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def pillarwatch(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``pillarwatch ARGS --config pw.yaml`` in ``cwd``, whatever it exits with."""
    return run_cli(*args, "--config", "pw.yaml", cwd=cwd, code=None, timeout=timeout)
