"""What every benchmark shares: generated repositories and configurations,
timing and statistics, the shape of a result, and the machine description.

Generated data lives in one temporary folder per run (:class:`Context`), which
is deleted afterwards. Repositories are written with ``git fast-import`` (one
process, one pack per repository) instead of thousands of ``git add`` calls.
"""

from __future__ import annotations

import hashlib
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from collectors.evidence import CollectResult

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# The console script of the venv running the benchmarks (falls back to `python -m daemon.cli`).
_SCRIPT = Path(sys.executable).with_name("pillarwatch")
PILLARWATCH = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "daemon.cli"]

# Commit times of generated repositories are relative to this moment.
NOW = datetime.now(timezone.utc).replace(microsecond=0)


# --- results ---------------------------------------------------------------------------


@dataclass
class Row:
    """One measured figure, its baseline measured in the same run, and its target."""

    metric: str
    unit: str
    median: float
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    met: bool | None = None  # None: no target
    extra: dict[str, Any] = field(default_factory=dict)  # p50/p99 and the like

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.median / self.baseline


@dataclass
class BenchResult:
    name: str
    title: str
    size: str  # what was measured, e.g. "200 repositories x 2,000 files, 10 signals each"
    rounds: int
    rows: list[Row]
    method: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole benchmark, setup included

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        for row, out in zip(self.rows, body["rows"]):
            out["ratio"] = row.ratio
        return body


# --- the run's context ---------------------------------------------------------------


class Context:
    """One run: its scale (quick or full), a temporary folder, and generated repositories shared by benchmarks."""

    def __init__(self, *, quick: bool, progress: Any, keep: bool = False):
        self.quick = quick
        self.progress = progress
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix="pillarwatch-bench-"))
        self._repos: dict[tuple[int, int], list[Path]] = {}

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def folder(self, name: str) -> Path:
        path = self.tmp / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def repos(self, count: int, files: int) -> list[Path]:
        """``count`` generated bare repositories of ``files`` files each, made once per run."""
        key = (count, files)
        if key not in self._repos:
            base = self.tmp / f"repos-{count}x{files}"
            base.mkdir(parents=True, exist_ok=True)
            paths = [base / f"repo{i:03d}.git" for i in range(count)]
            task = self.progress.add_task(f"generating {count} repositories of {files} files", total=count)
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                for _ in pool.map(lambda ip: make_repo(ip[1], seed=ip[0], files=files), enumerate(paths)):
                    self.progress.advance(task)
            self.progress.remove_task(task)
            self._repos[key] = paths
        return self._repos[key]

    def task(self, description: str, total: float | None) -> Task:
        return Task(self.progress, description, total)


class Task:
    """A progress bar for the duration of a ``with`` block."""

    def __init__(self, progress: Any, description: str, total: float | None):
        self.progress, self.id = progress, progress.add_task(description, total=total)

    def advance(self, n: float = 1) -> None:
        self.progress.advance(self.id, n)

    def describe(self, description: str) -> None:
        self.progress.update(self.id, description=description)

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.remove_task(self.id)


# --- generated repositories -------------------------------------------------------------

_WORDS = ["alpha", "beta", "gamma", "delta", "state", "queue", "retry", "restart", "snapshot", "evidence", "ledger", "tenant", "policy", "cache", "mirror", "replay", "checkpoint", "worker", "budget", "window", "schema", "index"]
COMMITS = 6  # per repository, the last ones within the last weeks


def _layout(files: int) -> list[str]:
    """Paths of a service-like tree: 60 % source, 20 % tests, 10 % docs, 10 % configuration."""
    src, tests, docs = int(files * 0.6), int(files * 0.2), int(files * 0.1)
    paths = ["README.md", ".ci/run"]
    paths += [f"src/pkg{i % 40:02d}/mod{i:04d}.py" for i in range(src)]
    paths += [f"tests/unit/test_{i:04d}.py" for i in range(tests)]
    paths += [f"docs/topic{i:03d}.md" for i in range(docs)]
    paths += [f"config/env{i:03d}.yaml" for i in range(files - len(paths))]
    return paths[:files]


def _content(rng: random.Random, path: str) -> bytes:
    lines = []
    for n in range(rng.randint(8, 40)):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 9)))
        if path.endswith(".py"):
            lines.append(f"def {rng.choice(_WORDS)}_{n}():  # {words}" if n % 5 == 0 else f"    assert {n}  # {words}")
        else:
            lines.append(words)
    if rng.random() < 0.05:
        lines.append("# TODO: " + rng.choice(_WORDS))
    return ("\n".join(lines) + "\n").encode()


def make_repo(path: Path, *, seed: int, files: int) -> Path:
    """A bare repository on branch ``main`` with ``files`` files and a short history, via ``git fast-import``."""
    rng = random.Random(seed)
    paths = _layout(files)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    chunks: list[bytes] = []
    mark = 0

    def blob(data: bytes) -> int:
        nonlocal mark
        mark += 1
        chunks.append(b"blob\nmark :%d\ndata %d\n%s\n" % (mark, len(data), data))
        return mark

    start = NOW - timedelta(days=90)
    marks = {p: blob(_content(rng, p)) for p in paths}
    for c in range(COMMITS):
        when = int((start + timedelta(days=90 * c / COMMITS)).timestamp()) if c < COMMITS - 1 else int((NOW - timedelta(days=2)).timestamp())
        changed = paths if c == 0 else rng.sample(paths, k=max(1, len(paths) // 100))
        if c:
            marks.update({p: blob(_content(rng, p)) for p in changed})
        message = f"commit {c}".encode()
        body = b"commit refs/heads/main\nauthor Bench <bench@example.invalid> %d +0000\n" % when
        body += b"committer Bench <bench@example.invalid> %d +0000\ndata %d\n%s\n" % (when, len(message), message)
        body += b"".join(b"M 100644 :%d %s\n" % (marks[p], p.encode()) for p in changed)
        chunks.append(body + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=b"".join(chunks), check=True,
                   env={**os.environ, "GIT_DIR": str(path)})
    return path


# --- the ten signals asked of every generated repository ----------------------------------

# (criterion id, title, check). Globs and regexes fit the generated layout.
SIGNALS: list[tuple[str, str, dict[str, Any]]] = [
    ("readme", "README present", {"signal": "file_exists", "path": "README.md"}),
    ("ci", "CI script present", {"signal": "file_exists", "path": ".ci/run"}),
    ("unit-tests", "Unit tests exist", {"signal": "file_exists", "glob": "tests/**/test_*.py"}),
    ("modules", "Source modules", {"signal": "file_count", "glob": "src/**/*.py", "transform": {"scale": [0, 1000]}}),
    ("docs", "Documentation pages", {"signal": "file_count", "glob": "docs/*.md", "transform": {"scale": [0, 100]}}),
    ("restart", "Restart covered by tests", {"signal": "content_match", "glob": "tests/**/*.py", "regex": r"def restart_[0-9]+",
                                              "field": "files", "transform": {"scale": [0, 50]}}),
    ("todos", "Few TODOs in code", {"signal": "content_match", "glob": "src/**/*.py", "regex": r"TODO",
                                    "field": "files", "transform": {"scale": [100, 0]}}),
    ("readme-age", "README kept fresh", {"signal": "file_age", "path": "README.md", "transform": {"fresh_within_days": [30, 365]}}),
    ("activity", "Active development", {"signal": "commits_since", "days": 30}),
    ("head", "Recent commit", {"signal": "head", "transform": {"fresh_within_days": [7, 90]}}),
]


def project_dict(project_id: str, source: dict[str, Any], *, schedule: str | None = None,
                 without: tuple[str, ...] = ()) -> dict[str, Any]:
    """One project: one git source and the ten signals (less the criteria ``without``) in two pillars."""
    criteria = [{"id": cid, "title": title, "checks": [{"source": "repo", **check}]} for cid, title, check in SIGNALS]
    body: dict[str, Any] = {
        "id": project_id,
        "sources": [{"id": "repo", "kind": "git", **source}],
        "pillars": [
            {"id": "code", "title": "Code", "criteria": [c for c in criteria[:7] if c["id"] not in without]},
            {"id": "process", "title": "Process", "criteria": [c for c in criteria[7:] if c["id"] not in without]},
        ],
    }
    if schedule:
        body["schedule"] = schedule
    return body


def write_config(folder: Path, projects: list[dict[str, Any]], *, name: str = "pillarwatch.yaml", **settings: Any) -> Path:
    path = folder / name
    body = {"version": 1, "store": str(folder / "pillarwatch.db"), **settings, "projects": projects}
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


# --- timing and statistics ------------------------------------------------------------------


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between the closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def alternate(rounds: int, measures: Sequence[Callable[[], float]],
              tick: Callable[[], None] | None = None) -> list[list[float]]:
    """Run each measurement once per round, starting each round with the next one, so that drift on
    a noisy machine hits them all alike; the times of each, in its order."""
    times: list[list[float]] = [[] for _ in measures]
    for r in range(rounds):
        for k in range(len(measures)):
            i = (r + k) % len(measures)
            times[i].append(measures[i]())
            if tick:
                tick()
    return times


def interleaved(rounds: int, subject: Callable[[], float], baseline: Callable[[], float],
                tick: Callable[[], None] | None = None) -> tuple[list[float], list[float]]:
    """:func:`alternate` for a subject and its baseline."""
    a, b = alternate(rounds, [subject, baseline], tick)
    return a, b


def cpu_counted(cpu: dict[str, list[tuple[float, float]]], what: str,
                measure: Callable[[], float]) -> Callable[[], float]:
    """``measure``, also keeping in ``cpu[what]`` the CPU it took here (Python) and in the processes it waited for."""
    def run_it() -> float:
        before = os.times()
        seconds = measure()
        after = os.times()
        cpu[what].append((after.user + after.system - before.user - before.system,
                          after.children_user + after.children_system - before.children_user - before.children_system))
        return seconds
    return run_it


def map_parallel(work: Callable[[Any], Any], items: Iterable[Any], workers: int) -> list[Any]:
    """``work`` on every item, ``workers`` at a time; the results in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, items))


def _profile(work: Callable[[], Any]) -> tuple[dict[Any, Any], float]:
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.runcall(work)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return stats, sum(row[2] for row in stats.values()) or 1.0


def hot_spots(work: Callable[[], Any], count: int = 6) -> list[str]:
    """Where ``work`` spends its time, by cProfile: the functions with the most time of their own, in per cent."""
    stats, total = _profile(work)
    rows = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:count]
    return [f"{_function(file, name)} {own / total:.0%}" for (file, _, name), (_, _, own, _, _) in rows]


def time_shares(work: Callable[[], Any], parts: dict[str, tuple[str, str]]) -> list[str]:
    """The share of ``work``'s time spent in (and under) each of ``parts``: label -> (file name, function name)."""
    stats, total = _profile(work)
    shares = []
    for label, (file, function) in parts.items():
        spent = sum(row[3] for (f, _, name), row in stats.items() if name == function and Path(f).name == file)
        shares.append(f"{label} {spent / total:.0%}")
    return shares


def _function(file: str, name: str) -> str:
    """``scoring.py:score_check``, ``SchemaValidator.validate_python``, ``math.fsum``."""
    import re

    if file != "~":
        return f"{Path(file).name}:{name}"
    method = re.match(r"<method '(\w+)' of '([\w.]+)' objects>", name)
    if method:
        return f"{method.group(2).rsplit('.', 1)[-1]}.{method.group(1)}"
    return name.removeprefix("<built-in method ").removesuffix(">")


# --- memory -------------------------------------------------------------------------------


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, number = line.split(":", 1)
                values[key] = int(number.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


# --- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    git_version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip().removeprefix("git version ")
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git": git_version,
        "sqlite": sqlite3.sqlite_version,
    }


def changed_result(result: CollectResult, n: int) -> CollectResult:
    """The result as if commit number ``n`` had landed: new SHA everywhere, one count moved."""
    sha = hashlib.sha1(f"commit {n}".encode()).hexdigest()
    evidence = []
    for e in result.evidence:
        value = dict(e.value or {})
        if e.signal == "file_count" and "count" in value:
            value["count"] = value["count"] + n % 7
        if e.signal == "head":
            value["sha"] = sha
        evidence.append(e.model_copy(update={"value": value, "provenance": e.provenance.model_copy(update={"commit": sha})}))
    return result.model_copy(update={"evidence": evidence, "fingerprint": sha})
