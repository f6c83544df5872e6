"""The serialisable vocabulary shared by every collector and by the daemon.

A collector receives a source model and a list of :class:`EvidenceRequest`
and returns a :class:`CollectResult`: one :class:`Evidence` per request, each
either a ``value`` or an ``error``. A fault in a source (a missing repository,
a malformed document) is data, never an exception; only bugs raise.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ErrorKind = Literal[
    "timeout",
    "http_status",
    "rate_limited",
    "malformed",
    "not_found",
    "unreachable",
    "auth",
    "unsafe",
    "unsupported",
    "too_large",
]


# One encoder for every call: json.dumps with options builds a new one each time, which
# cost as much as the encoding of the small dicts hashed here (see docs/BENCHMARKS.md, scoring).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: stable input for hashes."""
    return _CANONICAL.encode(value)


# Value fields computed from the collection's clock, not read from the source (git: how old a
# file or HEAD is). They change every second while the state stays the same, so they are left
# out of a snapshot's identity (see daemon.scoring.snapshot.Snapshot.content_hash).
CLOCK_FIELDS: dict[str, frozenset[str]] = {"file_age": frozenset({"days"}), "head": frozenset({"age_days"})}


# git's C-style quoting of a path (quote.c, core.quotePath on): these bytes by letter, other
# control bytes, DEL and every byte >= 0x80 as three octal digits.
_C_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r",
              0x22: '\\"', 0x5C: "\\\\"}


def path_text(name: str) -> str:
    """A file name as evidence keeps it: as it is when it is UTF-8, else quoted the way git quotes it.

    Names are read as bytes and decoded with ``surrogateescape``; a name that is
    not UTF-8 (or that starts with a double quote, so that no plain name looks
    quoted) becomes ``"caf\\351.txt"``, exactly as ``git ls-files`` shows it:
    lossless, and valid text for JSON and SQLite.
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no bytes decoded to
        raw = name.encode("utf-8", "surrogatepass")
    try:
        if not raw.decode("utf-8").startswith('"'):
            return name
    except UnicodeDecodeError:
        pass
    shown = (_C_ESCAPES.get(b) or (f"\\{b:03o}" if b < 0x20 or b >= 0x7F else chr(b)) for b in raw)
    return '"' + "".join(shown) + '"'


_C_UNESCAPES = {v[1]: k for k, v in _C_ESCAPES.items()}
_QUOTED_PART = re.compile(r'\\([0-7]{3}|.)', re.DOTALL)


def path_from_text(text: str) -> str:
    """The file name (``surrogateescape`` text) that :func:`path_text` shows as `text`: its inverse.

    A path parameter may name a file the way evidence shows it, ``"caf\\351.txt"``.
    """
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        return text
    body, raw, done = text[1:-1], bytearray(), 0
    for m in _QUOTED_PART.finditer(body):
        raw += body[done:m.start()].encode("utf-8", "surrogateescape")
        code = m.group(1)
        if len(code) == 3:
            raw.append(int(code, 8) & 0xFF)
        elif code in _C_UNESCAPES:
            raw.append(_C_UNESCAPES[code])
        else:  # not an escape git writes: the character itself
            raw += code.encode("utf-8", "surrogateescape")
        done = m.end()
    raw += body[done:].encode("utf-8", "surrogateescape")
    return bytes(raw).decode("utf-8", "surrogateescape")


def evidence_key(source: str, signal: str, params: dict[str, Any]) -> str:
    """The identity of one requested fact: source, signal and parameters."""
    return f"{source}:{signal}:{canonical_json(params)}"


class EvidenceError(BaseModel):
    """Why a requested fact could not be observed."""

    model_config = ConfigDict(frozen=True)

    kind: ErrorKind
    message: str
    retryable: bool = False

    # A message may quote a file name or git's stderr, read as bytes: bytes that are not UTF-8 are shown as \\xNN.
    _text = field_validator("message")(lambda cls, v: v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


class Provenance(BaseModel):
    """Where a fact came from, so that every score can be explained."""

    model_config = ConfigDict(frozen=True)

    commit: str | None = None
    path: str | None = None
    line: int | None = None
    url: str | None = None


class EvidenceRequest(BaseModel):
    """One fact asked of a source: a signal name and its parameters."""

    model_config = ConfigDict(frozen=True)

    signal: str
    params: dict[str, Any] = Field(default_factory=dict)


class Evidence(BaseModel):
    """One observed fact (``value``) or the reason it is missing (``error``)."""

    source: str
    signal: str
    params: dict[str, Any] = Field(default_factory=dict)
    value: dict[str, Any] | None = None
    error: EvidenceError | None = None
    provenance: Provenance = Field(default_factory=Provenance)
    observed_at: datetime

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def key(self) -> str:
        return evidence_key(self.source, self.signal, self.params)

    def content_hash(self) -> str:
        """Hash of what was observed, ignoring when: equal facts share a row."""
        body = self.model_dump(mode="json", exclude={"observed_at"})
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()[:32]


class CollectResult(BaseModel):
    """Everything one collection of one source produced.

    ``error`` is set when the source as a whole did not answer (a missing
    repository, an unreachable server); each evidence item then carries it too.
    ``fingerprint`` identifies the state that was read (a HEAD SHA, a
    document hash) so that an unchanged source can be recognised, and its
    evidence reused when ``settings`` are the same too.
    """

    source: str
    evidence: list[Evidence] = Field(default_factory=list)
    error: EvidenceError | None = None
    fingerprint: str | None = None
    # The source's settings the evidence was read with, where they change it
    # (git: max_file_bytes): evidence is reused only under the same ones.
    settings: str | None = None
    # Answers that depend on the clock as well as on the state read, by evidence key: until when
    # each still holds for the same fingerprint (None: as long as the fingerprint). A later
    # collection of the same state reuses them until then (git: `commits_since`).
    holds_until: dict[str, datetime | None] = Field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.error is None


def failed(
    source: str,
    requests: list[EvidenceRequest],
    error: EvidenceError,
    *,
    now: datetime,
) -> CollectResult:
    """A result for a source that did not answer: every item carries the error."""
    return CollectResult(
        source=source,
        error=error,
        evidence=[
            Evidence(source=source, signal=r.signal, params=r.params, error=error, observed_at=now)
            for r in requests
        ],
    )


class SourceFault(Exception):
    """Raised inside a collector, caught at its ``collect`` boundary.

    It never leaves a collector: ``collect`` turns it into evidence errors.
    """

    def __init__(self, kind: ErrorKind, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.error = EvidenceError(kind=kind, message=message, retryable=retryable)


class SignalParams(BaseModel):
    """The parameters of one signal; each signal's model names itself in ``signal`` and says how it scores.

    ``default_field`` is the value field a check reads and ``default_transform``
    the transform it applies when the rule names neither.
    """

    # Built on first validation, not at import: a configuration validates few of the signals.
    model_config = ConfigDict(extra="forbid", defer_build=True)
    default_field: ClassVar[str]
    default_transform: ClassVar[str | None]


def signal_table(*models: type[SignalParams]) -> dict[str, type[SignalParams]]:
    """Signal name -> parameter model, named by each model's ``signal`` default."""
    return {model.model_fields["signal"].default: model for model in models}


def signal_params(kind: str, signals: dict[str, type[SignalParams]], request: EvidenceRequest) -> SignalParams:
    """The validated parameters of `request` for a `kind` source answering `signals`.

    Raises SourceFault: ``unsupported`` for a signal the kind does not answer,
    ``malformed`` for parameters its model refuses.
    """
    model = signals.get(request.signal)
    if model is None:
        raise SourceFault("unsupported", f"unknown {kind} signal {request.signal!r} (known: {', '.join(signals)})")
    try:
        return model.model_validate({**request.params, "signal": request.signal})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "params"
        raise SourceFault("malformed", f"invalid params for {kind} signal {request.signal!r}: {where}: {first['msg']}") from None


def answer(source: str, request: EvidenceRequest, now: datetime, read: Callable[[], tuple[dict[str, Any], Provenance]],
           *, provenance: Provenance | None = None) -> Evidence:
    """The evidence for `request`: the value and provenance `read()` returns, or the SourceFault it raises as
    the error (with `provenance`, where the fault was met)."""
    try:
        value, found = read()
    except SourceFault as fault:
        return Evidence(source=source, signal=request.signal, params=request.params, error=fault.error,
                        provenance=provenance or Provenance(), observed_at=now)
    return Evidence(source=source, signal=request.signal, params=request.params, value=value, provenance=found,
                    observed_at=now)
