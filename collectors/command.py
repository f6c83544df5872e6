"""Local command (opt-in): its exit status and a number printed on its stdout.

The command runs without a shell, with no stdin, in its own process group
(so that a timeout kills whatever it started too), and its output is read up
to ``max_output_bytes`` and no further. Nothing runs unless the configuration
says ``allow_commands: true``.
"""

from __future__ import annotations

import hashlib
import math
import os
import selectors
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from collectors.evidence import (
    CollectResult,
    EvidenceError,
    EvidenceRequest,
    Provenance,
    SourceFault,
    answer,
    failed,
    signal_params,
)
from collectors.gitrepo import GitSource
from collectors.models.command import SIGNALS, CommandSource, ExitStatus, StdoutNumber
from collectors.regex import compile_regex

__all__ = ["SIGNALS", "CommandSource", "ExitStatus", "StdoutNumber", "collect"]

_CHUNK = 64 * 1024
_TICK = 0.05  # how often a silent command is checked for having exited
_DISABLED = "commands are disabled; set allow_commands: true"


def _start(source: CommandSource) -> subprocess.Popen[bytes]:
    program = source.argv[0]
    if source.cwd is not None and not Path(source.cwd).is_dir():
        raise SourceFault("not_found", f"working folder not found: {source.cwd}")
    try:
        return subprocess.Popen(
            source.argv, cwd=source.cwd, env={**os.environ, **source.env}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    except FileNotFoundError:
        raise SourceFault("not_found", f"command not found: {program}") from None
    except PermissionError:
        raise SourceFault("unsupported", f"permission denied running {program} (not executable?)") from None
    except OSError as exc:  # e.g. exec format error
        raise SourceFault("unsupported", f"cannot run {program}: {exc.strerror or exc}") from None


def _kill(process: subprocess.Popen[bytes]) -> None:
    # The leader is not reaped yet, so its pid still names our process group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _run(source: CommandSource) -> tuple[int, bytes]:
    """(exit code, stdout); raises SourceFault for timeout, oversize output, or no start."""
    deadline = time.monotonic() + source.timeout_seconds
    limit, program = source.max_output_bytes, source.argv[0]
    process = _start(source)
    assert process.stdout is not None
    out = bytearray()
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SourceFault("timeout", f"{program}: timed out after {source.timeout_seconds:g}s", retryable=True)
                if not selector.select(min(left, _TICK)):
                    # Silent: it may have exited while a child it left behind holds stdout open.
                    if process.poll() is not None:
                        break
                    continue
                chunk = os.read(process.stdout.fileno(), min(_CHUNK, limit + 1 - len(out)))
                if not chunk:
                    break
                out += chunk
                if len(out) > limit:
                    raise SourceFault("malformed", f"{program}: output is larger than {limit} bytes (max_output_bytes)")
        try:
            code = process.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:  # it closed stdout but kept running
            raise SourceFault("timeout", f"{program}: timed out after {source.timeout_seconds:g}s", retryable=True) from None
    finally:
        if process.poll() is None:
            _kill(process)
        process.stdout.close()
    return code, bytes(out)


def _value(request: EvidenceRequest, code: int, text: str) -> dict[str, Any]:
    params = signal_params("command", SIGNALS, request)
    if isinstance(params, ExitStatus):
        return {"code": code, "success": code == 0}
    assert isinstance(params, StdoutNumber)
    regex = compile_regex(params.regex, multiline=True)
    match = regex.search(text)
    if match is None:
        raise SourceFault("not_found", f"no match for {params.regex!r} in the command's output")
    found = (match.group(1) if regex.groups else match.group(0)) or ""  # an unmatched group is None
    try:
        number = float(found.strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):  # NaN and infinity have no place in evidence JSON
        raise SourceFault("malformed", f"{found[:80]!r} (matched by {params.regex!r}) is not a number")
    return {"value": number}


def collect(
    source: CommandSource,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path | None = None,
    repo: GitSource | None = None,
    commit: str | None = None,
    previous: CollectResult | None = None,
    allow_commands: bool = False,
) -> CollectResult:
    """Run the command once (if `allow_commands`) and answer every request; never raises for source faults.

    The other keywords are not used.
    """
    if not allow_commands:
        return failed(source.id, requests, EvidenceError(kind="unsupported", message=_DISABLED), now=now)
    try:
        code, out = _run(source)
    except SourceFault as fault:
        return failed(source.id, requests, fault.error, now=now)
    text = out.decode("utf-8", errors="replace")
    evidence = [answer(source.id, request, now, lambda request=request: (_value(request, code, text), Provenance())) for request in requests]
    fingerprint = hashlib.sha256(f"{code}\0".encode() + out).hexdigest()
    return CollectResult(source=source.id, evidence=evidence, fingerprint=fingerprint)
