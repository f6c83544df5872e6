"""The index's small charts as inline SVG: a sparkline of the overall figure and a bar per pillar.

Pure functions from figures to markup, like :mod:`daemon.web.charts`, and as
safe to insert: every text they write is escaped. Both read 0–100 % from the
bottom up, and carry tooltips (``<title>``) with the figures in words. Their
colours are presentation attributes: the page's policy allows no inline style.
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.scoring.arithmetic import display
from daemon.web.charts import escape

__all__ = ["pillar_bars", "sparkline"]

_LINE = "#0969da"
_TRACK = "#eaeef2"
_NONE = "#afb8c1"


def sparkline(values: Sequence[float | None], *, title: str, width: int = 120, height: int = 28, decimals: int = 0) -> str:
    """The figures of the latest snapshots, oldest first, evenly spaced; the line breaks at a missing figure."""
    pad = 3
    n = len(values)
    label = escape(f"{title}: {_words(values, decimals)}")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{label}"><title>{label}</title>']

    def xy(i: int, value: float) -> tuple[float, float]:
        x = width / 2 if n == 1 else pad + (width - 2 * pad) * i / (n - 1)
        y = height - pad - (height - 2 * pad) * min(100.0, max(0.0, value)) / 100
        return round(x, 2), round(y, 2)

    runs: list[list[tuple[float, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append(xy(i, value))
    for run in runs:
        if len(run) > 1:
            out.append(f'<polyline points="{" ".join(f"{x:g},{y:g}" for x, y in run)}" fill="none" stroke="{_LINE}" stroke-width="1.5"/>')
    if values and values[-1] is not None:
        x, y = xy(n - 1, values[-1])
        out.append(f'<circle class="last" cx="{x:g}" cy="{y:g}" r="2.5" fill="{_LINE}"/>')
    out.append("</svg>")
    return "".join(out)


def pillar_bars(pillars: Sequence[tuple[str, float | None]], *, bar: int = 10, gap: int = 3, height: int = 28,
                decimals: int = 0) -> str:
    """A vertical bar per pillar, 0 at the bottom and 100 % at the top of its track; each says its pillar and figure."""
    width = max(1, len(pillars) * (bar + gap) - gap)
    said = "; ".join(f"{title} {display(score, decimals, suffix='%')}" for title, score in pillars)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bars" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" aria-label="{escape(said)}">']
    for i, (title, score) in enumerate(pillars):
        x = i * (bar + gap)
        tip = escape(f"{title}: {display(score, decimals, suffix='%')}")
        filled = 0.0 if score is None else round(height * min(100.0, max(0.0, score)) / 100, 2)
        out.append(f'<g class="bar"><title>{tip}</title>'
                   f'<rect x="{x}" y="0" width="{bar}" height="{height}" fill="{_TRACK if score is not None else _NONE}"/>'
                   f'<rect x="{x}" y="{height - filled:g}" width="{bar}" height="{filled:g}" fill="{_LINE}"/></g>')
    out.append("</svg>")
    return "".join(out)


def _words(values: Sequence[float | None], decimals: int) -> str:
    scored = [v for v in values if v is not None]
    if not scored:
        return "no scored snapshot"
    count = f"{len(values)} latest snapshot{'s' if len(values) != 1 else ''}"
    return f"{display(scored[0], decimals, suffix='%')} → {display(scored[-1], decimals, suffix='%')} over the {count}"
