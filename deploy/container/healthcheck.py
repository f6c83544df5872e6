#!/usr/bin/env python3
"""Probe pillarwatch's HTTP API from inside its container: exit 0 on HTTP 200, else 1.

    pillarwatch-healthcheck [PATH]          PATH defaults to /healthz

The image's HEALTHCHECK runs it on /healthz (open, no token); the Kubernetes
readiness probe runs it on /readyz, which needs the bearer token whenever the
API has one: it is read from $PILLARWATCH_API_TOKEN, or from the file named
by $PILLARWATCH_API_TOKEN_FILE. $PILLARWATCH_API_URL overrides the base URL
(default http://127.0.0.1:8477). Only the standard library: the slim image
has no curl. One line on stderr says why a probe failed.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path


def token() -> str | None:
    value = os.environ.get("PILLARWATCH_API_TOKEN", "").strip()
    if not value and os.environ.get("PILLARWATCH_API_TOKEN_FILE"):
        value = Path(os.environ["PILLARWATCH_API_TOKEN_FILE"]).read_text(encoding="utf-8").strip()
    return value or None


def probe(path: str, *, timeout: float = 4.0) -> int:
    base = os.environ.get("PILLARWATCH_API_URL", "http://127.0.0.1:8477").rstrip("/")
    try:
        request = urllib.request.Request(base + path, headers={"Accept": "application/json"})
        if path != "/healthz" and (secret := token()):
            request.add_header("Authorization", f"Bearer {secret}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"pillarwatch-healthcheck: {path}: HTTP {exc.code}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"pillarwatch-healthcheck: {path}: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(probe(sys.argv[1] if len(sys.argv) > 1 else "/healthz"))
