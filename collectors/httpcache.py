"""The on-disk memory of the API collectors: ETags and bodies of earlier answers, and rate limits.

One JSON file per answer; every write is atomic, and a full or read-only disk
only costs the next request its 304.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_BLOCK_SECONDS", "EtagCache", "Stored", "note_exhausted", "rate_limit_reset", "utc_text"]

_DEFAULT_BLOCK_SECONDS = 60.0  # GitHub's advice when a rate limit names no reset
MAX_BLOCK_SECONDS = 3600.0  # a bogus reset header must not silence a source for good
_PRUNE_EVERY = 86400.0
_PRUNE_AFTER = 14 * 86400.0  # entries unused this long (old pipelines' reports) are dropped


@dataclass(frozen=True)
class Stored:
    """An earlier answer: its ETag, decoded body and links."""

    etag: str
    data: Any
    links: dict[str, str]


class EtagCache:
    """ETags and bodies of earlier answers, one JSON file each, plus rate-limit blocks.

    Keys hash the URL, the parameters and a hash of the token, so different
    credentials never share an answer and no file names or holds a credential.
    Every write is atomic; a failed write only costs the next request its 304.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    @staticmethod
    def key(url: str, params: Mapping[str, Any] | None, token_id: str) -> str:
        material = json.dumps([url, sorted((params or {}).items()), token_id], default=str)
        return hashlib.sha256(material.encode()).hexdigest()

    def load(self, key: str) -> Stored | None:
        try:
            raw = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            return Stored(str(raw["etag"]), raw["data"], dict(raw["links"]))
        except (OSError, ValueError, KeyError, TypeError):  # missing or damaged: ask afresh
            return None

    def store(self, key: str, url: str, etag: str, data: Any, links: dict[str, str]) -> None:
        self._write(f"{key}.json", {"url": url, "etag": etag, "links": links, "data": data})
        self._prune()

    def touch(self, key: str) -> None:
        with contextlib.suppress(OSError):  # keeps a still-used entry from being pruned
            os.utime(self.folder / f"{key}.json")

    def blocked_until(self, scope: str) -> float:
        try:
            return float(json.loads((self.folder / f"blocked-{_hash(scope)}.json").read_text())["until"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0

    def block(self, scope: str, until: float) -> None:
        self._write(f"blocked-{_hash(scope)}.json", {"until": until, "until_utc": utc_text(until)})

    def _write(self, name: str, payload: Any) -> None:
        tmp: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.folder)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(payload, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.folder / name)
            tmp = None
        except OSError:
            pass  # a full or read-only disk must not fail a collection
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def _prune(self) -> None:
        marker, now = self.folder / ".pruned", time.time()
        try:
            if marker.exists() and now - marker.stat().st_mtime < _PRUNE_EVERY:
                return
            marker.touch()
            for path in self.folder.glob("*.json"):
                if now - path.stat().st_mtime > _PRUNE_AFTER:
                    path.unlink(missing_ok=True)
        except OSError:
            pass


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def utc_text(epoch: float) -> str:
    """An epoch second as RFC 3339 UTC, for messages."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rate_limit_reset(response: httpx.Response, body: bytes) -> float | None:
    """When a 403/429 is a rate limit: the epoch second it lifts; None when it is not one."""
    if response.status_code not in (403, 429):
        return None
    now, headers = time.time(), response.headers
    if retry := headers.get("retry-after", "").strip():
        if retry.isdigit():
            return now + int(retry)
        try:
            return parsedate_to_datetime(retry).timestamp()
        except (TypeError, ValueError):
            return now + _DEFAULT_BLOCK_SECONDS
    for prefix in ("x-ratelimit-", "ratelimit-"):  # GitHub's names, then GitLab's
        if headers.get(prefix + "remaining", "").strip() == "0":
            reset = headers.get(prefix + "reset", "").strip()
            return float(reset) if reset.isdigit() else now + _DEFAULT_BLOCK_SECONDS
    # GitHub's secondary limits may come as a bare 403 that says so in its message.
    if response.status_code == 429 or b"rate limit" in body.lower():
        return now + _DEFAULT_BLOCK_SECONDS
    return None


def note_exhausted(cache: EtagCache, scope: str, response: httpx.Response) -> None:
    """A success that spent the last request of the window blocks until the reset."""
    for prefix in ("x-ratelimit-", "ratelimit-"):
        reset = response.headers.get(prefix + "reset", "").strip()
        if response.headers.get(prefix + "remaining", "").strip() == "0" and reset.isdigit():
            if float(reset) > time.time():
                cache.block(scope, min(float(reset), time.time() + MAX_BLOCK_SECONDS))
            return
