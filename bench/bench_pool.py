"""What a Celery queue no worker serves costs the other queues: nothing, past its first `queue_timeout`.

The real daemon (`pillarwatch daemon`, a subprocess) on a real Redis, with
`concurrency: 4`. Queue ``qb``: 12 `http` sources every second against a
server answering after 200 ms, served by one `pillarwatch worker -Q qb
--concurrency 2`, so qb is bound by its worker processes, not by the
schedule. *Baseline*: qb alone. *Subject*: the same, plus 8 sources on queue
``qa`` that no worker serves (`queue_timeouts: {qa: 3s}`). The figure is
qb's collections per second (its ``ok`` runs finished in a window, after a
warm-up longer than qa's queue timeout), alternating baseline and subject
rounds; the ratio is subject / baseline (1.0: the dead queue costs nothing).

Run alone: ``python -m bench.run --only pool`` (about 3 minutes; needs redis-server).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from bench.bench_workers import ApiServer, Redis

from ._support import ROOT, BenchResult, Context, Row, median

NAME = "pool"
TITLE = "A dead Celery queue costs the other queues nothing"

QB_SOURCES, QA_SOURCES, CONCURRENCY, WORKER_PROCESSES = 12, 8, 4, 2


def sizes(quick: bool) -> tuple[int, float, float]:
    """(rounds of each, warm-up seconds, measured seconds)."""
    return (1, 5.0, 5.0) if quick else (3, 8.0, 20.0)


def _config(folder: Path, broker: str, api: str, *, dead_queue: bool) -> Path:
    sources: list[dict[str, Any]] = [{"id": f"qb{i}", "kind": "http", "url": f"{api}/slow/{i}", "queue": "qb", "timeout_seconds": 5}
                                     for i in range(QB_SOURCES)]
    if dead_queue:
        sources += [{"id": f"qa{i}", "kind": "http", "url": f"{api}/slow/a{i}", "queue": "qa", "timeout_seconds": 5}
                    for i in range(QA_SOURCES)]
    body = {
        "version": 1, "store": "pw.db", "executor": "celery", "concurrency": CONCURRENCY,
        "daemon": {"debounce": "1s", "shutdown_grace": "3s"},
        "celery": {"broker_url": broker, "queues": ["qa", "qb"], "max_retries": 0, "queue_timeouts": {"qa": "3s"}},
        "projects": [{"id": "svc", "schedule": {"every": "1s"}, "sources": sources, "pillars": [
            {"id": "up", "title": "Up", "criteria": [
                {"id": s["id"], "title": s["id"], "checks": [{"source": s["id"], "signal": "status"}]} for s in sources]}]}],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pw.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def _qb_rate(db: Path, since: datetime, until: datetime) -> float:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT finished_at FROM source_runs WHERE source LIKE 'qb%' AND outcome = 'ok'").fetchall()
    finally:
        conn.close()
    done = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t, in rows]
    return sum(since <= t < until for t in done) / (until - since).total_seconds()


def _round(folder: Path, broker: str, api: str, *, dead_queue: bool, warm: float, window: float) -> float:
    """qb's collections per second with (or without) the dead queue qa."""
    config = _config(folder, broker, api, dead_queue=dead_queue)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "worker", "--config", str(config), "--queues", "qb",
         "--concurrency", str(WORKER_PROCESSES), "--cache-dir", str(folder / "cache"), "--log-level", "warning"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "worker.log", "ab"))
    daemon = None
    try:
        time.sleep(3)  # the worker connects; a task sent before that waits in the queue
        daemon = subprocess.Popen([sys.executable, "-m", "daemon.cli", "daemon", "--config", str(config), "--no-api"],
                                  cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "daemon.log", "ab"))
        time.sleep(warm)
        since = datetime.now(timezone.utc)
        time.sleep(window)
        until = datetime.now(timezone.utc)
        return _qb_rate(folder / "pw.db", since, until)
    finally:
        for proc in (daemon, worker):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def measure(ctx: Context) -> dict[str, Any]:
    rounds, warm, window = sizes(ctx.quick)
    folder = ctx.folder(NAME)
    redis = Redis(folder)
    api = ApiServer()
    alone: list[float] = []
    beside: list[float] = []
    try:
        with ctx.task(f"{NAME}: {rounds} round(s) of qb alone and beside a dead queue", total=rounds * 2) as task:
            for r in range(rounds):
                for dead, into in ((False, alone), (True, beside)):
                    into.append(_round(folder / f"r{r}-{'dead' if dead else 'alone'}", redis.url(r * 2 + dead + 1), api.url,
                                       dead_queue=dead, warm=warm, window=window))
                    task.advance()
    finally:
        api.close()
        redis.close()
    return {"alone": alone, "beside": beside, "rounds": rounds, "warm": warm, "window": window}


def run(ctx: Context) -> BenchResult:
    body = measure(ctx)
    alone, beside = body["alone"], body["beside"]
    return BenchResult(
        name=NAME, title=TITLE,
        size=(f"queue qb: {QB_SOURCES} http sources every 1 s (200 ms each), 1 worker of {WORKER_PROCESSES} processes; "
              f"queue qa: {QA_SOURCES} sources, no worker; daemon concurrency {CONCURRENCY}"),
        rounds=body["rounds"],
        rows=[Row("qb collections per second beside a dead queue qa", "/s", median(beside), median(alone), "qb alone",
                  target="ratio ≥ 0.9", met=median(beside) >= 0.9 * median(alone),
                  extra={"rounds": beside, "baseline rounds": alone})],
        method=(f"The real daemon and worker as subprocesses on a real Redis; qb's `ok` runs finished within a "
                f"{body['window']:g} s window after a {body['warm']:g} s warm-up (longer than qa's `queue_timeout` of 3 s), "
                "baseline and subject rounds alternating, each on a fresh database and Redis database."),
        notes=["Before issue 17 a queue without a worker held every thread of the daemon's shared pool for its whole "
               "result wait (about 70 minutes by default): qb got no collection at all, and alert delivery waited too. "
               "Now the dead queue holds one slot (a probe) once its first task is given up, and qb the rest."],
    )
