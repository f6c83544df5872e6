"""Shared helpers of the reliability suite (crash consistency, soak).

The daemon is driven as a real subprocess against real git repositories and
a real webhook receiver, with the helpers of ``tests/test_daemon.py``
(imported, not copied); what this suite adds is a receiver that answers
slowly and remembers which sender process each message came from, readers of
a process's memory and file descriptors in ``/proc``, a check of the store's
invariants after a crash, and the seed of the random choices.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..api_support import free_port
from ..conftest import HttpServer, Reply, Seen
from ..test_daemon import SECRET, DaemonProcess, Receiver, daemons, query  # noqa: F401 (daemons: a fixture for this folder)

SEED_ENV = "PW_RELIABILITY_SEED"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A seeded random.Random: ``PW_RELIABILITY_SEED=N`` replays a run, otherwise a fresh seed is drawn and printed."""
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"\n{request.node.name}: seed {seed} (replay with {SEED_ENV}={seed})")
    return random.Random(seed)


# --- a webhook receiver that knows who sent what -----------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    key: str  # the idempotency key (webhook-id)
    epoch: int  # which sender process the test was running when it arrived
    at: float  # time.monotonic()
    event: str  # firing, resolved, reminder


class KeyedReceiver(Receiver):
    """The signature-checking receiver of test_daemon, slowed down and keeping every receipt.

    A message counts as taken when it arrives with a good signature, before
    the answer goes back: a sender killed while it waits for the answer has
    handed the message over, and sending it again is the at-least-once
    re-send a Standard Webhooks receiver drops by its ``webhook-id``.
    """

    def __init__(self, server: HttpServer, *, delay: float = 0.0):
        super().__init__(server)
        self.delay = delay
        self.epoch = 0
        self.receipts: list[Receipt] = []
        self.cut = 0  # requests whose sender died mid-body
        self._lock = threading.Lock()

    def __call__(self, seen: Seen) -> Reply:
        if len(seen.body) < int(seen.headers.get("content-length") or 0):
            # The sender was killed while it wrote the body: nothing was handed over (and its
            # signature cannot match the part that came); not a bad signature.
            with self._lock:
                self.cut += 1
            return Reply(400, "incomplete body")
        with self._lock:
            reply = super().__call__(seen)
            if reply.status == 204:
                body = self.accepted[-1]
                self.receipts.append(Receipt(body["id"], self.epoch, time.monotonic(), body["pillarwatch"]["event"]))
        reply.delay = self.delay
        return reply

    def counts(self) -> Counter[str]:
        """How many times each idempotency key arrived."""
        with self._lock:
            return Counter(r.key for r in self.receipts)

    def in_epoch(self, epoch: int) -> list[Receipt]:
        with self._lock:
            return [r for r in self.receipts if r.epoch == epoch]


def expect_resets(server: HttpServer) -> None:
    """A sender killed mid-request resets its connection: expected here, so not printed as a server error."""
    default = server.httpd.handle_error

    def handle_error(request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            default(request, client_address)

    server.httpd.handle_error = handle_error  # type: ignore[method-assign]


# --- a daemon with its HTTP API ---------------------------------------------------------------------


class ApiDaemonProcess(DaemonProcess):
    """test_daemon's daemon subprocess, serving the API on a free port instead of ``--no-api``."""

    def start(self) -> ApiDaemonProcess:
        self.port = free_port()
        env = {**os.environ, "PW_TEST_WEBHOOK_SECRET": SECRET}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "daemon", "--config", "pw.yaml", "--port", str(self.port)],
            cwd=self.workdir, env=env, stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# --- a process seen from /proc -------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    """Resident set size (VmRSS) in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> dict[str, str]:
    """The process's open file descriptors: number -> what it points at."""
    found = {}
    base = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(base):
        try:
            found[fd] = os.readlink(base / fd)
        except FileNotFoundError:  # closed while we looked
            continue
    return found


# --- the store after a crash -------------------------------------------------------------------------


def store_problems(db: Path, *, pillars: int, criteria: int) -> list[str]:
    """What is wrong with the store, as a restart would find it (empty: nothing).

    Opened read-write, as the next process would open it, so that a WAL left
    by a killed writer is recovered first. Checks: ``PRAGMA integrity_check``
    and foreign keys; every snapshot whole (all its pillar and criterion
    rows, every evidence row they name); every outbox row with its alert.
    """
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=10)
    try:
        problems = [f"integrity_check: {row[0]}" for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "snapshots" not in tables:
            return problems
        for sid, p, c in conn.execute(
            "SELECT id, (SELECT count(*) FROM pillar_scores WHERE snapshot_id = s.id),"
            " (SELECT count(*) FROM criterion_scores WHERE snapshot_id = s.id) FROM snapshots s"
        ):
            if (p, c) != (pillars, criteria):
                problems.append(f"snapshot {sid} is half-written: {p}/{pillars} pillar rows, {c}/{criteria} criterion rows")
        missing = conn.execute(
            "SELECT count(*) FROM criterion_scores c, json_each(c.evidence) e"
            " WHERE NOT EXISTS (SELECT 1 FROM evidence WHERE hash = e.value)"
        ).fetchone()[0]
        if missing:
            problems.append(f"{missing} evidence reference(s) without their evidence row")
        if "outbox" in tables:
            orphans = conn.execute(
                "SELECT count(*) FROM outbox o WHERE o.alert_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM alerts WHERE id = o.alert_id)"
            ).fetchone()[0]
            if orphans:
                problems.append(f"{orphans} outbox row(s) without their alert")
        return problems
    finally:
        conn.close()


def outbox_states(db: Path) -> dict[str, str]:
    """Idempotency key -> state, for every outbox row."""
    return dict(query(db, "SELECT idempotency_key, state FROM outbox"))
