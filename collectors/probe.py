"""HTTP probe: one request to an endpoint answers its status, latency and JSON values.

A non-2xx status is an observed value, not a fault: "the health endpoint says
503" is evidence. Only a request that got no answer at all (a timeout, a
refused connection) fails the source. The body is streamed and never read
past ``max_bytes``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from collectors.evidence import (
    CollectResult,
    Evidence,
    EvidenceRequest,
    Provenance,
    SourceFault,
    answer,
    failed,
    signal_params,
)
from collectors.gitrepo import GitSource
from collectors.http import Fetched, fetch, resolve_token
from collectors.models.probe import SIGNALS, HttpSource, JsonValue, Latency, Status
from collectors.secrets import one_line, shown_url

__all__ = ["SIGNALS", "HttpSource", "JsonValue", "Latency", "Status", "collect"]


class _Missing(Exception):
    """The JSON path does not lead to a value."""


def _at_path(document: Any, path: str) -> Any:
    current = document
    for depth, part in enumerate(path.split(".")):
        here = ".".join(path.split(".")[: depth + 1])
        if isinstance(current, dict):
            if part not in current:
                raise _Missing(f"no key {here!r} in the JSON response")
            current = current[part]
        elif isinstance(current, list):
            if not part.isdigit() or int(part) >= len(current):
                raise _Missing(f"no list item {here!r} in the JSON response (length {len(current)})")
            current = current[int(part)]
        else:
            raise _Missing(f"{here!r}: cannot look inside a {type(current).__name__} in the JSON response")
    return current


class _Answers:
    """Answers every request from the one response."""

    def __init__(self, source: HttpSource, got: Fetched):
        self.source, self.got, self.shown = source, got, shown_url(source.url)
        self._document: Any = None
        self._parsed = False

    def _json(self) -> Any:
        if self.got.oversize:
            raise SourceFault("malformed", f"{self.shown}: response body is larger than {self.source.max_bytes} bytes")
        if not self._parsed:
            try:
                self._document = json.loads(self.got.body)
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                what = "empty" if not self.got.body else f"not JSON ({one_line(exc)[:120]})"
                raise SourceFault("malformed", f"{self.shown}: response (HTTP {self.got.status}) is {what}") from None
            self._parsed = True
        return self._document

    def value(self, request: EvidenceRequest) -> dict[str, Any]:
        params = signal_params("http", SIGNALS, request)
        if isinstance(params, Status):
            # A redirect not followed is not "up": it may lead to a login page or another host.
            return {"code": self.got.status, "ok": 200 <= self.got.status < 300}
        if isinstance(params, Latency):
            return {"ms": self.got.ms}
        assert isinstance(params, JsonValue)
        try:
            return {"value": _at_path(self._json(), params.path)}
        except _Missing as missing:
            raise SourceFault("not_found", f"{self.shown}: {missing}") from None

    def evidence(self, request: EvidenceRequest, now: datetime) -> Evidence:
        where = Provenance(url=self.shown)
        return answer(self.source.id, request, now, lambda: (self.value(request), where), provenance=where)


def collect(
    source: HttpSource,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path | None = None,
    repo: GitSource | None = None,
    commit: str | None = None,
    previous: CollectResult | None = None,
    allow_commands: bool = False,
) -> CollectResult:
    """One request answers every signal; never raises for source faults. Only `now` of the keywords is used."""
    headers = dict(source.headers)
    token: str | None = None
    try:
        if source.token_env is not None:
            token = resolve_token(source.token_env, None, required=True)
            headers["Authorization"] = f"Bearer {token}"
        got = fetch(source.url, method=source.method, headers=headers, timeout=source.timeout_seconds,
                    max_bytes=source.max_bytes, follow_redirects=source.follow_redirects, secret=token)
    except SourceFault as fault:
        return failed(source.id, requests, fault.error, now=now)
    answers = _Answers(source, got)
    evidence = [answers.evidence(request, now) for request in requests]
    # The status and body identify what was observed; latency varies on every call.
    fingerprint = hashlib.sha256(f"{got.status}\0".encode() + got.body).hexdigest()
    return CollectResult(source=source.id, evidence=evidence, fingerprint=fingerprint)
