"""A snapshot: the result of scoring one project at one time.

These models are the one shape shared by the scorer, the store, the CLI's
``--json`` and the HTTP API. Full precision throughout; rounding is display's
business (:mod:`daemon.scoring.arithmetic`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field, field_serializer

from collectors.evidence import CLOCK_FIELDS, Evidence, EvidenceError, canonical_json

Status = Literal["ok", "stale", "unknown", "manual", "not_applicable"]
Origin = Literal["collected", "backfilled", "imported"]


def rfc3339(moment: datetime) -> str:
    """UTC, seconds precision or finer, with a ``Z``: how every time is written."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class CheckResult(BaseModel):
    """One check of a criterion: the evidence field it read and its partial score."""

    source: str
    signal: str
    params: dict[str, Any] = Field(default_factory=dict)
    field: str
    transform: Any
    weight: float = 1.0
    value: Any = None
    score: float | None = None
    error: EvidenceError | None = None


class CriterionScore(BaseModel):
    id: str
    title: str
    weight: float = 1.0
    score: float | None
    status: Status
    reason: str | None = None
    # When the score was last computed from fresh evidence, if not in this snapshot
    # (set for stale criteria: their score is carried from that time).
    scored_at: datetime | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)

    @field_serializer("scored_at")
    def _time(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None


class PillarScore(BaseModel):
    id: str
    title: str
    weight: float = 1.0
    score: float | None
    coverage: float
    criteria: list[CriterionScore]


class SourceState(BaseModel):
    id: str
    kind: str
    answered: bool
    fingerprint: str | None = None
    error: EvidenceError | None = None


class Snapshot(BaseModel):
    id: int | None = None
    project: str
    taken_at: datetime
    # The last time the same state was observed again (a cheap repeat), if ever.
    last_seen_at: datetime | None = None
    rules_hash: str
    complete: bool
    overall: float | None
    pillars: list[PillarScore]
    sources: list[SourceState] = Field(default_factory=list)
    origin: Origin = "collected"

    @field_serializer("taken_at", "last_seen_at")
    def _time(self, value: datetime | None) -> str | None:
        return rfc3339(value) if value else None

    @property
    def seen_at(self) -> datetime:
        return self.last_seen_at or self.taken_at

    def criterion(self, pillar_id: str, criterion_id: str) -> CriterionScore | None:
        for pillar in self.pillars:
            if pillar.id == pillar_id:
                return next((c for c in pillar.criteria if c.id == criterion_id), None)
        return None

    def pillar(self, pillar_id: str) -> PillarScore | None:
        return next((p for p in self.pillars if p.id == pillar_id), None)

    def content_hash(self) -> str:
        """Equal hashes mean an equal state: the same scores and statuses from the same evidence.

        Values derived from the clock (:data:`~collectors.evidence.CLOCK_FIELDS`, e.g. a file's
        age in days) are left out: a later collection of the same state is a repeat whose ages
        are refreshed in place (see ``Store.save_snapshot``). Scores stay in, so an age that
        moves a score (``fresh_within_days``) makes a new snapshot.
        """
        body = self.model_dump(
            mode="json",
            exclude={
                "id": True,
                "taken_at": True,
                "last_seen_at": True,
                "pillars": {"__all__": {"criteria": {"__all__": {"evidence": {"__all__": {"observed_at"}}}}}},
            },
        )
        for pillar in body["pillars"]:
            for criterion in pillar["criteria"]:
                if clock_derived(criterion):
                    _drop_clock_values(criterion)
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def clock_derived(criterion: dict[str, Any] | CriterionScore) -> bool:
    """Whether a criterion (a model or its JSON) reads a value derived from the clock."""
    checks = criterion["checks"] if isinstance(criterion, dict) else criterion.checks
    return any((c["signal"] if isinstance(c, dict) else c.signal) in CLOCK_FIELDS for c in checks)


def _drop_clock_values(criterion: dict[str, Any]) -> None:
    for check in criterion["checks"]:
        if check["field"] in CLOCK_FIELDS.get(check["signal"], ()):
            check["value"] = None
    for item in criterion["evidence"]:
        clock = CLOCK_FIELDS.get(item["signal"], frozenset())
        if item["value"] is not None and clock:
            item["value"] = {k: v for k, v in item["value"].items() if k not in clock}
