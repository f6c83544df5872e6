"""Run pillarwatch's benchmarks and write docs/BENCHMARKS.md.

    python -m bench.run                 # every benchmark, full size; writes docs/BENCHMARKS.md
    python -m bench.run --quick         # a scaled-down smoke run (seconds); writes no report unless asked
    python -m bench.run --only scoring --only status
    python -m bench.run --skip workers  # all but the Celery one (it needs redis-server; see docs/SCALING.md)
    python -m bench.run --json results.json --markdown /tmp/BENCHMARKS.md

Every figure is a median of several rounds, next to a baseline measured in the
same run (never a number from another run), with the ratio and the target
from DESIGN.md or issue #7 where there is one.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

if __package__ in (None, ""):  # `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench._support import ROOT, BenchResult, Context, machine
from bench.report import render

# Run in this order: the cheap ones first, the ones sharing generated repositories together.
MODULES = ["bench_startup", "bench_scoring", "bench_scale", "bench_storage", "bench_status", "bench_collect", "bench_recollect",
           "bench_backfill", "bench_memory", "bench_workers", "bench_pool"]


def benchmarks() -> dict[str, ModuleType]:
    found = {}
    for name in MODULES:
        module = importlib.import_module(f"bench.{name}")
        found[module.NAME] = module  # type: ignore[attr-defined]
    return found


def main(argv: list[str] | None = None) -> int:
    available = benchmarks()
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds: a smoke run")
    parser.add_argument("--only", action="append", choices=sorted(available), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(available)}")
    parser.add_argument("--skip", action="append", choices=sorted(available), metavar="NAME", default=[],
                        help="leave this benchmark out (repeatable)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path,
                        help="write the report here (default: docs/BENCHMARKS.md for a full run of every benchmark)")
    parser.add_argument("--keep", action="store_true", help="keep the generated data (its folder is printed)")
    args = parser.parse_args(argv)

    chosen = [name for name in available if (not args.only or name in args.only) and name not in args.skip]
    markdown = args.markdown
    if markdown is None and not args.quick and not args.only and not args.skip:
        markdown = ROOT / "docs" / "BENCHMARKS.md"

    console = Console(stderr=True)
    started_at = datetime.now(timezone.utc)
    results: list[BenchResult] = []
    failures: list[str] = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        ctx = Context(quick=args.quick, progress=progress, keep=args.keep)
        try:
            overall = progress.add_task("benchmarks", total=len(chosen))
            for name in chosen:
                progress.update(overall, description=f"benchmarks: {name}")
                began = time.perf_counter()
                try:
                    result = available[name].run(ctx)  # type: ignore[attr-defined]
                except Exception:
                    failures.append(name)
                    console.print(f"[red]{name} failed[/red]")
                    console.print(traceback.format_exc(), markup=False)
                else:
                    result.seconds = time.perf_counter() - began
                    results.append(result)
                    console.print(_summary(result))
                progress.advance(overall)
        finally:
            ctx.close()
            if args.keep:
                console.print(f"generated data kept in {ctx.tmp}")

    body = {
        "date": started_at.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "wall_seconds": (datetime.now(timezone.utc) - started_at).total_seconds(),
        "benchmarks": {r.name: r.to_json() for r in results},
        "failed": failures,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(body, indent=2) + "\n")
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(render(body, results))
        console.print(f"report written to {markdown}")
    console.print(f"done in {body['wall_seconds']:.0f} s" + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


def _summary(result: BenchResult) -> Table:
    from bench.report import fmt, ratio_text, verdict

    table = Table(title=f"{result.title} ({result.size})", title_justify="left")
    for column in ("figure", "median", "baseline", "ratio", "target", "met"):
        table.add_column(column)
    for row in result.rows:
        table.add_row(row.metric, fmt(row.median, row.unit), fmt(row.baseline, row.unit) if row.baseline is not None else "–",
                      ratio_text(row.ratio), row.target or "–", verdict(row.met))
    return table


if __name__ == "__main__":
    sys.exit(main())
