"""The configuration the daemon subprocess tests run: one project watching a durability repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def config_body(repo: Path, hook: str, **overrides: Any) -> dict[str, Any]:
    """Collect ``repo`` every 2 s, alert on a 5-point fall to the webhook ``hook``, with short daemon timings."""
    body: dict[str, Any] = {
        "version": 1,
        "store": "pw.db",
        "daemon": {"debounce": "0.3s", "send_interval": "0.3s", "shutdown_grace": "5s", "retry_initial": "0.2s", "retry_max": "1s"},
        "channels": [{"kind": "webhook", "id": "hook", "url": hook, "secret_env": "PW_TEST_WEBHOOK_SECRET",
                      "group_wait": "0.5s"}],
        "projects": [{
            "id": "svc",
            "schedule": {"every": "2s"},
            "alerts": {"threshold": 5, "for": 1, "stale_after": "3s", "repeat_interval": "1h"},
            "sources": [{"id": "repo", "kind": "git", "path": str(repo)}],
            "pillars": [
                {"id": "durability", "title": "Durability", "criteria": [
                    {"id": "restart", "title": "Survive restart", "checks": [
                        {"source": "repo", "signal": "file_exists", "path": "tests/test_restart.py"}]},
                    {"id": "retry", "title": "Retry covered", "weight": 1, "checks": [
                        {"source": "repo", "signal": "file_exists", "path": "tests/test_retry.py"}]},
                ]},
            ],
        }],
    }
    body.update(overrides)
    return body


def write_config(tmp_path: Path, body: dict[str, Any]) -> None:
    """``body`` as tmp_path/pw.yaml, where the daemon subprocess reads it."""
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
