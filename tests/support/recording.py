"""Projects over a durability repository, configured as the daemon loads them, and collected for real."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from daemon.config.loading import load_config
from daemon.config.model import Config
from daemon.run.record import Recorded, record
from daemon.run.runner import collect_sources
from daemon.store import Store
from tests.support.git import GitRepo

RESTART = "tests/test_restart.py"
RETRY = "tests/test_retry.py"


def project(repo: GitRepo, project_id: str = "svc", *, below: float | None = None) -> dict[str, Any]:
    """One pillar, Durability, of two criteria (the restart and the retry tests exist); a floor ``below`` if given."""
    pillar: dict[str, Any] = {"id": "durability", "title": "Durability", "criteria": [
        {"id": "restart", "title": "Survive restart", "checks": [{"source": "repo", "signal": "file_exists", "path": RESTART}]},
        {"id": "retry", "title": "Retry covered", "checks": [{"source": "repo", "signal": "file_exists", "path": RETRY}]},
    ]}
    if below is not None:
        pillar["below"] = below
    return {"id": project_id, "alerts": {"threshold": 5, "for": 1, "repeat_interval": "24h"},
            "sources": [{"id": "repo", "kind": "git", "path": str(repo.path)}], "pillars": [pillar]}


def config(tmp_path: Path, channels: list[dict[str, Any]], projects: list[dict[str, Any]], **top: Any) -> Config:
    """The configuration file tmp_path/pw.yaml, written and loaded."""
    path = tmp_path / "pw.yaml"
    body = {"version": 1, "store": "pw.db", "channels": channels, **top, "projects": projects}
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return load_config(path)


def record_all(store: Store, cfg: Config, now: datetime) -> dict[str, Recorded]:
    """Collect every project of the configuration for real, and record each."""
    collected = collect_sources(cfg, cfg.projects, now=now)
    return {p.id: record(store, cfg, p, collected[p.id], now=now) for p in cfg.projects}
