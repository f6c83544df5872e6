"""Holding off Python's cycle collector while a large, acyclic structure is built.

Building a snapshot or a configuration of 10,000 criteria allocates hundreds
of thousands of small objects, none in a cycle; the collector, triggered by
the count of allocations, would traverse the whole heap (configuration,
evidence, the previous snapshot) several times in the middle of it: half the
time of scoring 10,000 criteria (docs/BENCHMARKS.md). Afterwards one young
collection finds whatever is garbage instead.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Disable the cycle collector inside the block (unless it already was)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def kept_for_the_process() -> Iterator[None]:
    """Build inside the block what the process keeps until it exits, out of the collector's sight.

    The collector stays off while the block runs, and what exists afterwards is
    frozen (``gc.freeze``): a short command's configuration and snapshot are
    never traversed, not even by the one young collection that
    :func:`no_cycle_collection` leaves for afterwards (0.18 s for a
    configuration of 10,000 criteria). Only for one-shot processes: anything
    frozen is never collected as a cycle.
    """
    with no_cycle_collection():
        yield
        gc.freeze()
