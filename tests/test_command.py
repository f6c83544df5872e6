"""Command collector with real processes."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from collectors.command import SIGNALS, CommandSource, collect
from collectors.evidence import EvidenceRequest

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
EXIT = EvidenceRequest(signal="exit_status")


def _number(regex: str) -> EvidenceRequest:
    return EvidenceRequest(signal="stdout_number", params={"regex": regex})


def _run(argv: list[str], *requests: EvidenceRequest, allow_commands: bool = True, **settings: object):
    source = CommandSource(id="cmd", argv=argv, **settings)
    return collect(source, list(requests) or [EXIT], now=NOW, allow_commands=allow_commands)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_exit_status_is_a_value():
    result = _run(["sh", "-c", "exit 3"])
    assert result.answered and result.fingerprint
    assert result.evidence[0].value == {"code": 3, "success": False}
    assert _run(["true"]).evidence[0].value == {"code": 0, "success": True}


def test_stdout_number_takes_the_first_group_or_the_whole_match():
    argv = _python("print('tests: 41 passed\\ncoverage: 87.5%\\nduration 3s')")
    result = _run(argv, EXIT, _number(r"coverage: ([\d.]+)%"), _number(r"(\d+) passed"), _number(r"^duration (\d+)s$"))
    assert [e.value for e in result.evidence] == [
        {"code": 0, "success": True}, {"value": 87.5}, {"value": 41.0}, {"value": 3.0}
    ]


def test_stdout_number_faults_are_per_item():
    result = _run(_python("print('version: abc, ratio: nan')"), EXIT, _number(r"coverage (\d+)"),
                  _number(r"version: (\w+)"), _number(r"ratio: (\w+)"), _number("("),
                  EvidenceRequest(signal="stderr_number"))
    assert result.answered and result.evidence[0].ok
    assert [e.error.kind for e in result.evidence[1:]] == ["not_found", "malformed", "malformed", "malformed",
                                                           "unsupported"]


def test_a_hanging_command_times_out_fast():
    started = time.monotonic()
    result = _run(["sleep", "5"], EXIT, timeout_seconds=0.3)
    assert time.monotonic() - started < 2
    assert result.error.kind == "timeout" and result.error.retryable


def test_a_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    result = _run(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"], timeout_seconds=0.5)
    assert result.error.kind == "timeout"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.02)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie waiting for its reaper is dead


def test_endless_output_is_cut_at_the_cap_fast():
    started = time.monotonic()
    result = _run(["yes"], EXIT, _number("y"), max_output_bytes=10_000, timeout_seconds=10)
    assert time.monotonic() - started < 2
    assert result.error.kind == "malformed" and "10000 bytes" in result.error.message


def test_output_at_the_cap_is_fine():
    result = _run(_python("import sys; sys.stdout.write('7' * 100)"), _number(r"\d+"), max_output_bytes=100)
    assert result.evidence[0].value == {"value": float("7" * 100)}


def test_disabled_commands_run_nothing(tmp_path):
    marker = tmp_path / "ran"
    argv = _python(f"open({str(marker)!r}, 'w').close()")
    result = _run(argv, EXIT, _number("x"), allow_commands=False)
    assert not marker.exists()
    assert [e.error.kind for e in result.evidence] == ["unsupported", "unsupported"]
    assert result.error.message == "commands are disabled; set allow_commands: true"
    _run(argv, allow_commands=True)
    assert marker.exists()  # the same command, allowed, does create the file


def test_a_missing_executable_is_not_found(tmp_path):
    assert _run(["pillarwatch-no-such-program"]).error.kind == "not_found"
    assert _run(["true"], cwd=str(tmp_path / "missing")).error.kind == "not_found"


def test_permission_denied_is_unsupported(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = _run([str(script)])
    assert result.error.kind == "unsupported" and "permission denied" in result.error.message


def test_no_shell_no_stdin_env_and_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("PW_INHERITED", "1")
    code = (f"import os, sys; assert sys.stdin.read() == ''; assert os.path.samefile(os.getcwd(), {str(tmp_path)!r});"
            "print(sys.argv[1]); print(os.environ['PW_ADDED'], os.environ['PW_INHERITED'])")
    result = _run(_python(code) + ["$(touch injected)"], EXIT, _number(r"^(\d+) 1$"), cwd=str(tmp_path),
                  env={"PW_ADDED": "42"})
    assert [e.value for e in result.evidence] == [{"code": 0, "success": True}, {"value": 42.0}]
    assert not (tmp_path / "injected").exists()  # the argument reached python verbatim, no shell saw it


def test_source_validation():
    with pytest.raises(ValidationError):
        CommandSource(id="cmd", argv=[])
    with pytest.raises(ValidationError):
        CommandSource(id="cmd", argv=[""])
    with pytest.raises(ValidationError):
        CommandSource(id="cmd", argv=["true"], shell=True)


def test_signal_models_carry_defaults():
    assert {name: (m.default_field, m.default_transform) for name, m in SIGNALS.items()} == {
        "exit_status": ("success", "bool"),
        "stdout_number": ("value", None),
    }
