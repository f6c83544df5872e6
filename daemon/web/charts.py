"""Trend charts as inline SVG: a pure function from points to markup.

The dashboard embeds these in its HTML and must work offline, so there is no
charting library and no script: the chart is drawn here, once, on the server.
The y axis is always 0–100 % (a pillar at 40 % must look like 40 %, not like
the bottom of an auto-scaled axis); time runs left to right, linearly, or
(the sample axis) the snapshots are evenly spaced in their order, so that a
day of collections every 15 minutes after months of daily ones stays legible.

Everything that reaches the markup from outside (the title) is escaped here,
so the result may be inserted into a page as it is.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from daemon.scoring.arithmetic import display

__all__ = ["AXES", "Axis", "Point", "escape", "plot", "thin", "trend_svg"]

Axis = Literal["time", "sample"]
AXES: tuple[Axis, ...] = ("time", "sample")

# Room for the "100%" labels on the left and the dates below.
_LEFT, _RIGHT, _TOP, _BOTTOM = 38, 10, 10, 22
_GRID = (0, 25, 50, 75, 100)
_LABELLED = (0, 50, 100)
# Presentation attributes, so that the chart reads right without the page's CSS
# (the page may still restyle the classes). A partial snapshot is hollow.
_GRID_COLOUR = "#d0d7de"
_LINE = "#0969da"
_FONT = ' font-family="sans-serif" font-size="12" fill="#57606a"'
_FILLED = f' fill="{_LINE}"'
_HOLLOW = f' fill="#ffffff" stroke="{_LINE}" stroke-width="2"'
# Characters XML 1.0 forbids even when escaped: dropped rather than rejected.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Point:
    """One snapshot on the chart.

    ``value`` is a percentage (None: no score, left out). ``until`` is the last
    time the same state was seen again (a cheap repeat): the line stays flat
    up to it, because the figure really held that long.
    """

    at: datetime
    value: float | None
    partial: bool = False
    until: datetime | None = None


def escape(value: str) -> str:
    """Text safe in XML character data and attribute values."""
    return html.escape(_NOT_XML.sub("", value), quote=True)


def plot(points: Sequence[Point], *, width: int, height: int, axis: Axis = "time") -> list[tuple[float, float] | None]:
    """The (x, y) of each point in the chart's coordinates, None where the value is None.

    On the ``time`` axis, x is linear in time over the plot area (one moment
    only: the middle); on the ``sample`` axis, the points are evenly spaced in
    their order, however far apart in time. y is 100 % at the top of the plot
    area and 0 % at its bottom.
    """
    xs, _, y_of = _scale(points, width=width, height=height, axis=axis)
    return [None if p.value is None else (x, y_of(p.value)) for p, x in zip(points, xs)]


def thin(moments: Sequence[datetime], limit: int, *, axis: Axis = "time") -> list[int]:
    """The indices of at most ``limit`` of ``moments`` (oldest first) to draw, the latest always among them.

    On the time axis, the last moment of each of ``limit`` equal stretches of
    time (what a reader could tell apart anyway); on the sample axis, moments
    evenly spaced in their order.
    """
    n = len(moments)
    if n <= limit:
        return list(range(n))
    if axis == "sample":
        step = (n - 1) / (limit - 1)
        return sorted({round(i * step) for i in range(limit)})
    start = moments[0]
    seconds = (moments[-1] - start).total_seconds() or 1.0
    kept: dict[int, int] = {}
    for i, moment in enumerate(moments):  # a later moment of the same stretch replaces the earlier one
        kept[min(limit - 1, int(limit * (moment - start).total_seconds() / seconds))] = i
    return sorted(kept.values())


def _scale(points: Sequence[Point], *, width: int, height: int, axis: Axis = "time",
           ) -> tuple[list[float], Callable[[datetime], float] | None, Callable[[float], float]]:
    """The x of each point, x of a moment (None on the sample axis), and y of a value."""
    left, right = _LEFT, width - _RIGHT
    top, bottom = _TOP, height - _BOTTOM

    def y_of(value: float) -> float:
        clamped = min(100.0, max(0.0, value))
        return round(bottom - (bottom - top) * clamped / 100, 2)

    if axis == "sample":
        n = len(points)
        xs = [round((left + right) / 2 if n == 1 else left + (right - left) * i / (n - 1), 2) for i in range(n)]
        return xs, None, y_of
    start, end = _span(points)
    seconds = (end - start).total_seconds() if start is not None and end is not None else 0.0

    def x_of(moment: datetime) -> float:
        if start is None or seconds <= 0:
            return round((left + right) / 2, 2)
        return round(left + (right - left) * (moment - start).total_seconds() / seconds, 2)

    return [x_of(p.at) for p in points], x_of, y_of


def trend_svg(
    points: Sequence[Point],
    *,
    title: str,
    width: int = 320,
    height: int = 140,
    decimals: int = 0,
    axis: Axis = "time",
) -> str:
    """A line chart of ``points`` (oldest first) with a 0–100 % axis, as an ``<svg>`` element.

    Each point is a circle with a tooltip; a partial snapshot is drawn hollow
    (class ``point partial``). The line breaks where a value is missing.
    ``axis``: ``time`` (x linear in time) or ``sample`` (points evenly spaced).
    """
    points = sorted(points, key=lambda p: p.at)
    xy = plot(points, width=width, height=height, axis=axis)
    left, right, top, bottom = _LEFT, width - _RIGHT, _TOP, height - _BOTTOM
    label = escape(title)
    summary = _summary(points, decimals)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}">',
        f"<title>{label}</title>",
        f"<desc>{escape(summary)}</desc>",
    ]
    for level in _GRID:
        y = bottom - (bottom - top) * level / 100
        out.append(f'<line class="grid" x1="{left}" y1="{y:g}" x2="{right}" y2="{y:g}" stroke="{_GRID_COLOUR}"/>')
        if level in _LABELLED:
            out.append(f'<text class="axis" x="{left - 4}" y="{y + 4:g}" text-anchor="end"{_FONT}>{level}%</text>')
    out += _time_labels(points, width=width, height=height, axis=axis)
    if not any(p is not None for p in xy):
        out.append(f'<text class="empty" x="{(left + right) / 2:g}" y="{(top + bottom) / 2:g}" text-anchor="middle"{_FONT}>no data yet</text>')
    out += [f'<polyline class="line" points="{_coords(run)}" fill="none" stroke="{_LINE}" stroke-width="2"/>' for run in _runs(points, width=width, height=height, axis=axis)]
    # Many points close together: smaller dots, so that the line stays visible between them.
    radius = 4 if len(points) <= 60 else 2.5
    for point, at in zip(points, xy):
        if at is None:
            continue
        kind, paint = ("point partial", _HOLLOW) if point.partial else ("point", _FILLED)
        tip = f"{_when(point.at)}: {display(point.value, decimals, suffix='%')}" + (" (partial)" if point.partial else "")
        out.append(f'<circle class="{kind}" cx="{at[0]:g}" cy="{at[1]:g}" r="{radius:g}"{paint}><title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def _span(points: Sequence[Point]) -> tuple[datetime | None, datetime | None]:
    moments = [m for p in points for m in (p.at, p.until) if m is not None]
    return (min(moments), max(moments)) if moments else (None, None)


def _runs(points: Sequence[Point], *, width: int, height: int, axis: Axis) -> list[list[tuple[float, float]]]:
    """Polylines: runs of consecutive scored points, each point held flat up to its ``until`` (on the time axis)."""
    xs, x_of, y_of = _scale(points, width=width, height=height, axis=axis)
    runs: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for point, x in zip(points, xs):
        if point.value is None:
            runs.append(current)
            current = []
            continue
        y = y_of(point.value)
        current.append((x, y))
        if x_of is not None and point.until is not None and point.until > point.at:
            current.append((x_of(point.until), y))
    runs.append(current)
    return [run for run in runs if len(run) > 1]


def _time_labels(points: Sequence[Point], *, width: int, height: int, axis: Axis) -> list[str]:
    """The first and last moments under the axis: enough to read a trend, never crowded."""
    start, end = _span(points) if axis == "time" else (points[0].at, points[-1].at) if points else (None, None)
    if start is None or end is None:
        return []
    start, end = _utc(start), _utc(end)
    y = height - 6
    if start == end:
        return [f'<text class="axis" x="{(_LEFT + width - _RIGHT) / 2:g}" y="{y}" text-anchor="middle"{_FONT}>{start:%Y-%m-%d %H:%M}</text>']
    # Within one day the dates would repeat: the left label has the date, both have the time.
    same_day = start.date() == end.date()
    first, last = (f"{start:%Y-%m-%d %H:%M}", f"{end:%H:%M}") if same_day else (f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}")
    return [
        f'<text class="axis" x="{_LEFT}" y="{y}" text-anchor="start"{_FONT}>{first}</text>',
        f'<text class="axis" x="{width - _RIGHT}" y="{y}" text-anchor="end"{_FONT}>{last}</text>',
    ]


def _summary(points: Sequence[Point], decimals: int) -> str:
    """The chart in words, for screen readers."""
    scored = [p for p in points if p.value is not None]
    if not scored:
        return "No scored snapshot yet."
    first, last = scored[0], scored[-1]
    partial = sum(p.partial for p in points)
    return (
        f"{len(points)} snapshots from {_when(points[0].at)} to {_when(points[-1].at)}; "
        f"{display(first.value, decimals, suffix='%')} first, {display(last.value, decimals, suffix='%')} latest"
        + (f"; {partial} partial" if partial else "")
        + "."
    )


def _when(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%MZ")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _coords(run: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:g},{y:g}" for x, y in run)
