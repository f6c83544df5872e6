"""The APScheduler triggers of a schedule (:meth:`daemon.config.schedule.Schedule.trigger`).

Apart from :mod:`daemon.config.schedule` so that the configuration's models do
not import APScheduler: only the daemon, and the validation of a cron
schedule, make a trigger.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["AnchoredInterval", "anchored_interval", "cron"]


def anchored_interval(anchor: datetime, every: timedelta, zone: ZoneInfo, jitter: int | None) -> AnchoredInterval:
    """Every `every` from `anchor`, jittered up to `jitter` seconds."""
    grid = IntervalTrigger(seconds=every.total_seconds(), start_date=anchor, timezone=zone)
    return AnchoredInterval(anchor, grid, every, jitter)


def cron(fields: dict[str, str], zone: ZoneInfo, jitter: int | None) -> CronTrigger:
    """APScheduler's cron trigger of `fields` (minute, hour, day, month, day_of_week)."""
    return CronTrigger(**fields, timezone=zone, jitter=jitter)


class AnchoredInterval(BaseTrigger):
    """An anchored interval whose runs stay on the grid, with jitter that never carries over.

    APScheduler 3's IntervalTrigger counts the next run from the previous
    one, wherever that was: delays of a jittered run add up until due times
    are skipped, and after the daemon's catch-up run at start (at "now", off
    the grid) every later run fired that far after its due time, so a run
    late by the rest of the interval claimed the next due time and the next
    run found it collected.
    """

    def __init__(self, anchor: datetime, grid: IntervalTrigger, every: timedelta, jitter: int | None):
        self.anchor, self.grid, self.every, self.jitter = anchor, grid, every, jitter

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        due = None
        if previous_fire_time is not None:  # back to the grid (jitter is shorter than the interval)
            due = self.anchor + ((previous_fire_time - self.anchor) // self.every) * self.every
        return self._apply_jitter(self.grid.get_next_fire_time(due, now), self.jitter, now)

    def __str__(self) -> str:
        return f"{self.grid} with jitter {self.jitter}s" if self.jitter else str(self.grid)
