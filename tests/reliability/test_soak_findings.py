"""What the soak found in the daemon, pinned down here by fast tests.

- Two writers on one store: the daemon scores through one connection and
  delivers through another. A write transaction of one must wait (up to the
  busy timeout) for the other's write lock, not fail at once with "database
  is locked": SQLite does not call the busy handler when a transaction that
  has already read tries to write, so a deferred ``BEGIN`` that reads first
  (claiming a run, saving a snapshot) failed whenever the sender was
  recording an attempt at that moment.
- Two writers of the health file: the score jobs of two projects share its
  ``.tmp`` file; one's ``os.replace`` took the other's away.
- Runs off the schedule's grid: after the catch-up run at start (at "now"),
  APScheduler counted every later run from it, so each fired as late after
  its due time as the daemon had started after one, and a run delayed past
  the next due time claimed that one, leaving its own uncollected.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from daemon.config.schedule import Schedule
from daemon.store import Store
from tests.support.daemon_config import config_body

pytestmark = pytest.mark.reliability

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def hold_write_lock(store: Store, seconds: float, holding: threading.Event) -> None:
    with store.transaction():
        store.disable_channel("hook", reason="held", at=NOW)
        holding.set()
        time.sleep(seconds)


def test_a_transaction_that_reads_first_waits_for_the_other_connections_write_lock(tmp_path):
    scorer, sender = Store.open(tmp_path / "pw.db"), Store.open(tmp_path / "pw.db")
    try:
        holding = threading.Event()
        other = threading.Thread(target=hold_write_lock, args=(sender, 0.5, holding))
        other.start()
        holding.wait(5)
        started = time.monotonic()
        assert scorer.claim_run("svc", "repo", NOW, now=NOW)  # reads the claim, then writes it
        other.join()
        assert time.monotonic() - started >= 0.3  # it waited for the lock
        assert scorer.disabled_channels() == {"hook": "held"}
    finally:
        scorer.close()
        sender.close()


def test_a_commit_by_the_other_connection_between_read_and_write_is_not_a_failure(tmp_path):
    scorer, sender = Store.open(tmp_path / "pw.db"), Store.open(tmp_path / "pw.db")
    try:
        with scorer.transaction():
            assert scorer.last_due("svc", "repo") is None  # a read first...
            done = threading.Event()
            other = threading.Thread(target=lambda: (sender.disable_channel("hook", reason="x", at=NOW), done.set()))
            other.start()
            time.sleep(0.2)
            scorer.record_run("svc", "repo", NOW, outcome="ok", now=NOW)  # ...then a write
        other.join(10)
        assert done.is_set()
        assert scorer.last_due("svc", "repo") == NOW
    finally:
        scorer.close()
        sender.close()


def test_health_file_written_by_several_score_jobs_at_once_is_never_an_error(tmp_path, caplog):
    """The score jobs of two projects run on the scheduler's pool and may finish together."""
    from daemon.service import Daemon

    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(config_body(tmp_path / "repo", "http://127.0.0.1:9/hook")))
    daemon = Daemon(tmp_path / "pw.yaml", api=False)
    daemon.store = Store.open(daemon.config.store_path)
    try:
        def write_often() -> None:
            for _ in range(200):
                daemon._write_health()

        with caplog.at_level(logging.ERROR, logger="pillarwatch.daemon"):
            writers = [threading.Thread(target=write_often) for _ in range(4)]
            for w in writers:
                w.start()
            for w in writers:
                w.join()
        assert [r.getMessage() for r in caplog.records] == []
        assert json.loads(daemon.config.health_path.read_text())["pid"] == os.getpid()
        assert not daemon.config.health_path.with_name(daemon.config.health_path.name + ".tmp").exists()
    finally:
        daemon.store.close()


@pytest.mark.parametrize("every", [timedelta(seconds=1), timedelta(minutes=15), timedelta(hours=1)])
def test_after_the_catch_up_run_at_start_the_runs_are_back_on_the_grid(every):
    schedule = Schedule(every=every)
    trigger = schedule.trigger()
    catch_up = schedule.latest_due(NOW) + every * 0.98  # the daemon started late in an interval: next_run_time=now
    fires = [catch_up]
    for _ in range(4):  # chained as APScheduler chains them: each from the previous run time
        fires.append(trigger.get_next_fire_time(fires[-1], fires[-1]).astimezone(timezone.utc))
    due = schedule.latest_due(catch_up)
    assert fires[1:] == [due + every * n for n in range(1, 5)]
    # So a run that starts a little late still claims its own due time.
    assert [schedule.latest_due(f + every * 0.1) for f in fires[1:]] == fires[1:]
