"""The latest snapshot from a database of 100,000: `status --json` and the HTTP route.

The database holds one real snapshot (a collection of a generated repository:
ten criteria with their evidence), copied in SQL to 100,000 snapshots of the
project, fifteen minutes apart, each with its pillar and criterion rows. A
second database holds 100 of them. Measured:

- ``pillarwatch status --json`` as a new process each time, against a new
  Python process doing the bare indexed ``sqlite3`` read of the same row;
- ``GET /api/v1/projects/{project}/snapshots/latest`` on a running
  ``pillarwatch serve`` (one client, keep-alive), against the bare read
  in-process (connect read-only, the indexed SELECT, close: what each request
  does before loading the snapshot);
- the same route on the 100-snapshot database: equal times mean no scan;
- the plan of every statement ``Store.latest`` runs (``EXPLAIN QUERY PLAN``).
"""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx

from daemon.config.loading import load_config
from daemon.run.runner import run_projects
from daemon.store import Store

from ._support import (
    NOW,
    PILLARWATCH,
    PYTHON,
    BenchResult,
    Context,
    Row,
    median,
    percentile,
    project_dict,
    write_config,
)
from .report import fmt

NAME = "status"
TITLE = "Latest snapshot from a large database (status --json, HTTP)"

_LATEST_ROW = "SELECT * FROM snapshots WHERE project = ? ORDER BY taken_at DESC, id DESC LIMIT 1"
_BARE = f"""
import sqlite3, sys
conn = sqlite3.connect(f"file:{{sys.argv[1]}}?mode=ro", uri=True)
print(conn.execute({_LATEST_ROW!r}, ["svc"]).fetchone())
conn.close()
"""
_SCAN_FREE = 1.5  # the big database may be this much slower than the small one and still count as "no scan"


def sizes(ctx: Context) -> tuple[int, int, int]:
    """(snapshots, CLI runs, HTTP requests)."""
    return (500, 1, 20) if ctx.quick else (100_000, 20, 1000)


def build(folder: Path, repo: Path, snapshots: int) -> Path:
    """A configuration whose database holds ``snapshots`` snapshots of project ``svc``."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = write_config(folder, [project_dict("svc", {"path": str(repo), "branch": "main"})])
    config = load_config(config_path)
    start = NOW - timedelta(minutes=15 * (snapshots - 1))
    with Store.open(config.store_path) as store:
        run_projects(config, config.projects, store=store, now=start)
        db = store.db
        (template,) = db.execute("SELECT id FROM snapshots").fetchone()
        with store.transaction():
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                " INSERT INTO snapshots (id, project, taken_at, rules_hash, complete, overall, content_hash, origin, sources)"
                " SELECT s.id + i, s.project, strftime('%Y-%m-%dT%H:%M:%SZ', s.taken_at, '+' || (15 * i) || ' minutes'),"
                " s.rules_hash, s.complete, s.overall - (i % 10), s.content_hash, s.origin, s.sources"
                " FROM snapshots s, n WHERE s.id = ?", [snapshots - 1, template])
            db.execute(
                "INSERT INTO pillar_scores SELECT s.id, p.pillar, p.position, p.title, p.weight, p.score, p.coverage"
                " FROM snapshots s JOIN pillar_scores p ON p.snapshot_id = ? WHERE s.id != ?", [template, template])
            db.execute(
                "INSERT INTO criterion_scores SELECT s.id, c.pillar, c.criterion, c.position, c.title, c.weight, c.score,"
                " c.status, c.reason, c.scored_at, c.checks, c.evidence"
                " FROM snapshots s JOIN criterion_scores c ON c.snapshot_id = ? WHERE s.id != ?", [template, template])
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("ANALYZE")
    return config_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``pillarwatch serve`` on a free port, as a subprocess; :meth:`wait` until it answers."""

    def __init__(self, config_path: Path):
        self.port = _free_port()
        self.process = subprocess.Popen([*PILLARWATCH, "serve", "--config", str(config_path), "--port", str(self.port),
                                         "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self) -> Server:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pillarwatch serve did not start: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            time.sleep(0.1)
        return self

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _bare_read(db: Path) -> float:
    started = time.perf_counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.execute(_LATEST_ROW, ["svc"]).fetchone()
    conn.close()
    return time.perf_counter() - started


def _request(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def _process(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def query_plans(db: Path) -> list[str]:
    """The query plan of every statement ``Store.latest`` runs: one line per statement shape, with its count."""
    seen: list[str] = []
    with Store.open(db, readonly=True) as store:
        store.db.conn.set_trace_callback(seen.append)
        store.latest("svc")
        store.db.conn.set_trace_callback(None)
        shapes: dict[str, tuple[int, str]] = {}
        for sql in seen:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            shape = re.sub(r"'[^']*'|\b\d+\b", "?", " ".join(sql.split()))
            count, plan = shapes.get(shape, (0, ""))
            if not plan:
                plan = "; ".join(r[3] for r in store.db.execute("EXPLAIN QUERY PLAN " + sql).fetchall())
            shapes[shape] = (count + 1, plan)
    return [f"`{shape}`{f' (×{count})' if count > 1 else ''}: {plan}" for shape, (count, plan) in shapes.items()]


def run(ctx: Context) -> BenchResult:
    snapshots, cli_runs, requests = sizes(ctx)
    (repo,) = ctx.repos(1, 60 if ctx.quick else 2000)
    folder = ctx.folder(NAME)
    with ctx.task(f"{NAME}: building a database of {snapshots:,} snapshots", total=None):
        big = build(folder / "big", repo, snapshots)
        small = build(folder / "small", repo, 100)
    big_db, _small_db = (load_config(p).store_path for p in (big, small))
    size_mib = big_db.stat().st_size / 2**20

    cli: list[float] = []
    cli_base: list[float] = []
    imports: list[float] = []
    with ctx.task(f"{NAME}: status --json, {cli_runs} processes", total=cli_runs) as task:
        if not ctx.quick:  # warm the page cache
            _process([*PILLARWATCH, "status", "--json", "--config", str(big)])
        for _ in range(cli_runs):
            cli.append(_process([*PILLARWATCH, "status", "--json", "--config", str(big)]))
            cli_base.append(_process([PYTHON, "-c", _BARE, str(big_db)]))
            imports.append(_process([PYTHON, "-c", "import daemon.cli"]))
            task.advance()

    http: list[float] = []
    http_small: list[float] = []
    bare: list[float] = []
    servers = [Server(big), Server(small)]  # both start at once
    try:
        for server in servers:
            server.wait()
        path = "/api/v1/projects/svc/snapshots/latest"
        with httpx.Client(timeout=30) as client, ctx.task(f"{NAME}: HTTP, {requests} requests", total=requests) as task:
            for _ in range(5):  # warm-up: first requests import and cache
                _request(client, servers[0].url + path)
                _request(client, servers[1].url + path)
            for _ in range(requests):
                http.append(_request(client, servers[0].url + path))
                http_small.append(_request(client, servers[1].url + path))
                bare.append(_bare_read(big_db))
                task.advance()
    finally:
        for server in servers:
            server.close()

    def spread(values: list[float]) -> dict[str, float]:
        return {"p50": percentile(values, 50), "p99": percentile(values, 99)}

    plans = query_plans(big_db)
    # A scan of a table-valued function (json_each over one row's list of evidence hashes) reads that row's list only.
    scans = [p for p in plans if "SCAN" in p and "USING" not in p.split("SCAN", 1)[1][:80] and "VIRTUAL TABLE" not in p]
    scan_ratio = median(http) / median(http_small)
    return BenchResult(
        name=NAME, title=TITLE,
        size=f"{snapshots:,} snapshots of one project (10 criteria each, {size_mib:,.0f} MiB); {cli_runs} CLI runs, {requests} HTTP requests",
        rounds=cli_runs,
        rows=[
            Row("`status --json` (a new process)", "s", median(cli), median(cli_base),
                "`python -c` bare indexed sqlite3 read, a new process", extra={**spread(cli), "baseline": spread(cli_base)}),
            Row("… of which: `import daemon.cli` (a new process)", "s", median(imports), median(cli_base),
                "`python -c` bare indexed sqlite3 read, a new process", extra=spread(imports)),
            Row("HTTP latest snapshot", "s", median(http), median(bare), "bare indexed sqlite3 read in-process",
                extra={**spread(http), "baseline": spread(bare)}),
            Row("HTTP latest: 100,000 vs 100 snapshots", "s", median(http), median(http_small),
                "the same route on a 100-snapshot database", target=f"no full scan (≤ {_SCAN_FREE}×)",
                met=scan_ratio <= _SCAN_FREE and not scans, extra=spread(http_small)),
        ],
        method=("Subprocesses for the CLI (p50/p99 over the runs, alternating with the baseline process); one keep-alive "
                "httpx client against `pillarwatch serve` for HTTP, alternating big database, small database and the bare "
                f"read. The p99 of {cli_runs} CLI runs is about their maximum."),
        notes=[f"`status --json` is a new Python process: of its {fmt(median(cli), 's')}, importing `daemon.cli` alone "
               f"takes {fmt(median(imports), 's')} (building the configuration's pydantic models, importing every "
               "collector and its libraries: `python -X importtime -c 'import daemon.cli'` lists them); reading and "
               "printing the snapshot is the rest. The database's size does not show there: see the HTTP rows and "
               "the plans below. No target; importing the collectors and the notification channels only when a "
               "command needs them would be the fix.",
               "Query plans of `Store.latest` on the big database:"] + [f"- {p}" for p in plans]
        + ([f"Full scans found: {len(scans)}."] if scans else []),
    )
