"""Retention: which old snapshots to keep, decided by a pure function.

History is thinned in tiers by a snapshot's age (``now - taken_at``)::

    age <  keep_all                 every snapshot            tier "keep_all"
    keep_all  <= age < daily_for    the latest of each day    tier "daily"
    daily_for <= age < weekly_for   the latest of each week   tier "weekly"
    weekly_for <= age < monthly_for the latest of each month  tier "monthly"
    monthly_for <= age              none                      tier "expired"

(``monthly_for: null``, the default, means the monthly tier never ends.)

Precisely:

- Buckets are calendar periods in UTC: a day is a UTC date; a week is an ISO
  week (Monday to Sunday) *cut at month ends*, so a week that straddles two
  months is two buckets; a month is a calendar month. Every bucket lies
  inside one bucket of each coarser kind (day in week in month).
- A snapshot outside the ``keep_all`` tier is kept when it is the latest of
  its bucket among *all* the project's snapshots, whatever their tiers:
  a bucket that straddles a tier boundary is represented once, by its latest
  snapshot, which the finer (younger) tier already keeps. "Latest" orders by
  ``(taken_at, id)``, so equal times are decided by the id and the plan does
  not depend on the order of its input.
- Always kept, whatever the tier: the project's latest snapshot and every id
  in ``protected`` (the store passes the snapshots open alerts and undelivered
  alert messages refer to). Pinned snapshots do not displace the latest of
  their bucket, which is kept as well.
- Imported and backfilled snapshots are history that cannot be collected
  again, so by default (``backfilled: keep``, ``imported: keep``) the store
  passes them as ``protected`` and every one is kept. With ``tiers`` they are
  judged by their ``taken_at`` like any other; a backfilled snapshot later in a
  day than the one kept replaces it.

Consequences the tests check: planning again on what was kept removes nothing;
and because tiers only coarsen with age and buckets nest, pruning every day
keeps exactly what pruning once, later, would keep (the result does not depend
on how often pruning ran).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.config.durations import parse_optional_duration

__all__ = ["TIERS", "RetentionPlan", "RetentionPolicy", "Tier", "plan"]

OriginRetention = Literal["keep", "tiers"]
Tier = Literal["keep_all", "daily", "weekly", "monthly", "expired"]
TIERS: tuple[Tier, ...] = ("keep_all", "daily", "weekly", "monthly", "expired")


class RetentionPolicy(BaseModel):
    """The configuration's `retention:` block."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="the daemon prunes once a day (`pillarwatch prune` works either way)")
    keep_all: timedelta = Field(default=timedelta(days=30), description="snapshots younger than this are all kept")
    daily_for: timedelta = Field(default=timedelta(days=90), description="up to this age, the latest of each UTC day")
    weekly_for: timedelta = Field(default=timedelta(days=365), description="up to this age, the latest of each week")
    monthly_for: timedelta | None = Field(default=None, description="up to this age, the latest of each month; null: forever")
    backfilled: OriginRetention = Field(default="keep", description=(
        "backfilled snapshots: `keep` every one (backfill cannot bring back what was pruned), or thin them by the same `tiers`"))
    imported: OriginRetention = Field(default="keep", description=(
        "imported snapshots: `keep` every one (import cannot bring back what was pruned), or thin them by the same `tiers`"))
    runs_for: timedelta = Field(default=timedelta(days=30), description=(
        "the schedule's record of each run (one row per source and due time) is kept this long, then folded into "
        "per-source totals that the metrics' counters go on from; each source's latest run stays"))

    @field_validator("keep_all", "daily_for", "weekly_for", "monthly_for", "runs_for", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_optional_duration(value)

    @model_validator(mode="after")
    def _ordered(self) -> RetentionPolicy:
        for name in ("keep_all", "runs_for"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        bounds = [("keep_all", self.keep_all), ("daily_for", self.daily_for), ("weekly_for", self.weekly_for)]
        if self.monthly_for is not None:
            bounds.append(("monthly_for", self.monthly_for))
        for (shorter, a), (longer, b) in pairwise(bounds):
            if b < a:
                raise ValueError(f"{longer} ({_days(b)}) must not be shorter than {shorter} ({_days(a)})")
        return self

    def kept_origins(self) -> tuple[str, ...]:
        """The origins of snapshots kept whatever their age (``backfilled``, ``imported``)."""
        return tuple(o for o in ("backfilled", "imported") if getattr(self, o) == "keep")

    def tier_of(self, age: timedelta) -> Tier:
        """The tier a snapshot of this age is in (a snapshot from the future is ``keep_all``)."""
        if age < self.keep_all:
            return "keep_all"
        if age < self.daily_for:
            return "daily"
        if age < self.weekly_for:
            return "weekly"
        if self.monthly_for is None or age < self.monthly_for:
            return "monthly"
        return "expired"

    def spans(self) -> dict[Tier, str]:
        """Each tier's range of ages, for people: ``{"daily": "30d-90d", ...}``."""
        monthly = f"{_days(self.weekly_for)}-{_days(self.monthly_for)}" if self.monthly_for is not None else f">={_days(self.weekly_for)}"
        return {
            "keep_all": f"<{_days(self.keep_all)}",
            "daily": f"{_days(self.keep_all)}-{_days(self.daily_for)}",
            "weekly": f"{_days(self.daily_for)}-{_days(self.weekly_for)}",
            "monthly": monthly,
            "expired": f">={_days(self.monthly_for)}" if self.monthly_for is not None else "never",
        }


@dataclass(frozen=True)
class RetentionPlan:
    """What to keep and what to remove of one project's snapshots.

    ``tiers`` gives each snapshot's tier; ``pinned`` the kept snapshots the
    tiers alone would remove (the latest, or protected).
    """

    keep: frozenset[int]
    remove: frozenset[int]
    tiers: Mapping[int, Tier] = field(default_factory=dict)
    pinned: frozenset[int] = frozenset()

    def summary(self) -> dict[Tier, dict[str, int]]:
        """Per tier, how many snapshots are kept and removed."""
        counts: dict[Tier, dict[str, int]] = {t: {"kept": 0, "removed": 0} for t in TIERS}
        for sid, tier in self.tiers.items():
            counts[tier]["kept" if sid in self.keep else "removed"] += 1
        return counts


def plan(
    snapshots: Iterable[tuple[int, datetime]],
    *,
    now: datetime,
    policy: RetentionPolicy,
    protected: Iterable[int] = (),
) -> RetentionPlan:
    """Decide which of one project's snapshots ``(id, taken_at)`` to keep (see the module docstring)."""
    items = sorted(((_utc(taken_at), sid) for sid, taken_at in snapshots), reverse=True)  # latest first
    now = _utc(now)
    guarded = set(protected)
    if items:
        guarded.add(items[0][1])  # the project's latest state
    tiers: dict[int, Tier] = {}
    by_tier: set[int] = set()
    seen: set[tuple[Any, ...]] = set()  # buckets whose latest snapshot has been met
    for taken_at, sid in items:
        tier = policy.tier_of(now - taken_at)
        tiers[sid] = tier
        day = taken_at.date()
        # Each bucket's latest is met first (latest-first order), whatever its tier.
        buckets = {"daily": ("d", day), "weekly": ("w", *_week(day)), "monthly": ("m", day.year, day.month)}
        latest_of = {kind: key not in seen for kind, key in buckets.items()}
        seen.update(buckets.values())
        if tier == "keep_all" or latest_of.get(tier, False):
            by_tier.add(sid)
    keep = by_tier | (guarded & tiers.keys())
    return RetentionPlan(
        keep=frozenset(keep),
        remove=frozenset(tiers.keys() - keep),
        tiers=tiers,
        pinned=frozenset(keep - by_tier),
    )


def _week(day: date) -> tuple[int, int, int, int]:
    """An ISO week cut at the month's end: (year, month, ISO year, ISO week)."""
    iso = day.isocalendar()
    return (day.year, day.month, iso.year, iso.week)


def _utc(moment: datetime) -> datetime:
    """Naive times are UTC, as everywhere in pillarwatch."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _days(span: timedelta) -> str:
    """``30d``, ``12h``, ``90s``: a duration as the configuration writes it."""
    seconds = span.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
