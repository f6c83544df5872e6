"""Small helpers shared by the store's modules."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def dumps(value: Any) -> str:
    """Compact, key-sorted JSON: equal values give equal text."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
