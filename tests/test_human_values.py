"""Alert evidence and messages show values as a person reads them (issue 16, part 2)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from collectors.evidence import Evidence, Provenance
from daemon.alerting.notify import email
from daemon.changes import describe_evidence
from tests.support.alerts import message

AT = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _age(days: float, commit: str = "a" * 40) -> Evidence:
    return Evidence(source="repo", signal="file_age", params={"path": "docs/STATUS.md"},
                    value={"exists": True, "days": days, "last_commit": commit},
                    provenance=Provenance(commit=commit, path="docs/STATUS.md"), observed_at=AT)


@pytest.mark.parametrize("before,after,words", [
    (4.86737e-05, 12.4, "days under a day → 12 days"),
    (0.6, 1.4, "days 1 day → 1 day"),
    (30.0, 95.51, "days 30 days → 96 days"),
])
def test_file_ages_read_in_whole_days(before: float, after: float, words: str) -> None:
    change = describe_evidence(_age(before), _age(after, "b" * 40), field="days")
    assert change is not None and change.description.endswith(words), change
    assert "e-0" not in change.description


def test_other_numbers_have_no_exponent() -> None:
    old = Evidence(source="ci", signal="success_rate", params={}, value={"rate": 4.86737e-05}, observed_at=AT)
    new = old.model_copy(update={"value": {"rate": 0.125}})
    change = describe_evidence(old, new)
    assert change is not None and change.description.endswith("rate 0 → 0.12")


def test_message_times_carry_no_microseconds() -> None:
    started = datetime(2026, 3, 1, 8, 0, 5, 123456, tzinfo=timezone.utc)
    text = email.body(message(started_at=started))
    assert "Since: 2026-03-01T08:00:05Z" in text and "123456" not in text
