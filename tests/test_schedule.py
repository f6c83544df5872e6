"""Schedules: anchored intervals, cron in a timezone across DST, crontab weekdays, jitter, bad input."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from daemon.config.loading import load_config
from daemon.config.schedule import ANCHOR, Schedule
from daemon.errors import ConfigError

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
US = timedelta(microseconds=1)
T = TypeVar("T")

# 2026's changes in the EU: the last Sunday of March (clocks go 02:00 -> 03:00 CEST)
# and the last Sunday of October (clocks go 03:00 CEST -> 02:00 CET).
SPRING = date(2026, 3, 29)
AUTUMN = date(2026, 10, 25)


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


def due_times(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` due times after ``start``, each asked from the one before."""
    out: list[datetime] = []
    moment = start
    for _ in range(count):
        moment = schedule.next_due(moment)
        out.append(moment)
    return out


def scheduler_fire_times(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    """Fire times chained the way APScheduler 3's scheduler chains them: each from the previous (jittered) one."""
    trigger = schedule.trigger()
    fire = trigger.get_next_fire_time(None, start)
    out = []
    for _ in range(count):
        assert fire is not None
        out.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(fire, fire)
    return out


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in this (main) thread if the block runs longer than ``seconds``."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def within(seconds: float, work: Callable[[], T]) -> T:
    with time_limit(seconds):
        return work()


# --- the shorthand -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "every", "cron"),
    [
        ("15m", timedelta(minutes=15), None),
        ("2h", timedelta(hours=2), None),
        (900, timedelta(seconds=900), None),
        ("0 9 * * 1-5", None, "0 9 * * 1-5"),
        ("*/10 * * * *", None, "*/10 * * * *"),
    ],
)
def test_a_schedule_written_alone_is_an_interval_or_a_cron_expression(written: Any, every: timedelta | None, cron: str | None):
    schedule = Schedule.model_validate(written)
    assert (schedule.every, schedule.cron, schedule.timezone, schedule.jitter) == (every, cron, "UTC", timedelta(0))


# --- intervals: anchored, the same whenever asked --------------------------------------------


def test_every_15m_is_due_on_the_quarter_hours_utc():
    schedule = Schedule.model_validate("15m")
    assert schedule.latest_due(at(2026, 5, 5, 12, 7, 31)) == at(2026, 5, 5, 12, 0)
    assert schedule.next_due(at(2026, 5, 5, 12, 7, 31)) == at(2026, 5, 5, 12, 15)
    # Asked from an odd moment, the due times still fall on :00, :15, :30 and :45.
    times = due_times(schedule, at(2026, 5, 5, 12, 7, 31, 123456), 8)
    assert [t.strftime("%H:%M:%S.%f") for t in times[:4]] == ["12:15:00.000000", "12:30:00.000000", "12:45:00.000000", "13:00:00.000000"]
    assert {(t.minute, t.second, t.microsecond) for t in times} <= {(0, 0, 0), (15, 0, 0), (30, 0, 0), (45, 0, 0)}


def test_an_interval_that_does_not_divide_the_hour_counts_from_the_anchor():
    schedule = Schedule.model_validate("7m")
    for now in (at(2026, 5, 5, 12, 7, 31), at(2026, 11, 2, 23, 59, 59, 999999), ANCHOR + timedelta(days=9000, seconds=1)):
        latest = schedule.latest_due(now)
        assert (latest - ANCHOR) % timedelta(minutes=7) == timedelta(0)
        assert latest <= now < schedule.next_due(now)
        assert schedule.next_due(now) - latest == timedelta(minutes=7)


@pytest.mark.parametrize("every", ["15m", "7m", "13s", "25h", "2w"])
def test_interval_due_times_are_the_same_whatever_moment_they_are_asked_from(every: str):
    schedule = Schedule.model_validate(every)
    step = schedule.every
    assert step is not None
    due = schedule.latest_due(at(2026, 6, 1, 12, 0))
    # Every moment from one due time up to (not including) the next sees the same pair.
    for offset in (timedelta(0), US, step / 3, step / 2, step - US):
        now = due + offset
        assert schedule.latest_due(now) == due, now
        assert schedule.next_due(now) == due + step, now
    # A due time is its own latest due time; the next one is strictly after it.
    assert schedule.latest_due(due) == due
    assert schedule.next_due(due) == due + step
    assert schedule.latest_due(due - US) == due - step
    # A second process, building its own schedule, agrees.
    assert Schedule.model_validate(every).latest_due(due + step / 2) == due


def test_the_interval_trigger_fires_on_the_same_grid_as_latest_and_next_due():
    schedule = Schedule.model_validate("15m")
    trigger = schedule.trigger(jitter=False)
    now = at(2026, 5, 5, 12, 7, 31)
    assert trigger.get_next_fire_time(None, now) == schedule.next_due(now)
    assert trigger.get_next_fire_time(None, at(2026, 5, 5, 12, 15)) == at(2026, 5, 5, 12, 15)


def test_an_interval_in_a_timezone_keeps_its_utc_grid_across_the_dst_change():
    # Seven hours is not a whole number of days: wall-clock arithmetic would shift it by the hour.
    utc, berlin = Schedule(every=timedelta(hours=7)), Schedule(every=timedelta(hours=7), timezone="Europe/Berlin")
    start = datetime.combine(SPRING, datetime.min.time(), UTC) - timedelta(days=1)
    assert due_times(berlin, start, 10) == due_times(utc, start, 10)
    times = due_times(berlin, start, 10)
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(hours=7)}
    trigger = berlin.trigger(jitter=False)
    assert [trigger.get_next_fire_time(None, t).astimezone(UTC) for t in times] == times


# --- cron: UTC unless told, the wall clock of its zone across DST ----------------------------


def test_cron_runs_in_utc_by_default():
    schedule = Schedule.model_validate("0 9 * * *")
    assert schedule.next_due(at(2026, 7, 1, 0, 0)) == at(2026, 7, 1, 9, 0)  # summer: no shift
    assert schedule.next_due(at(2026, 1, 15, 0, 0)) == at(2026, 1, 15, 9, 0)
    assert schedule.latest_due(at(2026, 7, 1, 9, 0)) == at(2026, 7, 1, 9, 0)  # an exact due time is its own
    assert schedule.latest_due(at(2026, 7, 1, 9, 0) - US) == at(2026, 6, 30, 9, 0)
    assert schedule.describe() == "cron '0 9 * * *' (UTC)"


def test_the_dst_dates_of_2026_are_the_last_sundays_of_march_and_october():
    for day in (SPRING, AUTUMN):
        assert day.weekday() == 6 and (day + timedelta(days=7)).month != day.month
    assert datetime(2026, 3, 29, 1, 0, tzinfo=BERLIN).utcoffset() == timedelta(hours=1)
    assert datetime(2026, 3, 29, 4, 0, tzinfo=BERLIN).utcoffset() == timedelta(hours=2)
    assert datetime(2026, 10, 25, 1, 0, tzinfo=BERLIN).utcoffset() == timedelta(hours=2)
    assert datetime(2026, 10, 25, 4, 0, tzinfo=BERLIN).utcoffset() == timedelta(hours=1)


def test_cron_in_berlin_keeps_9_local_across_the_spring_change():
    schedule = Schedule(cron="0 9 * * *", timezone="Europe/Berlin")
    times = due_times(schedule, at(2026, 3, 27, 12, 0), 4)
    assert times == [at(2026, 3, 28, 8, 0), at(2026, 3, 29, 7, 0), at(2026, 3, 30, 7, 0), at(2026, 3, 31, 7, 0)]
    assert {t.astimezone(BERLIN).strftime("%H:%M") for t in times} == {"09:00"}
    assert schedule.latest_due(at(2026, 3, 29, 12, 0)) == at(2026, 3, 29, 7, 0)
    assert schedule.latest_due(at(2026, 3, 29, 7, 30)) == at(2026, 3, 29, 7, 0)
    assert schedule.latest_due(at(2026, 3, 29, 6, 59)) == at(2026, 3, 28, 8, 0)


def test_cron_in_berlin_keeps_9_local_across_the_autumn_change():
    schedule = Schedule(cron="0 9 * * *", timezone="Europe/Berlin")
    times = due_times(schedule, at(2026, 10, 23, 12, 0), 4)
    assert times == [at(2026, 10, 24, 7, 0), at(2026, 10, 25, 8, 0), at(2026, 10, 26, 8, 0), at(2026, 10, 27, 8, 0)]
    assert {t.astimezone(BERLIN).strftime("%H:%M") for t in times} == {"09:00"}
    assert schedule.latest_due(at(2026, 10, 25, 12, 0)) == at(2026, 10, 25, 8, 0)
    # 07:30Z on the day of the change is 08:30 CET: before 9 local, so yesterday's run is the latest.
    assert schedule.latest_due(at(2026, 10, 25, 7, 30)) == at(2026, 10, 24, 7, 0)


def test_a_job_in_the_skipped_hour_runs_once_an_hour_late_and_is_not_lost():
    # 02:30 does not exist in Berlin on 29 March 2026: the run moves to 03:30 CEST, once.
    schedule = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    times = due_times(schedule, at(2026, 3, 27, 12, 0), 4)
    assert times == [at(2026, 3, 28, 1, 30), at(2026, 3, 29, 1, 30), at(2026, 3, 30, 0, 30), at(2026, 3, 31, 0, 30)]
    assert [t.astimezone(BERLIN).strftime("%d %H:%M %Z") for t in times] == [
        "28 02:30 CET", "29 03:30 CEST", "30 02:30 CEST", "31 02:30 CEST"]
    assert [t.astimezone(BERLIN).date() for t in times] == [SPRING - timedelta(days=1), SPRING, SPRING + timedelta(days=1), SPRING + timedelta(days=2)]
    assert schedule.latest_due(at(2026, 3, 29, 12, 0)) == at(2026, 3, 29, 1, 30)
    assert schedule.latest_due(at(2026, 3, 29, 1, 0)) == at(2026, 3, 28, 1, 30)


def test_a_job_in_the_repeated_hour_is_due_at_both_instants_each_once():
    # 02:30 happens twice in Berlin on 25 October 2026 (CEST, then CET). The schedule follows
    # the wall clock, so both instants are due, each exactly once; Vixie cron would run it once.
    schedule = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    times = due_times(schedule, at(2026, 10, 23, 12, 0), 4)
    assert times == [at(2026, 10, 24, 0, 30), at(2026, 10, 25, 0, 30), at(2026, 10, 25, 1, 30), at(2026, 10, 26, 1, 30)]
    assert [t.astimezone(BERLIN).strftime("%d %H:%M %Z") for t in times] == [
        "24 02:30 CEST", "25 02:30 CEST", "25 02:30 CET", "26 02:30 CET"]
    assert len(set(times)) == len(times)
    # Between the two, the first is the latest due time (this case terminates).
    assert within(5, lambda: schedule.latest_due(at(2026, 10, 25, 1, 0))) == at(2026, 10, 25, 0, 30)


@pytest.mark.parametrize(
    ("cron", "now", "expected"),
    [
        ("30 2 * * *", at(2026, 10, 25, 12, 0), at(2026, 10, 25, 1, 30)),  # any time that day after 01:30Z
        ("30 2 * * *", at(2026, 10, 26, 0, 0), at(2026, 10, 25, 1, 30)),
        ("0 * * * *", at(2026, 10, 25, 1, 10), at(2026, 10, 25, 1, 0)),  # hourly, in the repeated hour
    ],
)
def test_latest_due_after_the_second_of_two_ambiguous_times_returns(cron: str, now: datetime, expected: datetime):
    schedule = Schedule(cron=cron, timezone="Europe/Berlin")
    assert within(2, lambda: schedule.latest_due(now)) == expected


# --- crontab weekdays: 0 and 7 are Sunday ------------------------------------------------------

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)  # datetime.weekday()


@pytest.mark.parametrize(
    ("weekday", "days"),
    [
        ("0", {SUN}),
        ("7", {SUN}),
        ("1", {MON}),
        ("6", {SAT}),
        ("1-5", {MON, TUE, WED, THU, FRI}),
        ("mon-fri", {MON, TUE, WED, THU, FRI}),
        ("0,6", {SAT, SUN}),
        ("6,7", {SAT, SUN}),
        ("5-7", {FRI, SAT, SUN}),
        ("*/2", {SUN, TUE, THU, SAT}),  # crontab counts the step from Sunday = 0
        ("1-5/2", {MON, WED, FRI}),
        ("sun", {SUN}),
        ("sat,0", {SAT, SUN}),
        ("*", {MON, TUE, WED, THU, FRI, SAT, SUN}),
    ],
)
def test_crontab_weekday_numbers_fire_on_the_crontab_days(weekday: str, days: set[int]):
    schedule = Schedule.model_validate(f"0 9 * * {weekday}")
    times = due_times(schedule, at(2026, 4, 1, 12, 0), 21)  # a Wednesday; three weeks of runs at least
    assert {t.weekday() for t in times} == days
    assert {(t.hour, t.minute) for t in times} == {(9, 0)}


def test_0_9_on_sunday_fires_on_sundays_only():
    schedule = Schedule.model_validate("0 9 * * 0")
    assert due_times(schedule, at(2026, 4, 1, 12, 0), 3) == [at(2026, 4, 5, 9, 0), at(2026, 4, 12, 9, 0), at(2026, 4, 19, 9, 0)]
    assert schedule.latest_due(at(2026, 4, 11, 12, 0)) == at(2026, 4, 5, 9, 0)


def test_weekdays_1_to_5_never_fire_on_a_weekend():
    schedule = Schedule.model_validate("0 9 * * 1-5")
    times = due_times(schedule, at(2026, 4, 3, 12, 0), 30)  # from a Friday afternoon
    assert times[0] == at(2026, 4, 6, 9, 0)  # Monday, not Saturday
    assert all(t.weekday() < 5 for t in times)
    # Asked on a Sunday, the latest run was Friday's.
    assert schedule.latest_due(at(2026, 4, 5, 18, 0)) == at(2026, 4, 3, 9, 0)


def test_weekdays_in_a_timezone_are_the_local_days():
    # 23:30 on Sunday in New York is Monday in UTC: a Sunday-only job still fires then.
    schedule = Schedule(cron="30 23 * * 0", timezone="America/New_York")
    (first,) = due_times(schedule, at(2026, 4, 1, 12, 0), 1)
    assert first == at(2026, 4, 6, 3, 30)
    assert first.astimezone(ZoneInfo("America/New_York")).weekday() == SUN


def test_a_named_weekday_range_starting_on_sunday_means_what_crontab_means():
    schedule = Schedule.model_validate("0 9 * * sun-tue")
    assert {t.weekday() for t in due_times(schedule, at(2026, 4, 1, 12, 0), 9)} == {SUN, MON, TUE}


# --- jitter: in the trigger, never in the due times --------------------------------------------


def test_jitter_delays_the_trigger_but_not_the_due_times():
    plain = Schedule(every=timedelta(minutes=15))
    jittery = Schedule(every=timedelta(minutes=15), jitter=timedelta(seconds=30))
    now = at(2026, 5, 5, 12, 7, 31)
    assert jittery.latest_due(now) == plain.latest_due(now) == at(2026, 5, 5, 12, 0)
    assert jittery.next_due(now) == plain.next_due(now) == at(2026, 5, 5, 12, 15)
    assert jittery.trigger().jitter == 30
    assert jittery.trigger(jitter=False).jitter is None
    assert plain.trigger().jitter is None
    fires = [jittery.trigger().get_next_fire_time(None, now).astimezone(UTC) for _ in range(40)]
    assert all(at(2026, 5, 5, 12, 15) <= f <= at(2026, 5, 5, 12, 15, 30) for f in fires)
    assert len(set(fires)) > 1  # it is applied
    assert {jittery.latest_due(f) for f in fires} == {at(2026, 5, 5, 12, 15)}


def test_cron_jitter_stays_within_its_bound_run_after_run():
    schedule = Schedule(cron="0 9 * * *", timezone="Europe/Berlin", jitter=timedelta(minutes=5))
    fires = scheduler_fire_times(schedule, at(2026, 10, 20, 12, 0), 10)  # across the autumn change
    dues = [schedule.latest_due(f) for f in fires]
    assert dues == due_times(schedule, at(2026, 10, 20, 12, 0), 10)
    assert all(timedelta(0) <= f - d <= timedelta(minutes=5) for f, d in zip(fires, dues))


def test_interval_jitter_does_not_accumulate_run_after_run():
    schedule = Schedule(every=timedelta(minutes=15), jitter=timedelta(seconds=60))
    fires = scheduler_fire_times(schedule, at(2026, 5, 5, 12, 7), 96)  # one day of runs
    dues = [schedule.latest_due(f) for f in fires]
    assert all(timedelta(0) <= f - d <= timedelta(seconds=60) for f, d in zip(fires, dues))
    assert dues == due_times(schedule, at(2026, 5, 5, 12, 7), 96)  # every due time run, once


def test_a_negative_jitter_is_refused():
    with pytest.raises(ValidationError, match="jitter"):
        Schedule.model_validate({"every": "15m", "jitter": -60})


# --- invalid schedules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0 9 * *", "invalid cron expression '0 9 * *': expected 5 fields (minute hour day month weekday), got 4"),
        ("fortnightly", "invalid cron expression 'fortnightly': expected 5 fields"),
        ("61 * * * *", "invalid cron expression '61 * * * *'"),
        ("0 9 * * 8", "invalid weekday '8'"),
        ("0 9 * * 5-1", "weekday range '5-1' runs backwards"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"every": "15m", "cron": "0 9 * * *"}, "give exactly one of every or cron"),
        ({}, "give exactly one of every or cron"),
        ({"timezone": "Europe/Berlin"}, "give exactly one of every or cron"),
        ("0s", "every must be at least 1s"),
        ({"every": 0}, "every must be at least 1s"),
        ({"every": -60}, "every must be at least 1s"),
        ({"every": "0.5s"}, "every must be at least 1s"),
        ({"every": "soon"}, "invalid duration 'soon'"),
        ({"every": "15m", "jitter": "a bit"}, "invalid duration 'a bit'"),
        ({"every": "15m", "jitter": "15m"}, "jitter must be shorter than the interval"),
        ({"every": "15m", "colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_schedules_are_refused_with_a_clear_message(value: Any, message: str):
    with pytest.raises(ValidationError) as info:
        Schedule.model_validate(value)
    assert message in str(info.value)


def test_an_unknown_timezone_is_reported_on_the_timezone_field():
    with pytest.raises(ValidationError) as info:
        Schedule.model_validate({"cron": "0 9 * * *", "timezone": "Mars/Olympus"})
    (error,) = info.value.errors()
    assert error["loc"] == ("timezone",)


# --- through the configuration file: file, line and field --------------------------------------

CONFIG = """\
version: 1
store: pw.db
projects:
  - id: svc
    schedule: PROJECT
    sources:
      - id: repo
        kind: git
        path: ./repo
        schedule: SOURCE
    pillars:
      - id: durability
        title: Durability
        criteria:
          - id: restart
            title: Survive restart
            checks:
              - {source: repo, signal: file_exists, path: tests/test_restart.py}
"""


def write_config(tmp_path: Path, project: str = "15m", source: str = "1h") -> Path:
    path = tmp_path / "pw.yaml"
    path.write_text(CONFIG.replace("PROJECT", project).replace("SOURCE", source))
    return path


def test_valid_schedules_load_from_the_configuration(tmp_path: Path):
    config = load_config(write_config(tmp_path, "{cron: '0 9 * * 1-5', timezone: Europe/Berlin, jitter: 2m}", "'*/10 * * * *'"))
    project = config.projects[0]
    assert project.schedule == Schedule(cron="0 9 * * 1-5", timezone="Europe/Berlin", jitter=timedelta(minutes=2))
    assert project.schedule_of(project.sources[0]) == Schedule(cron="*/10 * * * *")


@pytest.mark.parametrize(
    ("project", "source", "line", "expected"),
    [
        ("'0 9 * *'", "1h", 5, "projects[0].schedule: invalid cron expression '0 9 * *': expected 5 fields"),
        ("{every: 15m, cron: '0 9 * * *'}", "1h", 5, "projects[0].schedule: give exactly one of every or cron"),
        ("{timezone: Europe/Berlin}", "1h", 5, "projects[0].schedule: give exactly one of every or cron"),
        ("0s", "1h", 5, "projects[0].schedule: every must be at least 1s"),
        ("'0 9 * * 8'", "1h", 5, "projects[0].schedule: invalid cron expression '0 9 * * 8': invalid weekday '8'"),
        # The timezone on a line of its own: the problem names that line and that field.
        ("\n      cron: '0 9 * * *'\n      timezone: Mars/Olympus", "1h", 7, "projects[0].schedule.timezone: unknown timezone 'Mars/Olympus'"),
        # A source's own schedule.
        ("15m", "'0 25 * * *'", 10, "projects[0].sources[0].schedule: invalid cron expression '0 25 * * *'"),
        ("15m", "{every: 15m, colour: red}", 10, "projects[0].sources[0].schedule.colour: unknown key"),
    ],
)
def test_a_bad_schedule_in_the_configuration_names_file_line_and_field(tmp_path: Path, project: str, source: str, line: int, expected: str):
    path = write_config(tmp_path, project, source)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:{line}: {expected}"), problem
    assert str(info.value) == problem
