"""When a source is due: `every: 15m` or a cron expression, in a timezone.

Due times are deterministic (intervals are anchored at a fixed instant, cron
follows the wall clock of its timezone across DST changes), so a due time can
be claimed in the database and never collected twice, even across restarts.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from daemon.config.durations import parse_duration, parse_optional_duration

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

# Intervals count from here, so that every process computes the same due times.
ANCHOR = datetime(2000, 1, 3, tzinfo=timezone.utc)  # a Monday, midnight UTC
_LOOKBACKS = (timedelta(hours=1), timedelta(days=1), timedelta(days=32), timedelta(days=367))


class Schedule(BaseModel):
    """``every: 15m`` or ``cron: "0 9 * * 1-5"``; written alone, ``"15m"`` or ``"0 9 * * *"``."""

    model_config = ConfigDict(extra="forbid")

    every: timedelta | None = None
    cron: str | None = None
    timezone: str = "UTC"
    jitter: timedelta = timedelta(0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            try:
                return {"every": parse_duration(value)}
            except ValueError:
                return {"cron": value}
        return value

    @field_validator("every", "jitter", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_optional_duration(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of every or cron")
        if self.every is not None and self.every < timedelta(seconds=1):
            raise ValueError("every must be at least 1s")
        if self.jitter < timedelta(0):
            raise ValueError("jitter must not be negative")
        if self.every is not None and self.jitter >= self.every:
            # A run jittered past the next due time would be taken for that one.
            raise ValueError("jitter must be shorter than the interval")
        if self.cron is not None:
            try:
                self.trigger()
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {self.cron!r}: {exc}") from None
        return self

    def describe(self) -> str:
        return f"every {self.every}" if self.every is not None else f"cron {self.cron!r} ({self.timezone})"

    def trigger(self, *, jitter: bool = True) -> BaseTrigger:
        """The APScheduler trigger for this schedule."""
        # APScheduler loads when a trigger is made (the daemon, a cron schedule's validation), not with the
        # configuration's models: start-up time of the commands that only read.
        from daemon.config.triggers import anchored_interval, cron

        seconds = int(self.jitter.total_seconds()) if jitter and self.jitter else None
        zone = ZoneInfo(self.timezone)
        if self.every is not None:
            return anchored_interval(ANCHOR, self.every, zone, seconds)
        return cron(_cron_fields(str(self.cron)), zone, seconds)

    def latest_due(self, now: datetime) -> datetime:
        """The latest due time not after ``now`` (jitter aside)."""
        if self.every is not None:
            periods = (now - ANCHOR) // self.every
            return ANCHOR + periods * self.every
        trigger = self.trigger(jitter=False)
        for lookback in _LOOKBACKS:
            fire = trigger.get_next_fire_time(None, now - lookback)
            latest = None
            while fire is not None and fire <= now:
                latest = fire
                # Step in UTC: wall-clock arithmetic in the zone would lose which of
                # two ambiguous times (the hour repeated when clocks go back) this is.
                utc = fire.astimezone(timezone.utc)
                fire = trigger.get_next_fire_time(utc, utc + timedelta(microseconds=1))
            if latest is not None:
                return latest.astimezone(timezone.utc)
        return now  # a cron that never fired in a year: treat as due now

    def next_due(self, now: datetime) -> datetime:
        """The first due time after ``now`` (jitter aside)."""
        fire = self.trigger(jitter=False).get_next_fire_time(None, now + timedelta(microseconds=1))
        assert fire is not None
        return fire.astimezone(timezone.utc)


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _cron_fields(expression: str) -> dict[str, str]:
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": _weekdays(weekday)}


def _weekdays(field: str) -> str:
    """Crontab weekday numbers (0 or 7 = Sunday) as names.

    APScheduler 3 numbers weekdays from Monday = 0, unlike crontab; names mean
    the same to both, so `1-5` stays Monday to Friday.
    """
    if field == "*":
        return field
    days: list[str] = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _day_number(a), _day_number(b)
        else:
            first = _day_number(span)
            last = 6 if step else first
        if last < first:
            raise ValueError(f"weekday range {span!r} runs backwards")
        for n in range(first, last + 1, int(step) if step else 1):
            if _DAYS[n] not in days:
                days.append(_DAYS[n])
    return ",".join(days)


def _day_number(text: str) -> int:
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    if text.lower()[:3] in _DAYS:
        return _DAYS.index(text.lower()[:3])
    raise ValueError(f"invalid weekday {text!r}")
