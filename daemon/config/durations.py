"""Durations as the configuration writes them: ``"15m"``, ``"12h"``, ``"7d"``, ``"2w"`` or seconds.

A leaf: it imports nothing from ``daemon``, so every model with a duration
field (schedules, retention, alert rules, settings) can use it at module level.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# A duration field of a configuration model, with an example for the generated schema.
Duration = Annotated[timedelta, Field(json_schema_extra={"examples": ["7d"]})]


def parse_duration(value: Any) -> timedelta:
    """``"15m"``, ``"12h"``, ``"7d"``, ``"2w"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"invalid duration {value!r}: use a number and a unit, e.g. 15m, 12h, 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_optional_duration(value: Any) -> timedelta | None:
    """A duration, or None where the configuration leaves it unset (``null``)."""
    return None if value is None else parse_duration(value)


__all__ = ["Duration", "parse_duration", "parse_optional_duration"]
