"""Start-up: `pillarwatch --version` and `status --json`, each a new process, against `sqlite-utils query`.

A small project (one generated repository, the ten signals, collected once)
is read back. Measured, each a new process, alternating round by round:

- ``pillarwatch --version``;
- ``pillarwatch status --json`` on that project;
- ``sqlite-utils query DB "SELECT ..."`` reading the same latest-snapshot row
  (the baseline: a Python command line that imports its CLI and reads SQLite);
- ``python -c "import daemon.cli"``: the import cost alone, for the notes.

Target (issue 15): each pillarwatch command ≤ 1.2× the sqlite-utils query.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
    alternate,
    median,
    percentile,
    project_dict,
    write_config,
)
from .report import fmt

NAME = "startup"
TITLE = "Start-up (--version, status --json)"
TARGET = 1.2

_SQLITE_UTILS = Path(sys.executable).with_name("sqlite-utils")
_LATEST_ROW = "SELECT * FROM snapshots WHERE project = 'svc' ORDER BY taken_at DESC, id DESC LIMIT 1"


def rounds(ctx: Context) -> int:
    return 2 if ctx.quick else 20


def build(folder: Path, repo: Path) -> Path:
    """A configuration of project ``svc`` (ten criteria), collected once."""
    config_path = write_config(folder, [project_dict("svc", {"path": str(repo), "branch": "main"})])
    config = load_config(config_path)
    with Store.open(config.store_path) as store:
        run_projects(config, config.projects, store=store, now=NOW)
    return config_path


def _process(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


# Where `import daemon.cli` spends its time: these modules' cumulative import times (each counts what it
# imported first, so a library shared by two shows under the first).
_PARTS = ["typer", "rich.console", "pydantic", "collectors.evidence", "daemon.config.model", "collectors.kinds",
          "git", "daemon.config.schedule", "sqlite_utils", "daemon.store", "daemon.alerting.evaluate", "daemon.queries",
          "daemon.terminal", "daemon.cli"]
# Measured on 2026-12-03 (AMD EPYC, 2 cores) before the start-up work of issue 15, in the same way.
_BEFORE = ("Before (2026-12-03, the same 2-core AMD EPYC, 30 rounds): `--version` 913.4 ms (5.01×), "
           "`status --json` 889.5 ms (4.88×), `import daemon.cli` 848.4 ms, against 182.2 ms for `sqlite-utils query`.")


def import_profile() -> list[str]:
    """``python -X importtime -c 'import daemon.cli'``: the cumulative time of each of :data:`_PARTS`."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-c", "import daemon.cli"], capture_output=True, text=True, check=True)
    found: dict[str, int] = {}
    for line in done.stderr.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[2].strip() in _PARTS and fields[1].strip().isdigit():
            found[fields[2].strip()] = int(fields[1])
    return [f"`{name}` {found[name] / 1000:.0f} ms" for name in _PARTS if name in found]


def run(ctx: Context) -> BenchResult:
    n = rounds(ctx)
    (repo,) = ctx.repos(1, 60 if ctx.quick else 200)
    folder = ctx.folder(NAME)
    with ctx.task(f"{NAME}: collecting a 10-criterion project", total=None):
        config_path = build(folder, repo)
    db = load_config(config_path).store_path
    sqlite_utils = [str(_SQLITE_UTILS)] if _SQLITE_UTILS.exists() else [PYTHON, "-m", "sqlite_utils"]
    commands = {
        "version": [*PILLARWATCH, "--version"],
        "status": [*PILLARWATCH, "status", "--json", "--config", str(config_path)],
        "baseline": [*sqlite_utils, "query", str(db), _LATEST_ROW],
        "import": [PYTHON, "-c", "import daemon.cli"],
    }
    if not ctx.quick:  # warm the page cache and the bytecode
        for args in commands.values():
            _process(args)
    with ctx.task(f"{NAME}: {n} rounds of 4 processes", total=n * len(commands)) as task:
        times = alternate(n, [lambda a=args: _process(a) for args in commands.values()], task.advance)
    version, status, baseline, imports = times

    def spread(values: list[float]) -> dict[str, float]:
        return {"p50": percentile(values, 50), "p99": percentile(values, 99)}

    base = median(baseline)
    label = "`sqlite-utils query` of the same row, a new process"
    target = f"≤ {TARGET}×"
    return BenchResult(
        name=NAME, title=TITLE,
        size="one project of 10 criteria, collected once",
        rounds=n,
        rows=[
            Row("`pillarwatch --version` (a new process)", "s", median(version), base, label, target,
                met=median(version) <= TARGET * base, extra={**spread(version), "baseline": spread(baseline)}),
            Row("`pillarwatch status --json` (a new process)", "s", median(status), base, label, target,
                met=median(status) <= TARGET * base, extra=spread(status)),
            Row("… `python -c 'import daemon.cli'` (a new process)", "s", median(imports), base, label,
                extra=spread(imports)),
        ],
        method=("Each figure a new process (`subprocess.run`, output discarded); the four commands alternate round by "
                "round, each round starting with the next one, so that drift hits them alike. Medians of the rounds."),
        notes=[_BEFORE,
               f"`import daemon.cli` alone takes {fmt(median(imports), 's')} of `status --json`'s "
               f"{fmt(median(status), 's')}; reading and printing the snapshot is the rest. Cumulative import times "
               "from one `python -X importtime -c 'import daemon.cli'` (each counts what it imported first): "
               + ", ".join(import_profile()) + ".",
               "What still misses: loading the configuration builds every source kind's pydantic model and every "
               "signal's check model at import (`daemon.config.model`, `collectors.kinds` and each collector module, "
               "GitPython through `collectors.gitrepo`'s fault types), and `daemon.queries` brings the store "
               "(sqlite-utils, click) and alert evaluation. httpx, markdown-it, the progress bar and collecting now "
               "load only when used; `--version` is answered by `daemon/__main__.py` before any of it."],
    )
