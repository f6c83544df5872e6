"""The daemon subprocess on the local executor (issue 17, items 2, 5 and 9).

`concurrency` is what runs at once; every due time gets exactly one row in
``source_runs``, run or not (through overruns, the start-up catch-up and a
stop); a project is scored once per set of results; a stop during a
delivery leaves the outbox whole.
"""

from __future__ import annotations

import itertools
import signal
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from daemon.store import Store
from tests.support.alerts import outbox_item
from tests.support.daemon_config import write_config
from tests.support.database import query
from tests.support.processes import wait_for
from tests.support.runs import Marks, due_rows, overlap, scorings
from tests.support.webhooks import Receiver


def _commands(tmp_path: Path, n: int, *, seconds: float, every: str, concurrency: int, hook: str | None = None,
              **daemon: str) -> Marks:
    """``n`` command sources, each noting when it starts and ends in a file of its own, taking ``seconds``."""
    marks = Marks(tmp_path / "marks")
    sources = [{"id": f"c{i}", "kind": "command", "timeout_seconds": 30, "argv": marks.argv(f"c{i}", seconds)} for i in range(n)]
    write_config(tmp_path, {
        "version": 1, "store": "pw.db", "allow_commands": True, "concurrency": concurrency,
        "daemon": {"debounce": "0.3s", "send_interval": "0.3s", "shutdown_grace": "10s", **daemon},
        "channels": [{"kind": "webhook", "id": "hook", "url": hook, "secret_env": "PW_TEST_WEBHOOK_SECRET",
                      "timeout_seconds": 10}] if hook else [],
        "projects": [{
            "id": "svc", "schedule": {"every": every}, "sources": sources,
            "pillars": [{"id": "p", "title": "P", "criteria": [
                {"id": s["id"], "title": s["id"], "checks": [
                    {"source": s["id"], "signal": "stdout_number", "regex": "([0-9]+)", "transform": {"scale": [0, 1]}}]}
                for s in sources]}],
        }],
    })
    return marks


@pytest.mark.parametrize("concurrency, sources", [(1, 3), (2, 4)])
def test_concurrency_is_what_runs_at_once(tmp_path, daemons, concurrency, sources):
    marks = _commands(tmp_path, sources, seconds=0.8, every="1h", concurrency=concurrency)
    d = daemons()
    # The catch-up at start makes every source due at once.
    wait_for(lambda: len(marks.spans()) == sources, timeout=30, what="every source collected", logs=d.logs)
    assert overlap(marks.spans()) == concurrency
    assert d.stop() == 0


def test_every_due_time_has_one_row_through_overruns_catch_up_and_a_stop(tmp_path, daemons):
    # 5 sources of 1.2 s each, 2 at a time, every 2 s: runs start late, overrun their interval, and some wait
    # past the next due time; the catch-up at start crosses due times too.
    _commands(tmp_path, 5, seconds=1.2, every="2s", concurrency=2)
    db = tmp_path / "pw.db"
    first = daemons()
    wait_for(lambda: len(query(db, "SELECT 1 FROM source_runs WHERE outcome = 'ok'")) >= 8, timeout=40,
             what="a few runs", logs=first.logs)
    assert first.stop() == 0
    time.sleep(4.5)  # away over two due times at least
    second = daemons()
    wait_for(lambda: f"started (pid {second.proc.pid})" in second.logs(), what="second start", logs=second.logs)
    time.sleep(5)
    assert second.stop() == 0

    rows = due_rows(db)
    for source in (f"c{i}" for i in range(5)):
        dues = sorted(rows[source])
        assert dues, source
        expected = [dues[0] + timedelta(seconds=2 * i) for i in range(int((dues[-1] - dues[0]).total_seconds()) // 2 + 1)]
        assert dues == expected, f"{source}: due times without a row: {sorted(set(expected) - set(dues))}"
        outcomes = {rows[source][due] for due in dues}
        assert outcomes <= {"ok", "skipped", "missed", "interrupted"}, (source, outcomes)
    downtime = [o for source in rows for o in rows[source].values() if o == "missed"]
    assert len(downtime) >= 5 * 2  # each source's due times while the daemon was stopped
    for log in (first.logs(), second.logs()):
        assert "Traceback" not in log


def test_a_project_is_scored_once_per_set_of_results(tmp_path, daemons):
    _commands(tmp_path, 4, seconds=0.05, every="1s", concurrency=4, debounce="0.2s")
    db = tmp_path / "pw.db"
    d = daemons()
    wait_for(lambda: len(scorings(db)) >= 8, timeout=40, what="eight scorings", logs=d.logs)
    assert d.stop() == 0
    finished = sorted(datetime.fromisoformat(t.replace("Z", "+00:00"))
                      for t, in query(db, "SELECT finished_at FROM source_runs WHERE outcome IN ('ok', 'error')"))
    times = scorings(db)
    for before, after in itertools.pairwise(times):
        assert any(before < f <= after for f in finished), f"scored at {before} and again at {after} with no run in between"


def test_sigterm_with_a_delivery_pending_leaves_the_outbox_whole_and_writes_to_no_closed_database(
        tmp_path, daemons, http_server):
    receiver = Receiver(http_server)
    # Three runs of 3 s, one at a time: the daemon stops during the first, with the others waiting.
    marks = _commands(tmp_path, 3, seconds=3, every="1h", concurrency=1, hook=f"{http_server.url}/hook", shutdown_grace="1s")
    d = daemons()
    wait_for(lambda: list(marks.folder.glob("*.txt")), timeout=20, what="a collection going", logs=d.logs)
    with Store.open(tmp_path / "pw.db") as store:
        store.enqueue([outbox_item("hook", "pending-1", created_at=datetime.now(timezone.utc))])
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=30) == 0, d.logs()
    assert "closed database" not in d.logs()
    assert "Traceback" not in d.logs()
    (state,), = query(tmp_path / "pw.db", "SELECT state FROM outbox")
    assert state in ("pending", "delivered")
    assert len(receiver.accepted) == (state == "delivered")
