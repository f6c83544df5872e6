"""The arithmetic of progress snapshots, exactly as DESIGN.md states it.

Full precision everywhere; rounding happens only for display, half-up
(74.5 -> 75), and an overall figure is computed from unrounded pillar values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

# Float sums such as (0.55 + 0.78 + 0.65 + 1.0) / 4 * 100 land a hair below
# 74.5; snapping to 9 decimals first makes half-up rounding see the true value.
_SNAP = Decimal("1e-9")


def weighted_mean(pairs: Iterable[tuple[float, float]]) -> float | None:
    """Mean of ``(value, weight)`` pairs; None when the total weight is zero."""
    items = list(pairs)
    if len(items) == 1:  # most criteria have one check: the same result without two fsums
        value, weight = items[0]
        return value * weight / weight if weight > 0 else None
    total = math.fsum(w for _, w in items)
    if total <= 0:
        return None
    return math.fsum(v * w for v, w in items) / total


def round_half_up(value: float, decimals: int = 0) -> Decimal:
    """Round for display: half-up, after removing float noise."""
    snapped = Decimal(repr(value)).quantize(_SNAP, rounding=ROUND_HALF_EVEN)
    return snapped.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def display(value: float | None, decimals: int = 0, *, suffix: str = "") -> str:
    """A figure as people read it: ``74.5`` -> ``"75"``; ``None`` -> ``"–"``."""
    if value is None:
        return "–"
    return f"{_no_minus_zero(round_half_up(value, decimals))}{suffix}"


def display_change(value: float | None, decimals: int = 0) -> str:
    """A change as people read it, signed: ``74.5`` -> ``"+75"``, ``-3.2`` -> ``"-3"``, ``-0.2`` -> ``"0"``."""
    if value is None:
        return "–"
    rounded = _no_minus_zero(round_half_up(value, decimals))
    return f"{rounded:+}" if rounded else str(rounded)


def _no_minus_zero(rounded: Decimal) -> Decimal:
    # -0.2 rounds to Decimal("-0"), which reads as a fall that did not happen.
    return abs(rounded) if rounded == 0 else rounded
