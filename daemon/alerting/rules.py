"""Alerts: what the configuration asks, what is open, and the message sent.

Three models flow through alerting:

- :class:`~daemon.config.alerts.AlertRules` (configuration, in the config room):
  when a pillar's drop is a regression.
- :class:`Alert` (state, stored): one alert per project, subject and kind,
  ``pending`` -> ``firing`` -> ``resolved``; at most one that is not resolved.
- :class:`AlertMessage` (sent): a channel-independent description of one
  event (``firing``, ``reminder`` or ``resolved``) that every channel renders.

Evaluation (:mod:`daemon.alerting.evaluate`) is pure; delivery (:mod:`daemon.alerting.notify`)
reads messages from the durable outbox in the store.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_serializer

from daemon.changes import CriterionChange, EvidenceChange
from daemon.config.alerts import EventKind, Severity
from daemon.scoring.snapshot import rfc3339

AlertKind = Literal["regression", "floor", "source_failing"]
AlertState = Literal["pending", "firing", "resolved"]


class Alert(BaseModel):
    """The state of one alert, as the store keeps it."""

    id: int | None = None
    project: str
    subject: str  # "overall", "pillar:<id>" or "source:<id>"
    kind: AlertKind
    state: AlertState
    severity: Severity = "warning"
    baseline: float | None = None  # the figure before the drop (or the floor)
    value: float | None = None  # the latest figure
    # The lowest figure since it started, and when: a resolved message says how low it went.
    low: float | None = None
    low_at: datetime | None = None
    # A regression's baseline: the snapshot it came from and the rules it is scored under,
    # so a change of rules re-scores it (None: an alert stored before these were kept).
    baseline_snapshot_id: int | None = None
    baseline_rules_hash: str | None = None
    pending_count: int = 0
    started_at: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    snapshot_id: int | None = None
    criteria: list[CriterionChange] = Field(default_factory=list)
    evidence: list[EvidenceChange] = Field(default_factory=list)

    @field_serializer("started_at", "fired_at", "resolved_at", "last_notified_at", "low_at")
    def _time(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None

    @property
    def fingerprint(self) -> str:
        """Stable across the alert's life: Alertmanager's grouping identity."""
        return hashlib.sha256(f"{self.project}\0{self.subject}\0{self.kind}".encode()).hexdigest()[:16]


class AlertMessage(BaseModel):
    """One event of one alert, ready for any channel to render."""

    event: EventKind
    project: str
    subject: str
    kind: AlertKind
    severity: Severity
    title: str  # "Durability fell from 91% to 74%"
    summary: str  # several lines: what moved and why
    baseline: float | None
    value: float | None
    baseline_display: str
    value_display: str
    low: float | None = None  # the lowest figure while it was open (a resolved message says so)
    low_at: datetime | None = None
    low_display: str = ""
    notes: list[str] = Field(default_factory=list)  # the summary's lines above its criteria and evidence
    criteria: list[CriterionChange] = Field(default_factory=list)
    evidence: list[EvidenceChange] = Field(default_factory=list)
    snapshot_id: int | None = None
    started_at: datetime
    ended_at: datetime | None = None
    fingerprint: str
    links: list[str] = Field(default_factory=list)

    @field_serializer("started_at", "ended_at", "low_at")
    def _time(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None


class OutboxItem(BaseModel):
    """One message for one channel, delivered at least once."""

    id: int | None = None
    alert_id: int | None = None
    channel: str
    idempotency_key: str
    message: AlertMessage
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    state: Literal["pending", "delivered", "dead", "disabled", "superseded"] = "pending"
    last_error: str | None = None
    delivered_at: datetime | None = None
