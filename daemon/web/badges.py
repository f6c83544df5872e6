"""Status badges: shields.io-style flat SVG, ``label | value``.

    pillarwatch | 98%        a project's overall figure
    durability  | 97%        one pillar's figure

The value is the figure as displayed (half-up, ``display.decimals``), and its
colour band is chosen from that displayed figure, so a badge reading "90%" is
never a shade short of the ≥ 90 band:

    ≥ 90 brightgreen   ≥ 75 green   ≥ 60 yellowgreen   ≥ 40 yellow
    ≥ 20 orange        below 20 red                     no data: grey

There is no font to measure with on the server, so text widths are estimated
from Verdana's advance widths at 11 px (the font badges are drawn in) and the
text is also given a ``textLength``: a renderer with another font squeezes or
stretches it to the estimate instead of running past the edge.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from daemon.config.model import Config
from daemon.errors import NotFound
from daemon.scoring.arithmetic import display, round_half_up
from daemon.store import Store
from daemon.web.charts import escape

__all__ = ["BANDS", "NO_DATA", "badge_svg", "colour_for", "figure_badge", "pillar_badge", "project_badge", "text_width"]

# (lowest displayed %, colour name, hex): the first band the figure reaches wins.
BANDS: tuple[tuple[float, str, str], ...] = (
    (90, "brightgreen", "#4c1"),
    (75, "green", "#97ca00"),
    (60, "yellowgreen", "#a4a61d"),
    (40, "yellow", "#dfb317"),
    (20, "orange", "#fe7d37"),
    (0, "red", "#e05d44"),
)
NO_DATA = ("lightgrey", "#9f9f9f")

# Verdana advance widths (font units of 2048) for the characters badges mostly hold.
_UNITS = 2048
_ADVANCE: dict[str, int] = {
    **dict(zip("abcdefghijklmnopqrstuvwxyz",
               (1229, 1276, 1067, 1276, 1220, 720, 1276, 1296, 562, 676, 1182, 562, 1992,
                1296, 1243, 1276, 1276, 874, 1067, 807, 1296, 1182, 1681, 1182, 1182, 1045))),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               (1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 862, 921, 1405, 1142, 1726,
                1532, 1612, 1255, 1612, 1431, 1399, 1249, 1532, 1401, 2025, 1403, 1255, 1399))),
    **{d: 1302 for d in "0123456789"},
    " ": 720, "%": 2200, ".": 745, ",": 745, ":": 745, ";": 745, "-": 862, "_": 1302,
    "/": 921, "(": 929, ")": 929, "|": 929, "!": 824, "'": 550, "+": 1716, "&": 1472,
}
_FALLBACK = 1401  # an unknown narrow character: as wide as a capital, to err on the wide side
_WIDE = 2048  # an East Asian wide character fills the em square
_FONT_PX = 11
_PAD = 6  # px either side of a text
_HEIGHT = 20


def text_width(value: str) -> float:
    """Estimated width in px of ``value`` in Verdana 11 px."""
    units = 0
    for char in value:
        if char in _ADVANCE:
            units += _ADVANCE[char]
        elif unicodedata.combining(char):
            continue
        elif unicodedata.east_asian_width(char) in ("W", "F"):
            units += _WIDE
        else:
            units += _FALLBACK
    return units * _FONT_PX / _UNITS


def colour_for(shown: Decimal | float | None) -> tuple[str, str]:
    """(name, hex) of the band of a displayed figure; grey when there is none."""
    if shown is None:
        return NO_DATA
    for lowest, name, hex_ in BANDS:
        if shown >= lowest:
            return name, hex_
    return BANDS[-1][1], BANDS[-1][2]


def badge_svg(label: str, value: str, colour: str) -> str:
    """A flat badge: grey ``label`` on the left, ``value`` on ``colour`` on the right."""
    label_w = round(text_width(label) + 2 * _PAD)
    value_w = round(text_width(value) + 2 * _PAD)
    total = label_w + value_w
    said = escape(f"{label}: {value}")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{_HEIGHT}" role="img" aria-label="{said}">',
        f"<title>{said}</title>",
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>',
        f'<clipPath id="r"><rect width="{total}" height="{_HEIGHT}" rx="3" fill="#fff"/></clipPath>',
        f'<g clip-path="url(#r)"><rect width="{label_w}" height="{_HEIGHT}" fill="#555"/>'
        f'<rect x="{label_w}" width="{value_w}" height="{_HEIGHT}" fill="{escape(colour)}"/>'
        f'<rect width="{total}" height="{_HEIGHT}" fill="url(#s)"/></g>',
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="{_FONT_PX}">',
        *_text(label, label_w / 2, label_w - 2 * _PAD),
        *_text(value, label_w + value_w / 2, value_w - 2 * _PAD),
        "</g></svg>",
    ]
    return "".join(parts)


def _text(value: str, centre: float, length: float) -> list[str]:
    """The text and its shadow one pixel below, as shields draws them."""
    body = escape(value)
    fit = f'textLength="{length:g}" lengthAdjust="spacingAndGlyphs"'
    return [
        f'<text x="{centre:g}" y="15" fill="#010101" fill-opacity=".3" {fit} aria-hidden="true">{body}</text>',
        f'<text x="{centre:g}" y="14" {fit}>{body}</text>',
    ]


def figure_badge(label: str, score: float | None, decimals: int) -> str:
    """The badge of a figure (a percentage, or None when there is no data)."""
    if score is None:
        return badge_svg(label, "no data", NO_DATA[1])
    shown = round_half_up(score, decimals)
    return badge_svg(label, display(score, decimals, suffix="%"), colour_for(shown)[1])


def project_badge(store: Store, config: Config, project_id: str, *, label: str | None = None) -> str:
    """``Shop service | 98%``: the project's latest overall figure, under its name (or ``label``)."""
    project = config.project(project_id)
    latest = store.latest(project.id)
    return figure_badge(label or project.title or project.id, latest.overall if latest else None, config.display.decimals)


def pillar_badge(store: Store, config: Config, project_id: str, pillar_id: str, *, label: str | None = None) -> str:
    """``durability | 97%``: one pillar's latest figure, under its id (or ``label``)."""
    project = config.project(project_id)
    if pillar_id not in {p.id for p in project.expanded_pillars}:
        raise NotFound(f"no pillar {pillar_id!r} in project {project.id!r}")
    latest = store.latest(project.id)
    pillar = latest.pillar(pillar_id) if latest else None
    return figure_badge(label or pillar_id, pillar.score if pillar else None, config.display.decimals)
