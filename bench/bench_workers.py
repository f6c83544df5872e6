"""Collections on Celery workers (`executor: celery`): speed-up, evidence per second, snapshot writes.

    python -m bench.bench_workers              # full size (about 10 minutes); writes docs/SCALING.md
    python -m bench.bench_workers --quick      # a smoke run (about a minute); writes nothing unless --markdown
    python -m bench.bench_workers --markdown /tmp/SCALING.md --json /tmp/workers.json
    python -m bench.bench_workers --from-json /tmp/workers.json --markdown docs/SCALING.md   # re-render only

Everything runs on this machine: a real Redis (Debian's ``redis-server`` on a
free port of 127.0.0.1), real ``pillarwatch worker`` processes (one process
each, ``--concurrency 1``) and the daemon's own :class:`daemon.run.tasks.CeleryExecutor`
sending the jobs from 16 threads (the daemon's ``concurrency``), as its
collect jobs do.

1. *Speed-up*: 1,000 ``http`` sources whose server answers after 200 ms (a
   simulated 200 ms collection), collected with 1, 2 and 4 worker processes.
   The ratio is the time with one worker over the time with N.
2. *Evidence per second per worker process*, by kind: git sources (generated
   repositories of 2,000 files mirrored from ``file://`` URLs, the ten
   signals of bench/_support.py; cold = first clone, warm = fetch of an
   unchanged remote and reading), GitHub Actions and GitLab CI sources
   (a local server answering with API-shaped listings, 200 with an ETag the
   first time, 304 afterwards). No network latency: these are the CPU costs
   a worker pays; SCALING.md adds assumed latencies.
3. *SQLite*: what the daemon writes per collection (the run, the source's
   result) and per snapshot (:func:`daemon.run.record.record`), changed
   snapshots, in the daemon's own store.

bench/run.py runs it as ``workers``; a full run also rewrites docs/SCALING.md
(the capacity model there is computed from these figures).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/bench_workers.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

import yaml

from collectors.evidence import CollectResult, EvidenceRequest
from daemon.config.loading import load_config
from daemon.config.settings import CelerySettings
from daemon.run.jobs import CollectJob, SourceJob
from daemon.run.record import record
from daemon.run.tasks import CeleryExecutor
from daemon.store import Store

from ._support import (
    NOW,
    ROOT,
    SIGNALS,
    BenchResult,
    Context,
    Row,
    changed_result,
    machine,
    project_dict,
    rss_kib,
    write_config,
)
from .scaling_faults import FAILING_AND_RECOVERING

NAME = "workers"
TITLE = "Collections on Celery workers"

SLOW_SECONDS = 0.2
INFLIGHT = 16  # the daemon's collect threads (`concurrency`) in these runs


def sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"sources": 40, "git": 4, "files": 60, "api": 40, "snapshots": 40}
    return {"sources": 1000, "git": 40, "files": 2000, "api": 400, "snapshots": 400}


# --- Redis, workers, an API-shaped server ---------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    """redis-server on a free port of 127.0.0.1, no persistence."""

    def __init__(self, folder: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed: apt-get install redis-server")
        self.port = _free_port()
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                      "--daemonize", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Workers:
    """``count`` `pillarwatch worker --concurrency 1` processes, ready when constructed."""

    def __init__(self, folder: Path, config: Path, count: int, executor: CeleryExecutor):
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for i in range(count):
            log = folder / f"worker-{count}-{i}.log"
            self.logs.append(log)
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "worker", "--config", str(config), "--concurrency", "1",
                 "--cache-dir", str(folder / f"cache-{i}"), "--log-level", "warning"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "ab")))
        self._wait_ready(executor)

    def _wait_ready(self, executor: CeleryExecutor) -> None:
        # At warning level a worker prints nothing when ready: ask them (Celery's remote-control ping).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for proc, log in zip(self.procs, self.logs):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited {proc.returncode}: {log.read_text()[-2000:]}")
            if len(executor.app.control.ping(timeout=0.5)) >= len(self.procs):
                return
        raise RuntimeError("workers did not start")

    def cpu_seconds(self) -> float:
        """CPU time of the workers, their pool processes and what those ran and reaped (git, its upload-pack)."""
        total = 0
        for proc in self.procs:
            total += _cpu_ticks(proc.pid, children=False)
            total += sum(_cpu_ticks(child, children=True) for child in _children(proc.pid))
        return total / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> tuple[float, float]:
        """Resident memory (MiB) of the first worker's main process and of one of its pool processes."""
        main = self.procs[0].pid
        pool = _children(main)
        return rss_kib(main)[0] / 1024, (rss_kib(pool[0])[0] / 1024 if pool else 0.0)

    def close(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _cpu_ticks(pid: int, *, children: bool) -> int:
    """utime + stime (+ cutime + cstime) of a process, from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return utime + stime + (cutime + cstime if children else 0)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _github_listing(count: int = 10) -> dict[str, Any]:
    """A workflow-runs answer of the GitHub API's shape and size, each run made from the recorded one."""
    recorded = ROOT / "tests" / "fixtures" / "gh_actions_list_workflow_runs.json"
    template: dict[str, Any] = json.loads(recorded.read_text())["workflow_runs"][0]
    runs = []
    for i in range(count):
        created = (NOW - timedelta(hours=3 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        runs.append({**template, "id": 9_000_000 + i, "run_number": 500 - i, "status": "completed",
                     "conclusion": "success" if i % 4 else "failure", "html_url": f"https://github.com/o/r/actions/runs/{9_000_000 + i}",
                     "head_sha": hashlib.sha1(str(i).encode()).hexdigest(), "created_at": created, "run_started_at": created,
                     "updated_at": created})
    return {"total_count": count, "workflow_runs": runs}


def _gitlab_pipelines(count: int = 20) -> list[dict[str, Any]]:
    return [{"id": 7000 + i, "iid": 300 - i, "project_id": 1, "status": "success" if i % 3 else "failed", "source": "push",
             "ref": "main", "sha": hashlib.sha1(str(i).encode()).hexdigest(), "web_url": f"https://gitlab.example/p/-/pipelines/{7000 + i}",
             "created_at": (NOW - timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
             "updated_at": (NOW - timedelta(hours=i) + timedelta(minutes=9)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
            for i in range(count)]


_REPORT = {"total_time": 61.2, "total_count": 240, "success_count": 236, "failed_count": 2, "skipped_count": 2, "error_count": 0,
           "test_suites": []}


class ApiServer:
    """``/slow``: 200 ms then 200; GitHub runs and GitLab pipelines and reports, with ETags (304 when matched)."""

    def __init__(self) -> None:
        github = json.dumps(_github_listing()).encode()
        gitlab = json.dumps(_gitlab_pipelines()).encode()
        report = json.dumps(_REPORT).encode()
        self.requests = {"200": 0, "304": 0}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path.startswith("/slow/"):
                    time.sleep(SLOW_SECONDS)
                    body, etag = b'{"ok": true}', None
                elif path.endswith("/actions/workflows/ci.yml/runs"):
                    body, etag = github, '"gh-1"'
                elif path.endswith("/test_report"):
                    body, etag = report, '"report-1"'
                elif path.endswith("/pipelines"):
                    body, etag = gitlab, '"gl-1"'
                else:
                    body, etag = b'{"message": "Not Found"}', None
                if etag and self.headers.get("If-None-Match") == etag:
                    outer.requests["304"] += 1
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                outer.requests["200"] += 1
                self.send_response(404 if body.startswith(b'{"message"') else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 128
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- driving the executor --------------------------------------------------------------------


_pass = 0


def collect_all(executor: CeleryExecutor, sources: list[tuple[dict[str, Any], list[EvidenceRequest]]],
                previous: list[CollectResult] | None = None) -> tuple[float, list[CollectResult]]:
    """(seconds, results): every source collected once through the workers, INFLIGHT at a time.

    ``previous``: each source's last result, sent along as the daemon does (a git source whose
    branch has not moved reuses its evidence).
    """
    global _pass
    _pass += 1
    due = NOW + timedelta(hours=_pass)  # a new due time each pass: new task ids
    before = previous or [None] * len(sources)
    jobs = [CollectJob(project="bench", due=due, now=datetime.now(timezone.utc), target=SourceJob(source=s, requests=r), previous=p)
            for (s, r), p in zip(sources, before)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=INFLIGHT) as pool:
        results = [c.result for c in pool.map(executor.collect, jobs)]
    return time.perf_counter() - started, results


def _failures(results: list[CollectResult]) -> list[str]:
    return [f"{r.source}: {r.error.kind}: {r.error.message}" for r in results if r.error is not None]


def _config(folder: Path, broker: str, **extra: Any) -> tuple[Path, CeleryExecutor]:
    path = folder / "celery.yaml"
    path.write_text(yaml.safe_dump({"celery": {"broker_url": broker, "visibility_timeout": "30m", "max_retries": 0}, **extra}))
    settings = CelerySettings(broker_url=broker, visibility_timeout=timedelta(minutes=30), max_retries=0)
    return path, CeleryExecutor(settings)


def _flush(broker: str) -> None:
    import redis

    redis.Redis.from_url(broker).flushdb()


# --- the measurements ------------------------------------------------------------------------


def speedup(folder: Path, redis_server: Redis, api: ApiServer, count: int, say: Any) -> dict[str, Any]:
    broker = redis_server.url(1)
    config, executor = _config(folder, broker)
    sources = [({"id": f"s{i}", "kind": "http", "url": f"{api.url}/slow/{i}", "timeout_seconds": 10}, [EvidenceRequest(signal="status")])
               for i in range(count)]
    seconds: dict[int, float] = {}
    for n in (1, 2, 4):
        _flush(broker)
        say(f"speed-up: {count} sources x {SLOW_SECONDS * 1000:.0f} ms on {n} worker process(es)")
        workers = Workers(folder, config, n, executor)
        try:
            collect_all(executor, sources[: 4 * n])  # warm: imports, connections
            cpu = time.process_time()
            seconds[n], results = collect_all(executor, sources)
            daemon_cpu = (time.process_time() - cpu) / count  # this process: the daemon's side (and the test server)
        finally:
            workers.close()
        failures = _failures(results)
        if failures:
            raise RuntimeError(f"{len(failures)} failed, e.g. {failures[0]}")
    return {"count": count, "seconds": seconds, "ideal": count * SLOW_SECONDS, "daemon_cpu": daemon_cpu}


def kinds(folder: Path, redis_server: Redis, api: ApiServer, ctx: Context, size: dict[str, int], say: Any) -> dict[str, Any]:
    broker = redis_server.url(2)
    config, executor = _config(folder, broker)
    repos = ctx.repos(size["git"], size["files"])
    git_requests = [EvidenceRequest(signal=check["signal"], params={k: v for k, v in check.items() if k not in ("signal", "transform", "field")})
                    for _, _, check in SIGNALS]
    git_sources = [({"id": f"g{i}", "kind": "git", "url": f"file://{path}", "branch": "main"}, git_requests) for i, path in enumerate(repos)]
    gh_requests = [EvidenceRequest(signal="latest_run"), EvidenceRequest(signal="success_rate", params={"runs": 10})]
    gh_sources = [({"id": f"gh{i}", "kind": "github", "repo": f"o/r{i}", "workflow": "ci.yml", "api_url": api.url, "token_env": None}, gh_requests)
                  for i in range(size["api"])]
    gl_requests = [EvidenceRequest(signal="latest_run"), EvidenceRequest(signal="success_rate", params={"runs": 10}),
                   EvidenceRequest(signal="test_report")]
    gl_sources = [({"id": f"gl{i}", "kind": "gitlab", "project": f"group/p{i}", "api_url": api.url, "token_env": None}, gl_requests)
                  for i in range(size["api"])]
    out: dict[str, Any] = {}
    _flush(broker)
    workers = Workers(folder, config, 1, executor)
    try:
        collect_all(executor, [(dict(s, id="warm"), r) for s, r in gh_sources[:2]])
        api.requests.update({"200": 0, "304": 0})
        for kind, sources in (("git", git_sources), ("github", gh_sources), ("gitlab", gl_sources)):
            evidence = sum(len(r) for _, r in sources)
            passes: dict[str, float] = {}
            results: list[CollectResult] | None = None
            for name, what in (("cold", "first pass"), ("warm", "second pass (unchanged)")):
                say(f"{kind}: {len(sources)} sources on one worker process, {what}")
                cpu = workers.cpu_seconds()
                passes[name], results = collect_all(executor, sources, previous=results)
                passes[name + "_cpu"] = workers.cpu_seconds() - cpu
                failures = _failures(results)
                if failures:
                    raise RuntimeError(f"{kind}: {len(failures)} failed, e.g. {failures[0]}")
            size_bytes = max(len(r.model_dump_json()) for r in results)
            out[kind] = {"sources": len(sources), "evidence": evidence, **passes, "result_bytes": size_bytes}
        out["rss_main_mib"], out["rss_pool_mib"] = workers.rss_mib()
    finally:
        workers.close()
    out["http"] = dict(api.requests)
    return out


def sqlite_writes(folder: Path, ctx: Context, size: dict[str, int], say: Any) -> dict[str, Any]:
    """What the daemon writes per collection and per snapshot, in its own store (changed snapshots)."""
    from daemon.run.runner import collect_sources

    work = folder / "sqlite"
    work.mkdir()
    (repo,) = ctx.repos(1, size["files"])
    config = load_config(write_config(work, [project_dict("svc", {"url": f"file://{repo}", "branch": "main"})],
                                      cache_dir=str(work / "cache")))
    project = config.projects[0]
    (result,) = collect_sources(config, [project], now=NOW)["svc"]
    count = size["snapshots"]
    out: dict[str, Any] = {"count": count, "criteria": sum(len(p.criteria) for p in project.expanded_pillars)}
    with Store.open(config.store_path) as store:
        for label, changed in (("changed", True), ("unchanged", False)):
            say(f"sqlite: {count} runs and {count} {label} snapshots")
            sums = {"run": 0.0, "run_cpu": 0.0, "snapshot": 0.0, "snapshot_cpu": 0.0}
            for i in range(count):
                now = NOW + timedelta(minutes=15 * (i + (count if not changed else 0)))
                this = changed_result(result, i if changed else count)
                this = this.model_copy(update={"evidence": [e.model_copy(update={"observed_at": now}) for e in this.evidence]})
                wall, cpu = time.perf_counter(), time.process_time()
                store.claim_run(project.id, "repo", now, now=now)
                store.record_run(project.id, "repo", now, outcome="ok", now=now, result=this)
                wall2, cpu2 = time.perf_counter(), time.process_time()
                record(store, config, project, [this], now=now)
                sums["run"] += wall2 - wall
                sums["run_cpu"] += cpu2 - cpu
                sums["snapshot"] += time.perf_counter() - wall2
                sums["snapshot_cpu"] += time.process_time() - cpu2
            out[label] = {k: v / count for k, v in sums.items()}
    return out


def measure(ctx: Context, say: Any = print) -> dict[str, Any]:
    size = sizes(ctx.quick)
    folder = ctx.folder("workers")
    redis_server = Redis(folder)
    api = ApiServer()
    try:
        body = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "quick": ctx.quick,
            "machine": machine(),
            "load_before": os.getloadavg()[0],
            "speedup": speedup(folder, redis_server, api, size["sources"], say),
            "kinds": kinds(folder, redis_server, api, ctx, size, say),
            "sqlite": sqlite_writes(folder, ctx, size, say),
            "load_after": os.getloadavg()[0],
        }
    finally:
        api.close()
        redis_server.close()
    return body


# --- the capacity model ----------------------------------------------------------------------

# Assumptions of the model (stated in SCALING.md).
FETCH_LATENCY = 1.0  # s: `git fetch` of an unchanged remote over HTTPS (TLS, ref advertisement)
API_LATENCY = 0.3  # s: one GitHub or GitLab API request
CPU_TARGET = 0.5  # run worker and daemon cores at most half busy: collections are not spread evenly
SPARE = 1.5  # worker processes and daemon threads provisioned per one busy on average
REPOS, SCHEDULE_MINUTES = 10_000, 15
GITHUB_LIMIT = 5000  # requests an hour per token
RUNS_PER_DAY = 20  # completed workflow runs a day per repository (each changes the runs listing once)
PUSHES_PER_DAY = 10  # pushes a day per repository (each changes what the git source reads)


def model(body: dict[str, Any]) -> dict[str, Any]:
    """The deployment of REPOS repositories, from the measured figures (CPU times: a machine of its own)."""
    k, q = body["kinds"], body["sqlite"]
    cpu = {kind: {p: k[kind][p + "_cpu"] / k[kind]["sources"] for p in ("cold", "warm")} for kind in ("git", "github", "gitlab")}
    polls = 24 * 60 / SCHEDULE_MINUTES  # collections a day per source
    git_changed, ci_changed = min(1.0, PUSHES_PER_DAY / polls), min(1.0, RUNS_PER_DAY / polls)
    rate = REPOS / (SCHEDULE_MINUTES * 60)  # collections a second, per kind of source
    # A typical git collection fetches nothing new; a CI one gets a 304 unless a run completed.
    git_cpu = git_changed * cpu["git"]["cold"] + (1 - git_changed) * cpu["git"]["warm"]
    ci_cpu = ci_changed * cpu["github"]["cold"] + (1 - ci_changed) * cpu["github"]["warm"]
    git_wall, ci_wall = FETCH_LATENCY + git_cpu, API_LATENCY + ci_cpu
    processes = rate * (git_wall + ci_wall)  # Little's law: tasks in flight
    provisioned = _ceil(processes * SPARE)
    cores_cpu = rate * (git_cpu + ci_cpu)
    cores = cores_cpu / CPU_TARGET
    k_mem = body["kinds"]
    machines = max(2, _ceil(cores / 2))  # of 2 cores like this one; two at least, so that one can die
    memory = provisioned * k_mem["rss_pool_mib"] + machines * k_mem["rss_main_mib"]
    changed = (git_changed + ci_changed) / 2  # share of collections that change their project's snapshot
    c, u = q["changed"], q["unchanged"]
    snapshot_cpu = changed * c["snapshot_cpu"] + (1 - changed) * u["snapshot_cpu"]
    run_cpu = changed * c["run_cpu"] + (1 - changed) * u["run_cpu"]
    # Each collection records a run; its project is scored once per debounce: one snapshot per
    # repository when its two sources finish together, two when a jitter parts them.
    db_one = 2 * rate * run_cpu + rate * snapshot_cpu
    db_two = 2 * rate * (run_cpu + snapshot_cpu)
    db_worst = 2 * rate * (c["run_cpu"] + c["snapshot_cpu"])
    executor_cpu = 2 * rate * body["speedup"]["daemon_cpu"]  # sending tasks and reading results
    worst = REPOS * 60 / SCHEDULE_MINUTES
    counted = REPOS * min(60 / SCHEDULE_MINUTES, RUNS_PER_DAY / 24)
    return {"cpu": cpu, "rate": rate, "git_changed": git_changed, "ci_changed": ci_changed, "git_cpu": git_cpu, "ci_cpu": ci_cpu,
            "git_wall": git_wall, "ci_wall": ci_wall, "processes": processes, "provisioned": provisioned, "cores_cpu": cores_cpu,
            "cores": cores, "machines": machines, "memory": memory, "executor_cpu": executor_cpu,
            "changed": changed, "db_one": db_one, "db_two": db_two, "db_worst": db_worst,
            "tokens_worst": worst / GITHUB_LIMIT, "tokens_conditional": counted / GITHUB_LIMIT,
            "requests_worst": worst, "requests_conditional": counted}


def _ceil(x: float) -> int:
    return int(-(-x // 1))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def render(body: dict[str, Any]) -> str:
    s, k, q, m = body["speedup"], body["kinds"], body["sqlite"], model(body)
    t = {int(n): sec for n, sec in s["seconds"].items()}
    mach = body["machine"]
    cpu = m["cpu"]
    lines = [
        "# Scaling: collections on Celery workers",
        "",
        "Written by `python -m bench.bench_workers` ([bench/bench_workers.py](../bench/bench_workers.py)); the figures",
        "below are measured on the machine named here, the capacity model is computed from them with the",
        "assumptions it states. [CONFIGURATION.md](CONFIGURATION.md#celery-workers) describes `executor: celery`.",
        "",
        f"Measured {body['date']} on {mach['cores']} cores ({mach['cpu']}), {mach['ram']}, Python {mach['python']},",
        f"git {mach['git']}, SQLite {mach['sqlite']}; Redis {_redis_version()} on 127.0.0.1. The machine was shared with",
        f"other work (load average {body['load_before']:.1f} before the run and {body['load_after']:.1f} after it, on {mach['cores']} cores):",
        "wall times are pessimistic. CPU times (of the processes doing the work, read from `/proc`) are much less",
        "disturbed, and the capacity model uses them.",
        "",
        "## Speed-up with more worker processes",
        "",
        f"{s['count']:,} `http` sources whose server answers after {SLOW_SECONDS * 1000:.0f} ms (a simulated collection that",
        f"waits on the network), sent by the daemon's `CeleryExecutor` from {INFLIGHT} threads, collected by",
        "`pillarwatch worker --concurrency 1` processes on this machine:",
        "",
        "| worker processes | wall time | collections/s | speed-up | of the ideal |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n, sec in t.items():
        lines.append(f"| {n} | {sec:.1f} s | {s['count'] / sec:.1f} | **{t[1] / sec:.2f}×** | {s['ideal'] / n / sec * 100:.0f} % |")
    lines += [
        "",
        f"The ideal is {s['ideal']:.0f} s divided by the number of processes. With one process, a task took",
        f"{(t[1] - s['ideal']) / s['count'] * 1000:.0f} ms more than its {SLOW_SECONDS * 1000:.0f} ms: the round trip through the broker and the result",
        "backend (publish, deliver, run, store the result, read it, forget it) and the collector's own work.",
        "",
        "## Evidence per second per worker process",
        "",
        f"One worker process (`--concurrency 1`), sources sent {INFLIGHT} at a time. The servers are on this machine:",
        "these are the worker's own costs, without network latency. *CPU* is the CPU time of the worker, its",
        "pool process and what they ran (git and, for `file://` remotes, git's server side too) per source.",
        "",
        "| source kind | sources | evidence each | first pass: wall per source | CPU | evidence/s | unchanged: wall per source | CPU | evidence/s | largest result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {"git": f"git ({sizes(body['quick'])['files']:,} files, 10 signals; the first pass clones, the unchanged one fetches and reuses the evidence read at the same commit)",
             "github": "GitHub Actions (2 signals, 1 request)", "gitlab": "GitLab CI (3 signals, 2 requests)"}
    for kind in ("git", "github", "gitlab"):
        d = k[kind]
        n = d["sources"]
        lines.append(f"| {names[kind]} | {n} | {d['evidence'] / n:g} | {_ms(d['cold'] / n)} | {_ms(cpu[kind]['cold'])} |"
                     f" {d['evidence'] / d['cold']:.0f} | {_ms(d['warm'] / n)} | {_ms(cpu[kind]['warm'])} |"
                     f" {d['evidence'] / d['warm']:.0f} | {d['result_bytes'] / 1024:.1f} KiB |")
    lines += [
        "",
        f"An API source's unchanged pass is a conditional request answered 304 (the server answered {k['http']['304']:,}",
        f"with 304 and {k['http']['200']:,} in full). A worker's main process holds {k['rss_main_mib']:.0f} MiB resident, each pool process",
        f"(`--concurrency`) {k['rss_pool_mib']:.0f} MiB.",
        "",
        "## SQLite writes in the daemon",
        "",
        f"The daemon's store (one writer), {q['count']} collections of a project of {q['criteria']} criteria: every snapshot",
        "changed (a new commit, a moved count), then every snapshot unchanged (stored as a repeat):",
        "",
        "| write | changed: wall | CPU | per second (CPU) | unchanged: wall | CPU | per second (CPU) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    c, u = q["changed"], q["unchanged"]
    for label, key in (("a run and the source's result (`claim_run`, `record_run`)", "run"),
                       ("a snapshot (score, store, alerts: `record`)", "snapshot")):
        lines.append(f"| {label} | {_ms(c[key])} | {_ms(c[key + '_cpu'])} | {1 / c[key + '_cpu']:.0f} |"
                     f" {_ms(u[key])} | {_ms(u[key + '_cpu'])} | {1 / u[key + '_cpu']:.0f} |")
    lines += [
        "",
        "## The GitHub rate limit",
        "",
        f"A token may make {GITHUB_LIMIT:,} requests an hour. A GitHub source makes one request per collection (one page of",
        "runs, up to 100). A conditional request (`If-None-Match` with the ETag of the last answer) that GitHub answers",
        "304 does not count against that limit, so only the collections that see a changed listing (a run completed",
        "since) count. Sources one token sustains:",
        "",
        f"| schedule | collections an hour | every answer changed (worst case) | conditional requests, {RUNS_PER_DAY} runs a day |",
        "| --- | --- | --- | --- |",
    ]
    for label, minutes in (("every: 5m", 5), ("every: 15m", 15), ("every: 1h", 60), ("every: 6h", 360)):
        per_hour = 60 / minutes
        counted = min(per_hour, RUNS_PER_DAY / 24)
        lines.append(f"| `{label}` | {per_hour:.3g} | {GITHUB_LIMIT / per_hour:,.0f} | {GITHUB_LIMIT / counted:,.0f} |")
    lines += [
        "",
        "Each worker machine keeps its own ETags (`--cache-dir`; the processes of one `pillarwatch worker` share",
        "it): a source collected by M machines in turn pays for a change up to M times. Pin API sources to a queue",
        "that one worker serves, or count M in. Spread sources over tokens with their `token_env`. GitHub also",
        "limits bursts (secondary limits, documented as at most 100 concurrent requests and 900 points a minute",
        "per REST endpoint, a GET costing one): give schedules a `jitter` so that sources do not start together.",
        "",
        f"## {REPOS:,} repositories every {SCHEDULE_MINUTES} minutes",
        "",
        "Assumptions:",
        "",
        "- each repository is one `git` source (a URL, mirrored by the workers; its documents and reports are read",
        "  through it, in the same task) and one CI source (GitHub Actions; GitLab costs more CPU per collection,",
        f"  see above), both `every: {SCHEDULE_MINUTES}m`, each repository its own project;",
        f"- an unchanged remote answers a `git fetch` in {FETCH_LATENCY:g} s, an API request takes {API_LATENCY:g} s;",
        f"- a repository gets {PUSHES_PER_DAY} pushes and {RUNS_PER_DAY} completed workflow runs a day, so {m['git_changed'] * 100:.0f} % of git and",
        f"  {m['ci_changed'] * 100:.0f} % of CI collections see a change (costed as a first pass: a clone, a full answer); the",
        "  others fetch nothing new and reuse their evidence, or get a 304;",
        "- a collection costs the worker the CPU time measured above, and the daemon the CPU time of its writes",
        "  (a machine of its own: no other load);",
        f"- cores are provisioned to be at most {CPU_TARGET * 100:.0f} % busy, worker processes and the daemon's threads {SPARE:g} times",
        "  the number busy on average (collections are not spread evenly over the 15 minutes).",
        "",
        "| what | figure | from |",
        "| --- | --- | --- |",
        f"| tasks | {2 * m['rate']:.1f} a second | {REPOS:,} × 2 sources / {SCHEDULE_MINUTES * 60} s |",
        f"| a git task on a worker | {m['git_wall']:.2f} s | {FETCH_LATENCY:g} s fetch + {_ms(m['git_cpu'])} CPU (mix of first and unchanged passes) |",
        f"| a CI task on a worker | {m['ci_wall']:.2f} s | {API_LATENCY:g} s request + {_ms(m['ci_cpu'])} CPU (mix of full and 304 answers) |",
        f"| worker processes busy | {m['processes']:.0f} on average; provision {m['provisioned']} | tasks a second × time a task (Little's law) |",
        f"| worker cores | {m['cores']:.1f} | {m['cores_cpu']:.2f} cores of CPU at {CPU_TARGET * 100:.0f} % |",
        f"| worker memory | {m['memory'] / 1024:.1f} GiB | {m['provisioned']} pool processes × {k['rss_pool_mib']:.0f} MiB + a {k['rss_main_mib']:.0f} MiB main process per machine |",
        f"| GitHub tokens | {_ceil(m['tokens_conditional'])} (worst case {_ceil(m['tokens_worst'])}) | {m['requests_conditional']:,.0f} counted requests an hour with conditional requests, {m['requests_worst']:,.0f} if every answer changed |",
        f"| daemon `concurrency` | ≥ {m['provisioned']} | the tasks in flight: each waits in one thread of the daemon |",
        f"| daemon CPU for the tasks | {m['executor_cpu'] * 100:.0f} % of a core | {_ms(s['daemon_cpu'])} a task to send it and read its result (measured in the speed-up run, with the test server's answers) |",
        f"| daemon store, one writer | {m['db_one'] * 100:.0f} %–{m['db_two'] * 100:.0f} % of a core | {2 * m['rate']:.1f} runs and {m['rate']:.1f}–{2 * m['rate']:.1f} snapshots a second (one per repository and round, two when a jitter parts its sources); {m['db_worst'] * 100:.0f} % if every collection changed |",
        f"| broker | one small Redis | {2 * m['rate']:.0f} tasks a second are a few hundred Redis commands a second; it holds only tasks and results in flight ({k['git']['result_bytes'] / 1024:.0f} KiB at most each) |",
        "",
    ]
    lines.append(
        f"So: {m['provisioned']} worker processes on {m['machines']} machines of 2 cores like this one (two at least, so that one can "
        f"die; the CPU alone would need {m['cores']:.1f} cores), e.g. `pillarwatch worker --concurrency {_ceil(m['provisioned'] / m['machines'])}` on each; "
        "git sources split over queues that one machine each serves (`queue: git-1`, `git-2`, ...), so that each "
        "mirror lives, warm, on one machine (a queue that two machines serve costs a mirror on each; the disk to plan "
        "for is the sum of a machine's mirrors); CI sources on a queue one machine serves (one "
        f"ETag cache); {_ceil(m['tokens_conditional']) + 1} GitHub tokens (one spare); one Redis, with `visibility_timeout` above the "
        "longest task (the default hour is); the daemon with `concurrency` as above. RabbitMQ serves as well through "
        "the same settings (an `amqp://` broker, results as broker messages: `rpc://`; tests/test_celery.py runs the "
        "same tests on both brokers); the figures here were measured with Redis.")
    lines.append("")
    if m["db_worst"] < 0.5:
        lines.append("The daemon's store is not the limit at this scale, even when every collection changes its snapshot.")
    elif m["db_two"] < 0.6:
        lines.append(
            "The daemon's store is not the limit in the typical case, but it is the part that grows with the number "
            f"of snapshots: a day on which every collection changes something would keep its writer {m['db_worst'] * 100:.0f} % busy. "
            "Fewer, larger projects (repositories grouped by team, scored together) or a longer `daemon.debounce` "
            "make fewer snapshots; adding workers does not help there.")
    else:
        lines.append(
            "The daemon's store is the limit at this scale: it writes one snapshot per project and collection. Group "
            "repositories into fewer projects (scored together, one snapshot per round), lengthen `daemon.debounce`, or "
            "split the repositories over several daemons, each with its own database; adding workers does not help there.")
    lines += [
        "",
        "A deployment whose remotes answer slower needs proportionally more worker processes, not more cores:",
        "the processes mostly wait.",
        "",
        *FAILS_AND_RECOVERS.splitlines(),
        "",
        *FAILING_AND_RECOVERING.splitlines(),
        "",
        "## Reproduce",
        "",
        "```sh",
        "apt-get install redis-server   # the benchmark starts its own on a free port",
        "python -m bench.bench_workers  # about 15 minutes; rewrites this file",
        "```",
        "",
    ]
    return "\n".join(lines)


def _redis_version() -> str:
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=True).stdout
        return next((p.removeprefix("v=") for p in out.split() if p.startswith("v=")), "?")
    except (OSError, subprocess.CalledProcessError):
        return "?"


# --- bench/run.py and the command line ---------------------------------------------------------


def run(ctx: Context) -> BenchResult:
    """For bench/run.py: the figures as rows; a full run also rewrites docs/SCALING.md."""
    body = measure(ctx, say=lambda _: None)
    if not ctx.quick:
        (ROOT / "docs" / "SCALING.md").write_text(render(body))
    return _result(body)


def _result(body: dict[str, Any]) -> BenchResult:
    s, k = body["speedup"], body["kinds"]
    t = s["seconds"]
    rows = [Row(metric=f"{s['count']} × {SLOW_SECONDS * 1000:.0f} ms sources, {n} worker process(es)", unit="s", median=sec,
                baseline=t[1], baseline_label="1 worker process",
                extra={"speed-up": round(t[1] / sec, 2)}) for n, sec in t.items()]
    for kind in ("git", "github", "gitlab"):
        d = k[kind]
        rows.append(Row(metric=f"{kind}: evidence/s per worker process (unchanged pass)", unit="/s", median=d["evidence"] / d["warm"],
                        baseline=d["evidence"] / d["cold"], baseline_label="first pass"))
    q = body["sqlite"]
    rows.append(Row(metric="daemon: changed snapshots written per second (CPU)", unit="/s", median=1 / q["changed"]["snapshot_cpu"],
                    baseline=1 / q["unchanged"]["snapshot_cpu"], baseline_label="unchanged snapshots"))
    size = sizes(body["quick"])
    return BenchResult(name=NAME, title=TITLE, size=f"{size['sources']} simulated sources; {size['git']} git, {size['api']} GitHub and GitLab sources",
                       rounds=1, rows=rows, method=__doc__.split("\n\n")[2] if __doc__ else "",
                       notes=[f"speed-up with 4 worker processes: {t[1] / t[4]:.2f}×"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_workers", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--markdown", type=Path, help="write the report here (default: docs/SCALING.md for a full run)")
    parser.add_argument("--json", type=Path, help="write the measurements as JSON here")
    parser.add_argument("--from-json", type=Path, help="measure nothing: render the report from measurements written by --json")
    args = parser.parse_args(argv)
    if args.from_json:
        text = render(json.loads(args.from_json.read_text()))
        if args.markdown:
            args.markdown.write_text(text)
        else:
            sys.stdout.write(text)
        return 0

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM too stops the workers and Redis this run started

    signal.signal(signal.SIGTERM, interrupted)

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True) as progress:
        ctx = Context(quick=args.quick, progress=progress)
        step = progress.add_task("starting", total=None)
        try:
            body = measure(ctx, say=lambda text: progress.update(step, description=text))
        finally:
            ctx.close()
    if args.json:
        args.json.write_text(json.dumps(body, indent=2, default=str) + "\n")
    markdown = args.markdown or (None if args.quick else ROOT / "docs" / "SCALING.md")
    text = render(body)
    if markdown:
        markdown.write_text(text)
        console.print(f"written to {markdown}")
    else:
        sys.stdout.write(text)
    t = body["speedup"]["seconds"]
    console.print("speed-up: " + ", ".join(f"{n} worker(s) {t[1] / sec:.2f}×" for n, sec in t.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())


# Written by hand (issue 17), kept here so that a full run rewriting SCALING.md keeps it.
FAILS_AND_RECOVERS = """## How the executor fails and recovers

The daemon collects on exactly `concurrency` threads of its own: each collection (with `executor: celery`, one task in flight and the wait for its result) holds one slot, so `concurrency` bounds what runs and the tasks in flight, never more. Scoring, alert delivery and retention run on the scheduler's own threads, which no collection holds: a collection waiting however long delays no snapshot and no alert.

- **Slots between queues.** A free slot goes to the queue holding the fewest, then to the one waiting longest. Each queue the sources use keeps one slot of its own: a queue takes a second slot only while one stays free for every other queue holding none. Give `concurrency` at least the number of queues (and of worker processes); with fewer, queues take turns.
- **A queue no live worker serves.** A task no worker has taken (Celery's `STARTED`, which workers report) within the queue's `queue_timeout` (default 2 minutes, per queue in `queue_timeouts`) is given up: the run is a `timeout` error, "no worker took the task on queue 'qa' within 120s", and the sources' evidence turns stale as for any source fault. The queue then holds one slot at most, a probe, until one of its tasks is answered; the other queues have the rest. The given-up task stays in the broker until its expiry (the full result wait) and a worker that comes back drops it unrun. `python -m bench.run --only pool` measures it: queue qb's collections per second beside a dead queue qa, against qb alone (docs/BENCHMARKS.md).
- **A task a worker took** is waited for up to `result_timeout` (by default every attempt's hard time limit, the retry delays, one `visibility_timeout` and 30 s), so that a task redelivered after its worker died is still read.
- **Every due time is recorded once.** A run carries the due time it was fired for, however late it starts, and never takes the next one's. Each due time of each source gets exactly one row in `source_runs`: `ok` or `error` (its run), `skipped` (the source's previous run was still waiting for a slot or going), `missed` (never fired: the daemon was stopped, or the scheduler was late; or still waiting for a slot when the daemon stopped) or `interrupted` (the daemon died during it; collected again at the next start). At start the due times since a source's last row are recorded `missed` (the latest 1,000 at most), and its latest due time is collected at once if it was not.
- **Scored once per set of results.** A project is scored after each recorded run, debounced; a score that finds no result recorded since the last one (under the same configuration) stores nothing.
- **Stopping.** Runs still waiting for a slot are recorded `missed`; running ones get `daemon.shutdown_grace`, then are abandoned (left `running`, so `interrupted` and collected again at the next start). A send round cut at the deadline leaves its message pending in the outbox, sent at the next start; the database closes only after the scheduler's jobs have ended, so nothing writes to a closed database."""
