"""The command kind's models: :class:`CommandSource` and its signals' parameters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from collectors.evidence import SignalParams, signal_table
from collectors.regex import regex_param

__all__ = ["SIGNALS", "CommandSource", "ExitStatus", "StdoutNumber"]


class CommandSource(BaseModel):
    """A local command, run without a shell."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    kind: Literal["command"] = "command"
    id: str
    argv: list[str] = Field(min_length=1)
    cwd: str | None = None
    timeout_seconds: float = Field(default=60, gt=0)
    max_output_bytes: int = Field(default=1_000_000, gt=0)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("argv")
    @classmethod
    def _program(cls, value: list[str]) -> list[str]:
        if not value[0]:
            raise ValueError("argv[0] (the program) is empty")
        if any("\0" in arg for arg in value):
            raise ValueError("arguments cannot contain NUL characters")
        return value


class ExitStatus(SignalParams):
    signal: Literal["exit_status"] = "exit_status"
    default_field, default_transform = "success", "bool"


class StdoutNumber(SignalParams):
    signal: Literal["stdout_number"] = "stdout_number"
    regex: str  # the first group, or the whole match, is the number
    default_field, default_transform = "value", None

    _re2 = field_validator("regex")(lambda cls, v: regex_param(v))


SIGNALS = signal_table(ExitStatus, StdoutNumber)
