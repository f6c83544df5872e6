"""Small helpers shared by the store's modules."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

# One encoder for every call: json.dumps with options builds a new one each time (50,000 calls
# to store a snapshot of 10,000 criteria).
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON: equal values give equal text."""
    return _ENCODER.encode(value)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
