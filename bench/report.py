"""docs/BENCHMARKS.md from a run's results: the machine, the date, one table per benchmark."""

from __future__ import annotations

from typing import Any

from ._support import BenchResult

_HEADER = """# Benchmarks

Written by `python -m bench.run` (see [bench/run.py](../bench/run.py)); do not edit by hand.
Every figure is the median of its rounds; its baseline was measured in the
same run, alternating with it, so the ratio is what to compare across machines
and runs, not the absolute times. Targets come from DESIGN.md ("Targets") and
issue #7.
"""


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "s":
        if value < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if value < 1:
            return f"{value * 1e3:.1f} ms"
        return f"{value:.2f} s"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:g} {unit}".strip()


def verdict(met: bool | None) -> str:
    return "–" if met is None else ("yes" if met else "**no**")


def render(body: dict[str, Any], results: list[BenchResult]) -> str:
    m = body["machine"]
    lines = [_HEADER]
    lines += [
        "## Machine and run",
        "",
        f"- Date: {body['date']} (UTC)",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram']}; {m['os']}",
        f"- Python {m['python']}, git {m['git']}, SQLite {m['sqlite']}",
        f"- Run: {'quick (scaled down)' if body['quick'] else 'full size'}, {body['wall_seconds'] / 60:.1f} minutes in all",
        "",
        "## Summary",
        "",
        "| benchmark | figure | median | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for row in r.rows:
            if row.target:
                lines.append(f"| {r.title} | {row.metric} | {fmt(row.median, row.unit)} | "
                             f"{fmt(row.baseline, row.unit)} | {ratio_text(row.ratio)} | {row.target} | {verdict(row.met)} |")
    for r in results:
        rounds = f"{r.rounds} round{'' if r.rounds == 1 else 's'}"
        lines += ["", f"## {r.title}", "", f"`{r.name}`: {r.size}; {rounds}; {r.seconds:.0f} s with setup.", ""]
        lines += ["| figure | median | baseline | ratio | target | met |", "| --- | --- | --- | --- | --- | --- |"]
        for row in r.rows:
            baseline = f"{fmt(row.baseline, row.unit)} ({row.baseline_label})" if row.baseline is not None else "–"
            lines.append(f"| {row.metric}{_extra(row.extra, row.unit)} | {fmt(row.median, row.unit)} | {baseline} | "
                         f"{ratio_text(row.ratio)} | {row.target or '–'} | {verdict(row.met)} |")
        if r.method:
            lines += ["", f"Method: {r.method}"]
        previous = ""
        for note in r.notes:
            # Consecutive list items ("- ...") stay one list.
            lines += [note] if note.startswith("- ") and previous.startswith("- ") else ["", note]
            previous = note
    if body.get("failed"):
        lines += ["", f"Failed benchmarks: {', '.join(body['failed'])}."]
    return "\n".join(lines) + "\n"


def ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "–"
    return f"{ratio:.2g}×" if ratio < 0.1 else f"{ratio:.2f}×"


def _extra(extra: dict[str, Any], unit: str) -> str:
    shown = [f"{key} {fmt(extra[key], unit)}" for key in ("p50", "p99") if key in extra]
    return f" ({', '.join(shown)})" if shown else ""
