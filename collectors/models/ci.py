"""The CI signals' parameters, shared by the github and gitlab kinds."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from collectors.evidence import SignalParams

__all__ = ["LatestRun", "SuccessRate", "TestReport"]


class LatestRun(SignalParams):
    """The newest completed run: did it succeed?"""

    signal: Literal["latest_run"] = "latest_run"
    default_field, default_transform = "success", "bool"


class SuccessRate(SignalParams):
    """The share of the last `runs` completed runs that succeeded.

    Cancelled and skipped runs are left out of the denominator (they say nothing
    of the work) unless `count_cancelled`, which counts them as runs that did not succeed.
    """

    signal: Literal["success_rate"] = "success_rate"
    runs: int = Field(default=10, ge=1, le=100)
    count_cancelled: bool = False
    default_field, default_transform = "rate", "ratio"


class TestReport(SignalParams):
    """The test summary of the newest completed run (GitLab's pipeline test report)."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite its name
    signal: Literal["test_report"] = "test_report"
    default_field, default_transform = "pass_ratio", "ratio"
