"""The junit kind's signal parameters (its source model, which names CI artifacts, is in :mod:`collectors.junit`)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from collectors.evidence import SignalParams, signal_table
from collectors.regex import regex_param

__all__ = ["SIGNALS", "Tests"]


def _regex(value: str | None) -> str | None:
    return None if value is None else regex_param(value)


class Tests(SignalParams):
    """Test outcomes, optionally only of the test cases matching regexes."""

    default_field, default_transform = "pass_ratio", "ratio"
    signal: Literal["tests"] = "tests"
    suite: str | None = None  # searched in the nearest enclosing <testsuite> name
    classname: str | None = None
    name: str | None = None

    _compiles = field_validator("suite", "classname", "name")(_regex)


SIGNALS = signal_table(Tests)
