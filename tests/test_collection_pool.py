"""The collection pool's decisions as tables (issue 17, items 1, 2 and 5): which queue takes a free slot, which due times fell between two."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from daemon.config.schedule import Schedule
from daemon.config.settings import CelerySettings
from daemon.run.dispatch import due_times_between
from daemon.run.pool import CollectionPool, pick


@pytest.mark.parametrize("waiting, held, concurrency, queues, stalled, expected", [
    # One queue (the local executor): a semaphore of `concurrency`.
    (["local"], {}, 2, {"local"}, set(), "local"),
    (["local"], {"local": 1}, 2, {"local"}, set(), "local"),
    (["local"], {"local": 2}, 2, {"local"}, set(), None),
    # Two queues, two slots: qa may not take the second while qb holds none, waiting or not.
    (["qa"], {"qa": 1}, 2, {"qa", "qb"}, set(), None),
    (["qa", "qb"], {"qa": 1}, 2, {"qa", "qb"}, set(), "qb"),
    # The queue holding the fewest goes first, then the one waiting longest.
    (["qa", "qb"], {"qa": 1, "qb": 0}, 4, {"qa", "qb"}, set(), "qb"),
    (["qb", "qa"], {}, 4, {"qa", "qb"}, set(), "qb"),
    # Eight slots, three queues: a queue takes up to six, leaving one each for the other two.
    (["qa"], {"qa": 5}, 8, {"qa", "qb", "qc"}, set(), "qa"),
    (["qa"], {"qa": 6}, 8, {"qa", "qb", "qc"}, set(), None),
    (["qa"], {"qa": 6, "qb": 1}, 8, {"qa", "qb", "qc"}, set(), None),
    (["qa"], {"qa": 6, "qb": 1, "qc": 0}, 8, {"qa", "qb"}, set(), None),
    # A stalled queue holds one slot at most (a probe), even with slots free.
    (["qa"], {"qa": 1}, 8, {"qa", "qb"}, {"qa"}, None),
    (["qa"], {}, 8, {"qa", "qb"}, {"qa"}, "qa"),
    (["qa", "qb"], {"qa": 1}, 8, {"qa", "qb"}, {"qa"}, "qb"),
    # Fewer slots than queues: the first to ask, one each.
    (["qa", "qb", "qc"], {}, 2, {"qa", "qb", "qc"}, set(), "qa"),
    (["qa", "qb", "qc"], {"qa": 1}, 2, {"qa", "qb", "qc"}, set(), "qb"),
    ([], {}, 2, {"qa"}, set(), None),
])
def test_pick(waiting, held, concurrency, queues, stalled, expected):
    assert pick(waiting, held, concurrency=concurrency, queues=queues, stalled=stalled) == expected


def test_the_pool_runs_at_most_concurrency_and_a_key_once():
    pool = CollectionPool(2, ["local"])
    going, most, lock, release = [0], [0], threading.Lock(), threading.Event()

    def run() -> None:
        with lock:
            going[0] += 1
            most[0] = max(most[0], going[0])
        release.wait(5)
        with lock:
            going[0] -= 1

    assert [pool.submit(i, "local", run) for i in range(5)] == [True] * 5
    assert pool.submit(0, "local", run) is False  # waiting or going already
    time.sleep(0.3)
    assert most[0] == 2 and pool.held() == {"local": 2}
    assert pool.close() == [2, 3, 4]  # never started
    release.set()
    deadline = time.monotonic() + 5
    while pool.held() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.held() == {} and most[0] == 2


def test_a_dead_queue_holds_its_share_and_the_other_queue_runs():
    pool = CollectionPool(2, ["qa", "qb"])
    stuck, ran = threading.Event(), []
    for i in range(4):
        pool.submit(("qa", i), "qa", lambda: stuck.wait(5))
    pool.submit(("qb", 0), "qb", lambda: ran.append("qb"))
    deadline = time.monotonic() + 5
    while not ran and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ran == ["qb"] and pool.held() == {"qa": 1}
    stuck.set()
    pool.close()


T = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("schedule, after, before, expected", [
    ({"every": "1m"}, T, T + timedelta(minutes=3), [T + timedelta(minutes=1), T + timedelta(minutes=2)]),
    ({"every": "1m"}, T, T + timedelta(minutes=1), []),
    ({"every": "1m"}, T + timedelta(seconds=30), T + timedelta(minutes=2), [T + timedelta(minutes=1)]),
    ({"cron": "0 * * * *"}, T, T + timedelta(hours=3), [T + timedelta(hours=1), T + timedelta(hours=2)]),
])
def test_due_times_between(schedule, after, before, expected):
    assert due_times_between(Schedule.model_validate(schedule), after, before) == (expected, len(expected))


def test_due_times_between_keeps_the_latest_when_there_are_too_many():
    dues, count = due_times_between(Schedule.model_validate({"every": "1s"}), T, T + timedelta(hours=1), limit=10)
    assert count == 3599 and len(dues) == 10 and dues[-1] == T + timedelta(seconds=3599)
    dues, count = due_times_between(Schedule.model_validate({"cron": "* * * * *"}), T, T + timedelta(hours=1), limit=10)
    assert count == 59 and len(dues) == 10 and dues[-1] == T + timedelta(minutes=59)


def test_queue_timeouts_default_per_queue_and_unknown_queue():
    settings = CelerySettings.model_validate({"queues": ["qa", "qb"], "queue_timeouts": {"qa": "10s"}})
    assert settings.queue_wait_seconds("qa") == 10 and settings.queue_wait_seconds("qb") == 120
    with pytest.raises(ValueError, match="queue_timeouts: unknown queue 'qc'"):
        CelerySettings.model_validate({"queues": ["qa"], "queue_timeouts": {"qc": "10s"}})
    with pytest.raises(ValueError, match="at least 1s"):
        CelerySettings.model_validate({"queue_timeout": "0s"})
