"""Crash consistency: `kill -9` at random moments of `pillarwatch collect` and of the daemon's deliveries.

Fifty iterations alternate between two kinds of victim, each preceded by a
commit that moves the score against the latest stored snapshot (a test file
deleted or restored), so that every run that gets far enough writes a
snapshot, an alert transition and its outbox rows:

- ``pillarwatch collect``, killed after a random delay in [0, its typical
  duration] (every other one in [end of its start-up, typical duration],
  the part where it touches the store): during start-up, while collecting,
  while recording, or while it delivers what it queued;
- the daemon, killed while it delivers: the webhook receiver takes a
  while to answer, and the kill lands a random time after the first message
  of that run arrived (mid-send, between sends, while recording, or after).

The next iteration is the restart; after each kill the store must be
whole: ``PRAGMA integrity_check`` ok, every snapshot with all its pillar and
criterion rows and their evidence, every outbox row with its alert. After
a final clean restart:

- no alert lost or doubled: replaying the stored snapshots gives exactly
  the alerts stored (one per drop, resolved by the rise after it), and each
  alert has exactly one outbox row per event (firing, resolved);
- every outbox row is delivered, with one recorded attempt;
- the receiver, deduplicating by ``webhook-id`` as Standard Webhooks
  receivers do, has every key, and no other;
- delivery is at-least-once and no more than the crashes force: a key
  arrives at most once per process, it arrives again only when the process
  it arrived in was killed before recording it delivered, and never after
  it was recorded delivered.

The kill moments come from a seeded random.Random (printed; replay with
``PW_RELIABILITY_SEED``).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.daemon_config import config_body, write_config
from tests.support.database import outbox_states, query, store_problems
from tests.support.git import GitRepo
from tests.support.http_server import expect_resets
from tests.support.processes import DaemonProcess, wait_for
from tests.support.webhooks import SECRET, KeyedReceiver

pytestmark = pytest.mark.reliability

ITERATIONS = int(os.environ.get("PW_CRASH_ITERATIONS") or 50)
ANSWER_DELAY = 0.3  # how long the receiver takes to answer: kills land mid-send
THRESHOLD = 5
TOGGLED = "tests/test_restart.py"
DURABILITY = [TOGGLED, "tests/test_retry.py", "tests/test_failover.py", "tests/test_backup.py"]
DOCS = ["README.md", "docs/guide.md"]
PILLARS, CRITERIA = 2, len(DURABILITY) + len(DOCS)
SUBJECTS = ("overall", "pillar:durability")  # both fall when the toggled file goes: 100 -> 87.5 and 100 -> 75


def crash_config(repo: Path, hook: str) -> dict:
    body = config_body(repo, hook)
    body["daemon"] = {**body["daemon"], "debounce": "0.1s"}
    # Each message alone (`group_by: []`): the receiver's keys are then the outbox rows' keys, which the test
    # follows through the crashes (grouping is tested in tests/test_notify_grouping.py).
    body["channels"] = [{**c, "group_by": []} for c in body["channels"]]
    project = body["projects"][0]
    project["schedule"] = {"every": "1s"}
    project["alerts"] = {"threshold": THRESHOLD, "for": 1, "repeat_interval": "1h"}
    project["pillars"] = [
        {"id": "durability", "title": "Durability", "criteria": [
            {"id": f"d{n}", "title": path, "checks": [{"source": "repo", "signal": "file_exists", "path": path}]}
            for n, path in enumerate(DURABILITY)]},
        {"id": "docs", "title": "Docs", "criteria": [
            {"id": f"doc{n}", "title": path, "checks": [{"source": "repo", "signal": "file_exists", "path": path}]}
            for n, path in enumerate(DOCS)]},
    ]
    return body


@dataclass
class Iteration:
    n: int
    victim: str  # collect or daemon
    delay: float  # seconds from the start (collect) or from the first message received (daemon)
    exited_first: bool = False  # the process finished before the kill
    new_snapshots: int = 0
    received: int = 0
    left_pending: int = 0

    def landed(self) -> str:
        if self.exited_first:
            return "after it finished"
        if self.victim == "collect" and not self.new_snapshots:
            return "before its snapshot was stored"
        if self.left_pending and self.received:
            return "mid-delivery"
        if self.left_pending:
            return "after its snapshot, before delivery"
        return "after delivery"


def collect(workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PW_TEST_WEBHOOK_SECRET": SECRET}
    with open(workdir / "collect.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "daemon.cli", "collect", "--config", "pw.yaml"],
                                cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=log)


def latest_overall(db: Path) -> float | None:
    rows = query(db, "SELECT overall FROM snapshots ORDER BY taken_at DESC, id DESC LIMIT 1")
    return rows[0][0] if rows else None


def expected_alerts(db: Path) -> dict[str, list[tuple[str, str | None]]]:
    """Replay the stored snapshots: for each subject, (started_at, resolved_at) of every alert they call for."""
    series = query(db, "SELECT s.taken_at, s.overall, p.score FROM snapshots s JOIN pillar_scores p"
                       " ON p.snapshot_id = s.id AND p.pillar = 'durability' ORDER BY s.taken_at, s.id")
    expected: dict[str, list[tuple[str, str | None]]] = {}
    for index, subject in enumerate(SUBJECTS, start=1):
        intervals: list[tuple[str, str | None]] = []
        baseline = None  # of the open alert
        for previous, current in itertools.pairwise(series):
            taken_at, before, now = current[0], previous[index], current[index]
            if baseline is not None and now >= baseline:
                intervals[-1] = (intervals[-1][0], taken_at)
                baseline = None
            elif baseline is None and before - now >= THRESHOLD:
                intervals.append((taken_at, None))
                baseline = before
        expected[subject] = intervals
    return expected


def test_kill_9_at_random_moments_loses_no_alert_and_delivers_each_once_past_the_crashes(tmp_path, http_server, rng):
    started = time.monotonic()
    receiver = KeyedReceiver(http_server, delay=ANSWER_DELAY)
    expect_resets(http_server)
    repo = GitRepo(tmp_path / "repo")
    for path in DURABILITY + DOCS:
        repo.write(path, "x\n")
    repo.commit("everything in place")
    write_config(tmp_path, crash_config(repo.path, f"{http_server.url}/hook"))
    db = tmp_path / "pw.db"
    daemon_logs = DaemonProcess(tmp_path).logs

    def logs() -> str:
        collect_log = tmp_path / "collect.log"
        return daemon_logs() + (collect_log.read_text()[-2000:] if collect_log.exists() else "")

    # Epoch 0: a clean collect, to create the store and time a run: its start-up (imports) ends
    # when it opens the store.
    t0, start_up = time.monotonic(), None
    first_run = collect(tmp_path)
    while first_run.poll() is None:
        if start_up is None and db.exists():
            start_up = time.monotonic() - t0
        time.sleep(0.005)
    assert first_run.returncode == 0 and start_up is not None, logs()
    typical_collect = time.monotonic() - t0 + 2 * ANSWER_DELAY  # and the two messages a change queues
    checkpoints: list[dict[str, str]] = [outbox_states(db)]  # the outbox as each process left it, by epoch
    iterations: list[Iteration] = []
    live: subprocess.Popen[bytes] | None = None
    try:
        for n in range(1, ITERATIONS + 1):
            # Move the score against what is stored: a run that records anything records a change.
            if latest_overall(db) != 100.0:
                repo.write(TOGGLED, "x\n")
            elif (repo.path / TOGGLED).exists():
                repo.remove(TOGGLED)
            repo.write("NOTES.md", f"iteration {n}\n")
            repo.commit(f"iteration {n}")
            snapshots_before = query(db, "SELECT count(*) FROM snapshots")[0][0]
            receiver.epoch = n
            if n % 2:
                # Every other collect kill lands after the start-up, where the store is written.
                it = Iteration(n, "collect", rng.uniform(0 if n % 4 == 1 else start_up, typical_collect))
                live = collect(tmp_path)
                try:
                    live.wait(it.delay)
                    it.exited_first = True
                except subprocess.TimeoutExpired:
                    live.send_signal(signal.SIGKILL)
            else:
                daemon = DaemonProcess(tmp_path).start()
                live = daemon.proc
                first = wait_for(lambda n=n: receiver.in_epoch(n), timeout=30, what=f"a delivery in iteration {n}", logs=logs)[0]
                pending = query(db, "SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0]
                it = Iteration(n, "daemon", rng.uniform(0, ANSWER_DELAY * max(2, pending)))
                time.sleep(max(0.0, first.at + it.delay - time.monotonic()))
                live.send_signal(signal.SIGKILL)
            live.wait(30)
            live = None
            problems = store_problems(db, pillars=PILLARS, criteria=CRITERIA)
            assert not problems, f"iteration {n} ({it}): {problems}\n{logs()[-3000:]}"
            checkpoints.append(outbox_states(db))
            it.new_snapshots = query(db, "SELECT count(*) FROM snapshots")[0][0] - snapshots_before
            it.received = len(receiver.in_epoch(n))
            it.left_pending = sum(1 for state in checkpoints[-1].values() if state == "pending")
            iterations.append(it)

        # The final restart: a daemon delivers what is left, then stops cleanly.
        final = ITERATIONS + 1
        receiver.epoch = final
        daemon = DaemonProcess(tmp_path).start()
        live = daemon.proc
        wait_for(lambda: set(outbox_states(db).values()) == {"delivered"}, timeout=60, what="everything delivered", logs=logs)
        time.sleep(1.5)  # a few more cycles: nothing is sent again
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, logs()[-3000:]
        live = None
        checkpoints.append(outbox_states(db))
    finally:
        if live is not None and live.poll() is None:
            live.kill()
            live.wait()

    landed = Counter(f"{it.victim} {it.landed()}" for it in iterations)
    resent = {k: c for k, c in receiver.counts().items() if c > 1}
    print(f"crash consistency: {ITERATIONS} kills in {time.monotonic() - started:.0f}s"
          f" (collect: start-up {start_up:.2f}s, typical run {typical_collect:.2f}s);"
          f" landed: {dict(sorted(landed.items()))}; {len(checkpoints[-1])} messages, {len(resent)} sent again after a kill,"
          f" {receiver.cut} cut mid-body by a kill")
    assert not store_problems(db, pillars=PILLARS, criteria=CRITERIA)

    # No alert lost or doubled: the stored snapshots call for exactly the alerts stored.
    alerts = query(db, "SELECT id, subject, kind, state, started_at, resolved_at FROM alerts ORDER BY id")
    assert {(subject, kind) for _, subject, kind, *_ in alerts} <= {(s, "regression") for s in SUBJECTS}
    stored = {s: [(a[4], a[5]) for a in alerts if a[1] == s] for s in SUBJECTS}
    assert stored == expected_alerts(db)
    assert len(alerts) >= 10, "too few alerts: the commits did not move the score"
    # ... and each alert has exactly one message per event.
    messages = defaultdict(list)
    for alert_id, event in query(db, "SELECT alert_id, json_extract(message, '$.event') FROM outbox"):
        messages[alert_id].append(event)
    assert {a[0]: sorted(messages[a[0]]) for a in alerts} == {
        a[0]: ["firing", "resolved"] if a[3] == "resolved" else ["firing"] for a in alerts}

    # Every message delivered, with one recorded attempt.
    final_states = checkpoints[-1]
    assert set(final_states.values()) == {"delivered"}
    attempts = query(db, "SELECT o.idempotency_key, group_concat(a.outcome) FROM outbox o"
                         " LEFT JOIN delivery_attempts a ON a.outbox_id = o.id GROUP BY o.id")
    assert {key: outcomes for key, outcomes in attempts} == dict.fromkeys(final_states, "delivered")

    # The receiver has every key and no other, each signed right.
    assert receiver.rejected == 0
    assert set(receiver.counts()) == set(final_states)

    # At least once, and again only when a crash forced it.
    by_key = defaultdict(list)
    for receipt in receiver.receipts:
        by_key[receipt.key].append(receipt.epoch)
    for key, epochs in by_key.items():
        recorded = min(e for e, states in enumerate(checkpoints) if states.get(key) == "delivered")
        assert epochs == sorted(set(epochs)), f"{key} arrived twice from one process: epochs {epochs}"
        assert epochs[-1] == recorded, f"{key} arrived in epochs {epochs} but was recorded delivered in {recorded}"
        for epoch in epochs[:-1]:
            assert checkpoints[epoch].get(key) == "pending", f"{key} sent again though epoch {epoch} left it {checkpoints[epoch].get(key)}"
            assert iterations[epoch - 1].exited_first is False  # only a killed process leaves a sent message pending

    # The kills really landed where they matter.
    assert resent, "no kill landed mid-send: the re-send path was not exercised"
    assert any(it.victim == "collect" and it.new_snapshots and not it.exited_first for it in iterations)
    assert any(it.victim == "collect" and not it.new_snapshots and not it.exited_first for it in iterations)
