"""Fixtures of the reliability suite (crash consistency, soak, faults, bad input).

The daemon is driven as a real subprocess against real git repositories and a
real webhook receiver; those harnesses are in ``tests/support/`` (processes,
webhooks, database, procfs) and the ``daemons`` fixture in ``tests/conftest.py``.
What this folder adds is the seed of the random choices.
"""

from __future__ import annotations

import os
import random

import pytest

SEED_ENV = "PW_RELIABILITY_SEED"


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A seeded random.Random: ``PW_RELIABILITY_SEED=N`` replays a run, otherwise a fresh seed is drawn and printed."""
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"\n{request.node.name}: seed {seed} (replay with {SEED_ENV}={seed})")
    return random.Random(seed)
