"""Alert messages and outbox items to deliver in the notify tests, and a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from daemon.alerting.rules import AlertMessage, OutboxItem
from daemon.changes import CriterionChange, EvidenceChange

T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)


def message(event: str = "firing", *, project: str = "shop", subject: str = "pillar:durability",
            severity: str = "warning", kind: str = "regression", **extra: object) -> AlertMessage:
    fields: dict[str, object] = dict(
        event=event, project=project, subject=subject, kind=kind, severity=severity,
        title="Durability fell from 91% to 74%",
        summary="Durability fell from 91% to 74%.\nA drop of 17 points since 2026-03-01T08:00:00Z.",
        baseline=91.0, value=74.0, baseline_display="91%", value_display="74%",
        criteria=[CriterionChange(pillar="durability", criterion="restart", title="Survives a restart",
                                  before=1.0, after=0.0, status_before="pass", status_after="fail")],
        evidence=[EvidenceChange(source="ci", signal="workflow", description="workflow durability.yml: success → failure, run 4812",
                                 url="https://ci.example.org/runs/4812"),
                  EvidenceChange(source="repo", signal="file", description="tests/test_restart.py deleted in 3f2a1c9", commit="3f2a1c9")],
        snapshot_id=42, started_at=datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc),
        ended_at=None, fingerprint="a1b2c3d4e5f60718", links=["https://ci.example.org/runs/4812"],
    )
    fields.update(extra)
    if event == "resolved" and "ended_at" not in extra:
        fields["ended_at"] = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
    return AlertMessage.model_validate(fields)


def outbox_item(channel: str, key: str, *, created_at: datetime = T0, **extra: object) -> OutboxItem:
    return OutboxItem(channel=channel, idempotency_key=key, message=message(**extra),  # type: ignore[arg-type]
                      created_at=created_at, next_attempt_at=created_at)


class Clock:
    """A fake clock the test moves by hand."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def to(self, moment: datetime) -> datetime:
        self.now = max(self.now, moment)
        return self.now
