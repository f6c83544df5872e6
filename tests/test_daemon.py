"""The daemon as a real subprocess: schedules, alerts to a real webhook, signals, restarts."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.daemon_config import config_body, write_config
from tests.support.database import query
from tests.support.git import GitRepo, durability_repo
from tests.support.http_server import HttpServer, Reply, Seen
from tests.support.processes import wait_for
from tests.support.webhooks import SECRET, Receiver


@pytest.fixture
def project(tmp_path: Path) -> GitRepo:
    return durability_repo(tmp_path / "repo")


def snapshots(tmp_path: Path) -> list[tuple]:
    return query(tmp_path / "pw.db", "SELECT id, overall, rules_hash, complete FROM snapshots ORDER BY id")


def test_deleted_test_file_alerts_a_signed_webhook_and_restoring_resolves(tmp_path, project, http_server, daemons):
    receiver = Receiver(http_server)
    write_config(tmp_path, config_body(project.path, f"{http_server.url}/hook"))
    d = daemons()
    wait_for(lambda: snapshots(tmp_path), what="first snapshot", logs=d.logs)
    assert snapshots(tmp_path)[-1][1] == 100.0

    project.remove("tests/test_restart.py")
    sha = project.commit("drop the restart test")
    wait_for(lambda: "firing" in receiver.events(), what="firing webhook", logs=d.logs)
    firing = receiver.accepted[0]
    assert firing["version"] == "4" and firing["status"] == "firing"
    (alert,) = [a for a in firing["alerts"] if a["labels"]["subject"] == "pillar:durability"] or firing["alerts"][:1]
    assert alert["labels"]["project"] == "svc"
    details = firing["pillarwatch"]
    assert details["baseline"] == 100.0 and details["value"] == 50.0
    assert any(f"tests/test_restart.py deleted in {sha[:7]}" in e["description"] for e in details["evidence"])
    assert [(c["criterion"], c["before"], c["after"]) for c in details["criteria"]] == [("restart", 1.0, 0.0)]

    project.write("tests/test_restart.py", "def test_restart():\n    pass\n")
    project.commit("restore it")
    wait_for(lambda: "resolved" in receiver.events(), what="resolved webhook", logs=d.logs)
    assert receiver.rejected == 0
    # One message per event and idempotency key, whatever the subjects.
    ids = [b["id"] for b in receiver.accepted]
    assert len(ids) == len(set(ids))
    assert d.stop() == 0


def test_second_daemon_is_refused_and_sigterm_exits_zero(tmp_path, project, http_server, daemons):
    Receiver(http_server)
    write_config(tmp_path, config_body(project.path, f"{http_server.url}/hook"))
    first = daemons()
    wait_for(lambda: snapshots(tmp_path), what="first snapshot", logs=first.logs)
    second = daemons()
    assert second.wait() == 2
    assert f"another pillarwatch daemon (pid {first.proc.pid})" in second.logs()
    started = time.monotonic()
    assert first.stop() == 0
    assert time.monotonic() - started < 10
    health = json.loads((tmp_path / "pw.health.json").read_text())
    assert health["last_success_at"] and health["projects"]["svc"]["overall"] == 100.0


def test_rule_change_with_sighup_gives_a_new_rules_hash_and_no_alert(tmp_path, project, http_server, daemons):
    receiver = Receiver(http_server)
    body = config_body(project.path, f"{http_server.url}/hook")
    # A criterion scored 0 so that re-weighting moves the pillar.
    body["projects"][0]["pillars"][0]["criteria"].append(
        {"id": "docs", "title": "Docs", "checks": [{"source": "repo", "signal": "file_exists", "path": "docs/README.md"}]})
    write_config(tmp_path, body)
    d = daemons()
    first = wait_for(lambda: snapshots(tmp_path), what="first snapshot", logs=d.logs)[-1]
    body["projects"][0]["pillars"][0]["criteria"][2]["weight"] = 10  # 66.7% -> 16.7%
    write_config(tmp_path, body)
    d.signal(signal.SIGHUP)
    later = wait_for(lambda: [s for s in snapshots(tmp_path) if s[2] != first[2]], what="snapshot under new rules", logs=d.logs)[-1]
    assert later[1] < first[1] - 5
    time.sleep(1.5)
    assert receiver.accepted == []
    assert query(tmp_path / "pw.db", "SELECT count(*) FROM alerts")[0][0] == 0
    # An invalid configuration on reload is refused and the daemon keeps running.
    (tmp_path / "pw.yaml").write_text("projects: [oops\n")
    d.signal(signal.SIGHUP)
    wait_for(lambda: "reload failed, keeping the running configuration" in d.logs(), what="reload refusal", logs=d.logs)
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_failing_source_is_stale_not_a_regression_then_one_source_failing_alert(tmp_path, project, http_server, daemons):
    receiver = Receiver(http_server)
    write_config(tmp_path, config_body(project.path, f"{http_server.url}/hook"))
    d = daemons()
    wait_for(lambda: snapshots(tmp_path), what="first snapshot", logs=d.logs)
    project.path.rename(tmp_path / "moved")  # the repository disappears
    wait_for(lambda: [s for s in snapshots(tmp_path) if not s[3]], what="partial snapshot", logs=d.logs)
    statuses = query(tmp_path / "pw.db", "SELECT DISTINCT status FROM criterion_scores WHERE snapshot_id = (SELECT max(id) FROM snapshots)")
    assert statuses == [("stale",)]
    wait_for(lambda: receiver.accepted, timeout=30, what="source failing alert", logs=d.logs)
    assert "error" in {outcome for _, outcome in runs(tmp_path)}  # failed runs are recorded
    time.sleep(2.5)  # more runs: still one alert, no regression
    kinds = [a["labels"]["alertname"] for body in receiver.accepted for a in body["alerts"]]
    assert kinds == ["SourceFailing"]
    (tmp_path / "moved").rename(project.path)
    wait_for(lambda: "resolved" in receiver.events(), what="source back", logs=d.logs)
    assert d.stop() == 0


def test_receiver_down_then_back_gets_each_message_once(tmp_path, project, http_server, daemons):
    receiver = Receiver(http_server)
    receiver.down = 3
    write_config(tmp_path, config_body(project.path, f"{http_server.url}/hook"))
    d = daemons()
    wait_for(lambda: snapshots(tmp_path), what="first snapshot", logs=d.logs)
    project.remove("tests/test_restart.py")
    project.commit("drop")
    # The pillar and the overall % both fell: two alerts of one project, one message for both.
    wait_for(lambda: receiver.accepted, timeout=60, what="delivery after the receiver came back", logs=d.logs)
    time.sleep(2)
    ids = [b["id"] for b in receiver.accepted]
    assert len(ids) == len(set(ids)) == 1
    assert sorted(a["labels"]["subject"] for a in receiver.accepted[0]["alerts"]) == ["overall", "pillar:durability"]
    assert receiver.down == 0
    attempts = query(tmp_path / "pw.db", "SELECT outbox_id, outcome FROM delivery_attempts ORDER BY rowid")
    # Each try of the group's message is recorded on both of its rows.
    assert sorted(outcome for _, outcome in attempts) == ["delivered"] * 2 + ["retry"] * 6
    for outbox_id in {o for o, _ in attempts}:  # retried until delivered, then never again
        outcomes = [outcome for o, outcome in attempts if o == outbox_id]
        assert outcomes[-1] == "delivered" and "delivered" not in outcomes[:-1]
    assert query(tmp_path / "pw.db", "SELECT DISTINCT state FROM outbox") == [("delivered",)]
    assert d.stop() == 0


class SlowEndpoint:
    """A live endpoint that takes a while to answer, so a kill can land mid-run."""

    def __init__(self, server: HttpServer, delay: float):
        self.calls = 0
        self.delay = delay
        server.route("/live", self)

    def __call__(self, seen: Seen) -> Reply:
        self.calls += 1
        return Reply(200, {"status": "ok"}, delay=self.delay)


def test_kill_9_mid_run_then_restart_loses_nothing_and_sends_nothing_twice(tmp_path, project, http_server, daemons):
    receiver = Receiver(http_server)
    receiver.down = 1_000_000  # nothing gets through while the first daemon lives
    live = SlowEndpoint(http_server, delay=1.0)
    body = config_body(project.path, f"{http_server.url}/hook")
    body["projects"][0]["sources"].append({"id": "live", "kind": "http", "url": f"{http_server.url}/live"})
    body["projects"][0]["pillars"][0]["criteria"].append(
        {"id": "up", "title": "Service answers", "checks": [{"source": "live", "signal": "status"}]})
    write_config(tmp_path, body)
    db_path = tmp_path / "pw.db"
    first = daemons()
    wait_for(lambda: [s for s in snapshots(tmp_path) if s[3]], what="first complete snapshot", logs=first.logs)
    project.remove("tests/test_restart.py")
    project.commit("drop")
    wait_for(lambda: query(db_path, "SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0], what="queued alert", logs=first.logs)
    # Kill while a collection is in flight: the endpoint has just been asked and not yet answered.
    calls = live.calls
    wait_for(lambda: live.calls > calls, what="a collection in flight", logs=first.logs)
    time.sleep(0.2)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    assert query(db_path, "SELECT count(*) FROM source_runs WHERE source = 'live' AND outcome = 'running'")[0][0] == 1
    pending = {row[0] for row in query(db_path, "SELECT idempotency_key FROM outbox WHERE state = 'pending'")}
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Every snapshot is whole: all its criteria are there.
    assert db.execute(
        "SELECT count(*) FROM snapshots s WHERE (SELECT count(*) FROM criterion_scores c WHERE c.snapshot_id = s.id) != 3"
    ).fetchone()[0] == 0
    db.close()

    receiver.down = 0
    second = daemons()
    # The rows pending at the kill are delivered (in one message: the project's group), and recorded so.
    delivered = "SELECT idempotency_key FROM outbox WHERE state = 'delivered'"
    wait_for(lambda: receiver.accepted and {row[0] for row in query(db_path, delivered)} >= pending,
             what="pending alerts delivered after restart", logs=second.logs)
    time.sleep(2)
    ids = [b["id"] for b in receiver.accepted]
    assert len(ids) == len(set(ids))
    assert "firing" in receiver.events()
    assert second.stop() == 0


def runs(tmp_path: Path, source: str = "repo") -> list[tuple]:
    return query(tmp_path / "pw.db", "SELECT due_at, outcome FROM source_runs WHERE source = ? ORDER BY due_at", source)


def test_a_due_time_is_collected_once_across_crashes_and_missed_ones_are_caught_up(tmp_path, project, http_server, daemons):
    Receiver(http_server)
    body = config_body(project.path, f"{http_server.url}/hook")
    body["projects"][0]["schedule"] = {"every": "1h"}
    write_config(tmp_path, body)
    first = daemons()
    wait_for(lambda: snapshots(tmp_path), what="catch-up collection at start", logs=first.logs)
    (due, outcome), = runs(tmp_path)
    assert outcome == "ok" and due.endswith(":00:00Z")  # anchored at the hour
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()

    second = daemons()  # the same due time: not collected again
    wait_for(lambda: f"started (pid {second.proc.pid})" in second.logs(), what="second start", logs=second.logs)
    time.sleep(2)
    assert runs(tmp_path) == [(due, "ok")]
    assert len(snapshots(tmp_path)) == 1
    assert second.stop() == 0

    # Pretend the last collection was two hours ago: the daemon was down over a due time.
    db = sqlite3.connect(tmp_path / "pw.db")
    older, between = (db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%SZ', ?, ?)", [due, f"-{h} hours"]).fetchone()[0] for h in (2, 1))
    db.execute("UPDATE source_runs SET due_at = ?", [older])
    db.commit()
    db.close()
    third = daemons()
    # The latest due time, once; the one in between has its row too: missed (issue 17, item 5).
    wait_for(lambda: runs(tmp_path) == [(older, "ok"), (between, "missed"), (due, "ok")], what="catch-up of the missed due time",
             logs=third.logs)
    assert third.stop() == 0


def test_a_run_still_going_when_the_next_is_due_is_recorded_as_skipped(tmp_path, project, http_server, daemons):
    Receiver(http_server)
    SlowEndpoint(http_server, delay=2.5)
    body = config_body(project.path, f"{http_server.url}/hook")
    body["projects"][0]["sources"].append({"id": "live", "kind": "http", "url": f"{http_server.url}/live", "schedule": "1s"})
    body["projects"][0]["pillars"][0]["criteria"].append(
        {"id": "up", "title": "Service answers", "checks": [{"source": "live", "signal": "status"}]})
    write_config(tmp_path, body)
    d = daemons()
    wait_for(lambda: ("skipped",) in {(o,) for _, o in runs(tmp_path, "live")}, what="a skipped run", logs=d.logs)
    wait_for(lambda: ("ok",) in {(o,) for _, o in runs(tmp_path, "live")}, what="the long run finishing", logs=d.logs)
    outcomes = [o for _, o in runs(tmp_path, "live")]
    assert "running" not in outcomes[:-2]  # only the run in flight now may be unfinished
    assert d.stop() == 0


class BlockingEndpoint:
    """A live endpoint that holds every request until released: a run that is in flight for as long as the test wants."""

    def __init__(self, server: HttpServer):
        self.calls = 0
        self.released = threading.Event()
        server.route("/live", self)

    def __call__(self, seen: Seen) -> Reply:
        self.calls += 1
        self.released.wait(timeout=60)
        return Reply(200, {"status": "ok"})


def test_a_run_cut_by_a_kill_is_marked_interrupted_and_collected_again_at_start(tmp_path, http_server, daemons):
    live = BlockingEndpoint(http_server)
    write_config(tmp_path, {
        "version": 1, "store": "pw.db", "daemon": {"debounce": "0.3s", "shutdown_grace": "2s"},
        "projects": [{
            "id": "svc", "schedule": {"every": "10m"},
            "sources": [{"id": "live", "kind": "http", "url": f"{http_server.url}/live", "timeout_seconds": 60}],
            "pillars": [{"id": "up", "title": "Up", "criteria": [
                {"id": "answers", "title": "Service answers", "checks": [{"source": "live", "signal": "status"}]}]}],
        }],
    })
    first = daemons()
    wait_for(lambda: live.calls, what="the first run in flight", logs=first.logs)
    ((due, outcome),) = runs(tmp_path, "live")
    assert outcome == "running"
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    live.released.set()  # the endpoint answers from now on
    assert snapshots(tmp_path) == []

    second = daemons()
    started = time.monotonic()
    wait_for(lambda: snapshots(tmp_path), timeout=20, what="a snapshot from the interrupted due time", logs=second.logs)
    if runs(tmp_path, "live")[-1][0] == due:  # not across a 10-minute boundary, which would make a newer due time
        assert time.monotonic() - started < 15  # at start, not at the next boundary
    wait_for(lambda: runs(tmp_path, "live")[-1][1] == "ok", what="the new run recorded", logs=second.logs)
    assert f"run due {due} was interrupted" in second.logs()
    # The interruption stays counted once the due time is collected again (the runs counter never goes back).
    assert query(tmp_path / "pw.db", "SELECT runs FROM source_run_totals WHERE source = 'live' AND outcome = 'interrupted'") == [(1,)]
    assert second.stop() == 0


def test_a_source_trickling_its_answer_ends_at_its_deadline_and_the_next_run_is_not_skipped(
        tmp_path, project, http_server, daemons):
    Receiver(http_server)
    http_server.route("/live", Reply(200, "x" * 10_000, trickle=0.3))  # the server would go on for 50 minutes
    body = config_body(project.path, f"{http_server.url}/hook")
    body["projects"][0]["sources"].append(
        {"id": "live", "kind": "http", "url": f"{http_server.url}/live", "schedule": "3s", "timeout_seconds": 1})
    body["projects"][0]["pillars"][0]["criteria"].append(
        {"id": "up", "title": "Service answers", "checks": [{"source": "live", "signal": "status"}]})
    write_config(tmp_path, body)
    d = daemons()
    finished = lambda: [o for _, o in runs(tmp_path, "live") if o not in ("running",)]  # noqa: E731
    wait_for(lambda: len(finished()) >= 4, timeout=25, what="four finished runs of the trickling source", logs=d.logs)
    outcomes = [o for _, o in runs(tmp_path, "live")]
    # Only the due time right after the start's catch-up run may fall while that run is going.
    assert "skipped" not in outcomes[2:] and "running" not in outcomes[:-1]
    # "missed": on a loaded machine the scheduler may fire a due time late, after the next one (recorded so).
    assert set(finished()) <= {"error", "skipped", "missed"} and "error" in finished()
    errors = query(tmp_path / "pw.db", "SELECT error FROM source_runs WHERE source = 'live' AND outcome = 'error'")
    assert all("no answer within 1s" in e for e, in errors)
    assert d.stop() == 0


def test_an_unusable_store_path_is_one_line_and_exit_2(tmp_path, project, http_server):
    (tmp_path / "afile").write_text("a regular file, not a folder\n")
    write_config(tmp_path, config_body(project.path, f"{http_server.url}/hook", store="afile/pw.db"))
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", "daemon", "--config", "pw.yaml", "--no-api"],
                          cwd=tmp_path, env={**os.environ, "PW_TEST_WEBHOOK_SECRET": SECRET},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("pillarwatch: error: ") and str(tmp_path / "afile" / "pw.db") in line
    assert (tmp_path / "afile").read_text() == "a regular file, not a folder\n"  # nothing lost


def test_sigterm_with_a_receiver_that_never_answers_exits_within_shutdown_grace(tmp_path, project, http_server, daemons):
    hanging: list[str] = []

    def never_answers(seen: Seen) -> Reply:
        hanging.append(seen.headers["webhook-id"])
        return Reply(204, "", delay=300)  # accepts the request, answers long after every timeout here

    http_server.route("/hook", never_answers)
    body = config_body(project.path, f"{http_server.url}/hook")
    body["daemon"]["shutdown_grace"] = "2s"
    body["channels"][0]["timeout_seconds"] = 60
    write_config(tmp_path, body)
    d = daemons()
    wait_for(lambda: snapshots(tmp_path), what="first snapshot", logs=d.logs)
    project.remove("tests/test_restart.py")
    project.commit("drop")
    wait_for(lambda: hanging, what="a send in flight", logs=d.logs)
    sent = list(hanging)
    started = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=30) == 0, d.logs()
    assert time.monotonic() - started < 2 + 3, d.logs()  # shutdown_grace and a margin
    assert hanging == sent  # the shutdown flush did not send the item in flight again
    pending = query(tmp_path / "pw.db", "SELECT id, idempotency_key, state FROM outbox ORDER BY id")
    assert len(pending) == 2 and {state for _, _, state in pending} == {"pending"}

    # The receiver is back: after a restart the group's message is delivered, once, with the same key.
    receiver = Receiver(http_server)
    d = daemons()
    wait_for(lambda: receiver.accepted, what="delivery after the restart", logs=d.logs)
    time.sleep(1)
    assert d.stop() == 0
    assert [b["id"] for b in receiver.accepted] == sent
    assert len(receiver.accepted[0]["alerts"]) == 2
    delivered = query(tmp_path / "pw.db", "SELECT outbox_id FROM delivery_attempts WHERE outcome = 'delivered'")
    assert sorted(o for (o,) in delivered) == [i for i, _, _ in pending]
