"""The daemon's health file: what a supervisor reads to know the daemon is collecting.

It says when the daemon started and last wrote, when the last successful
collection was, and each project's latest figures. It is replaced whole
(written beside, then renamed), so a reader never sees half of one.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.config.model import Project
from daemon.scoring.snapshot import rfc3339
from daemon.store import Store

log = logging.getLogger("pillarwatch.daemon")


def health(store: Store, projects: Sequence[Project], *, started_at: datetime, now: datetime) -> dict[str, Any]:
    """The health file's body, read from the store."""
    last_success = store.last_success()
    # The figures only, without criteria and evidence: this runs after every snapshot of every project.
    latest = {p.id: next(iter(store.history(p.id, limit=1)), None) for p in projects}
    return {
        "pid": os.getpid(),
        "started_at": rfc3339(started_at),
        "written_at": rfc3339(now),
        "last_success_at": rfc3339(last_success) if last_success else None,
        "projects": {
            pid: {"snapshot": s.id, "seen_at": rfc3339(s.seen_at), "overall": s.overall, "complete": s.complete} if s else None
            for pid, s in latest.items()
        },
    }


def write_health(path: Path, body: dict[str, Any]) -> None:
    """Replace the health file; on a full disk, log one line and leave the previous file whole."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        log.error("health file %s not written: %s", path, exc.strerror or exc)


__all__ = ["health", "write_health"]
