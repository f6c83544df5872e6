"""What changed between two snapshots: which criteria moved, which evidence changed.

One answer for the CLI's and the API's ``diff`` and for the evidence an alert
carries. Pure functions over two snapshots (a baseline and a later one). Evidence
changes are described the way a person would say them ("tests/test_restart.py
deleted in 3f2a1c9", "workflow run 4812: success → failure"), keeping the
commit, path, line and URL so that channels can link to them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, field_serializer

from collectors.evidence import Evidence, canonical_json, evidence_key
from daemon.errors import InputError
from daemon.scoring.arithmetic import display, display_change
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot, rfc3339

_DOC_SIGNALS = {"declared_score": "score", "ratio": "ratio", "checklist": "ratio"}
_COUNT_WORDS = {"matches": "matches", "files": "files", "count": "files"}
_CASE_WORDS = {"count": "test cases", "files": "files"}
_FILE_SIGNALS = ("file_exists", "file_count", "content_match", "test_cases")
_MAX_VALUE_CHARS = 60

# (source, old commit, new commit, path or glob, is a glob) -> the commit in between that made the change, or None
# when it cannot be told: the I/O is the caller's (collectors.git_history.blamer), these functions stay pure.
Blame = Callable[[str, str, str, str, bool], str | None]


class CriterionChange(BaseModel):
    pillar: str
    criterion: str
    title: str
    before: float | None
    after: float | None
    status_before: str | None = None
    status_after: str


class EvidenceChange(BaseModel):
    """One fact that changed, said the way a person would: "tests/test_x.py deleted in 3f2a1c9"."""

    source: str
    signal: str
    description: str
    commit: str | None = None
    path: str | None = None
    line: int | None = None
    url: str | None = None


# --- criteria --------------------------------------------------------------------------


def criterion_changes(baseline: Snapshot | None, current: Snapshot, pillar_id: str | None = None) -> list[CriterionChange]:
    """Every criterion (of one pillar, or of all) whose score or status differs."""
    changes = []
    for pillar in current.pillars:
        if pillar_id is not None and pillar.id != pillar_id:
            continue
        # The baseline's criteria of this pillar by id: one lookup each, not a walk of the snapshot.
        earlier = baseline.pillar(pillar.id) if baseline else None
        before_by_id = {c.id: c for c in reversed(earlier.criteria)} if earlier else {}
        for after in pillar.criteria:
            before = before_by_id.get(after.id)
            if before is not None and (before.score, before.status) == (after.score, after.status):
                continue
            if before is None and baseline is None:
                continue  # nothing to compare with: nothing "moved"
            changes.append(
                CriterionChange(
                    pillar=pillar.id,
                    criterion=after.id,
                    title=after.title,
                    before=before.score if before else None,
                    after=after.score,
                    status_before=before.status if before else None,
                    status_after=after.status,
                )
            )
    return changes


def merge_criteria(old: list[CriterionChange], new: list[CriterionChange]) -> list[CriterionChange]:
    """Changes over an alert's life: the first `before`, the latest `after`; no-ops dropped."""
    merged = {(c.pillar, c.criterion): c for c in old}
    for change in new:
        first = merged.get((change.pillar, change.criterion))
        merged[(change.pillar, change.criterion)] = (
            change
            if first is None
            else first.model_copy(update={"title": change.title, "after": change.after, "status_after": change.status_after})
        )
    return [c for c in merged.values() if (c.before, c.status_before) != (c.after, c.status_after)]


# --- evidence --------------------------------------------------------------------------


def evidence_changes(baseline: Snapshot | None, current: Snapshot, criteria: list[CriterionChange],
                     *, blame: Blame | None = None) -> list[EvidenceChange]:
    """Every evidence item of the given criteria that differs between the two snapshots."""
    if baseline is None:
        return []
    kinds = {s.id: s.kind for s in current.sources}
    pairs: dict[str, list[Evidence | None]] = {}
    fields: dict[str, str] = {}
    for change in criteria:
        for side, snap in enumerate((baseline, current)):
            criterion = snap.criterion(change.pillar, change.criterion)
            if criterion is None:
                continue
            fields.update(_check_fields(criterion))
            for item in criterion.evidence:
                pairs.setdefault(item.key, [None, None])[side] = item
    described = (describe_evidence(old, new, field=fields.get(key), kind=kinds.get((new or old).source, ""),  # type: ignore[union-attr]
                                   blame=blame)
                 for key, (old, new) in pairs.items())
    return [d for d in described if d is not None]


def merge_evidence(old: list[EvidenceChange], new: list[EvidenceChange]) -> list[EvidenceChange]:
    seen = {e.description for e in old}
    return [*old, *(e for e in new if e.description not in seen)]


def _check_fields(criterion: CriterionScore) -> dict[str, str]:
    return {evidence_key(c.source, c.signal, c.params): c.field for c in criterion.checks}


def _state(item: Evidence | None) -> Any:
    if item is None:
        return None
    return ("error", item.error.kind, item.error.message) if item.error else ("value", canonical_json(item.value))


def describe_evidence(old: Evidence | None, new: Evidence | None, *, field: str | None = None, kind: str = "",
                      blame: Blame | None = None) -> EvidenceChange | None:
    """One changed fact in words, or None when nothing changed."""
    if _state(old) == _state(new):
        return None
    latest = new or old
    assert latest is not None
    prov = latest.provenance
    change = EvidenceChange(source=latest.source, signal=latest.signal, description="", commit=prov.commit,
                            path=prov.path, line=prov.line, url=prov.url)
    if new is None:
        change.description = f"{_label(latest)}: no longer observed"
    elif new.error is not None:
        change.description = f"{new.source}: {new.error.message}"
    elif old is None or old.error is not None or old.value is None:
        was = f"was: {old.error.message}" if old is not None and old.error else "new"
        key = field or next(iter(sorted(new.value or {})), "value")
        change.description = f"{_label(new)}: {key} {_fmt((new.value or {}).get(key), key)} ({was})"
    else:
        _describe_values(change, old, new, field, kind, blame)
    return change


def _describe_values(change: EvidenceChange, old: Evidence, new: Evidence, field: str | None, kind: str,
                     blame: Blame | None) -> None:
    a, b = old.value or {}, new.value or {}
    signal = new.signal
    at = _made_in(change, old, new, blame) if signal in _FILE_SIGNALS else ""
    if signal == "file_exists" and bool(a.get("exists")) != bool(b.get("exists")):
        gone = bool(a.get("exists"))
        path = _first_path(a if gone else b) or new.params.get("path") or new.params.get("glob")
        change.path = str(path)
        change.description = f"{path} {'deleted' if gone else 'added'}{at}"
    elif signal in ("file_exists", "file_count", "content_match") and (moved := _changed(a, b, field, _COUNT_WORDS)):
        glob = new.params.get("glob") or new.params.get("path")
        change.description = f"{glob}: {_fmt(a.get(moved))} → {_fmt(b.get(moved))} {_COUNT_WORDS[moved]}{at}"
    elif signal == "test_cases" and (moved := _changed(a, b, field, _CASE_WORDS)):
        match = new.params.get("match")
        which = f"test cases matching {match!r}" if match else "test cases"
        change.description = f"{which}: {_fmt(a.get(moved))} → {_fmt(b.get(moved))} {_CASE_WORDS[moved]}{at}"
    elif signal == "latest_run":
        run = b.get("run_number") or b.get("run_id")
        noun = "pipeline" if kind == "gitlab" else "workflow run"
        before, after = a.get("conclusion"), b.get("conclusion")
        change.description = f"{noun} {run}: {before} → {after}" if before != after else f"{noun} {run}: still {after}"
        change.url = b.get("url") or change.url
        change.commit = b.get("head_sha") or change.commit
    elif signal in _DOC_SIGNALS:
        key = field or _DOC_SIGNALS[signal]
        path = new.provenance.path or old.provenance.path
        line = new.provenance.line or old.provenance.line
        change.line = line
        where = f"{path}:{line}" if line else f"{path}"
        change.description = f"{where}: {_score(a.get(key))} → {_score(b.get(key))}"
    elif signal == "tests":
        where = new.provenance.path or new.provenance.url or new.source
        change.description = f"{where}: {_passing(a)} → {_passing(b)} tests pass"
    else:
        key = _changed(a, b, field, None) or field or "value"
        change.description = f"{_label(new)}: {key} {_fmt(a.get(key), key)} → {_fmt(b.get(key), key)}"


def _made_in(change: EvidenceChange, old: Evidence, new: Evidence, blame: Blame | None) -> str:
    """`` in <commit>`` naming the commit that made a change to files, or `` between <A> and <B>``."""
    before, after = old.provenance.commit, new.provenance.commit
    if not after:
        return ""
    if not before or before == after:
        return f" in {after[:7]}"
    path, pattern = new.params.get("path"), new.params.get("glob")
    found = blame(new.source, before, after, str(path or pattern), not path) if blame and (path or pattern) else None
    if found is None:
        return f" between {before[:7]} and {after[:7]}"
    change.commit = found
    return f" in {found[:7]}"


def _changed(a: dict[str, Any], b: dict[str, Any], field: str | None, among: Iterable[str] | None) -> str | None:
    """The field that changed: the scored one if it did, else the first that did."""
    keys = list(among) if among is not None else sorted(set(a) | set(b))
    if field in keys and a.get(field) != b.get(field):
        return field
    return next((k for k in keys if a.get(k) != b.get(k)), None)


def _first_path(value: dict[str, Any]) -> str | None:
    paths = value.get("paths") or []
    return str(paths[0]) if paths else None


def _passing(value: dict[str, Any]) -> str:
    ran = int(value.get("tests") or 0) - int(value.get("skipped") or 0)
    return f"{value.get('passed', 0)}/{ran}"


def _label(item: Evidence) -> str:
    params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={_fmt(v)}"  # a rule's own figure, exactly
                       for k, v in sorted(item.params.items()))
    return f"{item.signal}({params})"


def _score(value: Any) -> str:
    return display(float(value), 2) if isinstance(value, (int, float)) and not isinstance(value, bool) else _fmt(value)


_DAY_FIELDS = frozenset({"days"})  # ages the git signals give in days (file_age, head)


def _days(value: float) -> str:
    if abs(value) < 0.5:
        return "under a day"
    whole = round(value)
    return f"{whole} day{'s' if abs(whole) != 1 else ''}"


def _number(value: float) -> str:
    """Two decimals at most, trailing zeros dropped: 4.86737e-05 reads 0, 12.5 reads 12.5."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _fmt(value: Any, key: str | None = None) -> str:
    """A value as a person reads it: an age in whole days, a number without an exponent."""
    if key in _DAY_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
        text = _days(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = _number(value)
    elif value is None:
        text = "none"
    elif isinstance(value, (dict, list)):
        text = canonical_json(value)
    else:
        text = str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


# --- two snapshots ---------------------------------------------------------------------


class PillarMove(BaseModel):
    id: str
    title: str
    before: float | None
    after: float | None
    delta: float | None


class SnapshotDiff(BaseModel):
    """What changed from snapshot ``a`` to snapshot ``b``."""

    project: str
    a: int | None
    b: int | None
    a_taken_at: datetime
    b_taken_at: datetime
    rules_changed: bool
    overall: PillarMove
    pillars: list[PillarMove]
    criteria: list[CriterionChange]
    evidence: list[EvidenceChange]

    @field_serializer("a_taken_at", "b_taken_at")
    def _time(self, value: datetime) -> str:
        return rfc3339(value)


def diff(a: Snapshot, b: Snapshot, *, blame: Blame | None = None) -> SnapshotDiff:
    """Pillars whose % moved, criteria whose score or status moved, and the evidence that changed.

    ``blame`` finds the commit that made a change to files (see :func:`commit_blame`).
    """
    if a.project != b.project:
        raise InputError(f"snapshots {a.id} and {b.id} belong to different projects ({a.project}, {b.project})")
    # An empty or inverted diff would read as "nothing changed" or as every change undone: refuse both.
    if a.id is not None and a.id == b.id:
        raise InputError(f"a and b are the same snapshot ({a.id}): give two different snapshots")
    if a.taken_at > b.taken_at:
        raise InputError(f"snapshot {a.id} ({rfc3339(a.taken_at)}) is later than snapshot {b.id} ({rfc3339(b.taken_at)}): "
                         "give the earlier one first")
    criteria = criterion_changes(a, b)
    ids = [p.id for p in b.pillars] + [p.id for p in a.pillars if b.pillar(p.id) is None]
    pillars = [_move(a.pillar(i), b.pillar(i)) for i in ids]
    return SnapshotDiff(
        project=b.project, a=a.id, b=b.id, a_taken_at=a.taken_at, b_taken_at=b.taken_at,
        rules_changed=a.rules_hash != b.rules_hash,
        overall=PillarMove(id="overall", title="Overall", before=a.overall, after=b.overall, delta=_delta(a.overall, b.overall)),
        pillars=[m for m in pillars if m.before != m.after],
        criteria=criteria,
        evidence=evidence_changes(a, b, criteria, blame=blame),
    )


def _move(before: PillarScore | None, after: PillarScore | None) -> PillarMove:
    either = after or before
    assert either is not None
    old = before.score if before else None
    new = after.score if after else None
    return PillarMove(id=either.id, title=either.title, before=old, after=new, delta=_delta(old, new))


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


# --- the same, as Markdown (a pull-request comment) ----------------------------------------


def _cell(value: object) -> str:
    """Text safe in one Markdown table cell: pipes escaped, line breaks and control characters made spaces."""
    text = "".join(" " if ord(c) < 32 or 0x7F <= ord(c) <= 0x9F else c for c in str(value))
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def _named(snapshot_id: int | None, taken_at: datetime) -> str:
    """A snapshot as a comment names it; one never stored (``collect --dry-run``) is "this run"."""
    return f"{'this run' if snapshot_id is None else f'#{snapshot_id}'} ({taken_at:%Y-%m-%d %H:%M}Z)"


def diff_markdown(d: SnapshotDiff, decimals: int) -> str:
    """:func:`diff` as GitHub-flavoured Markdown: the pillars that moved, then the criteria and the evidence."""
    lines = [f"### pillarwatch: {_cell(d.project)}", "",
             f"{_named(d.a, d.a_taken_at)} → {_named(d.b, d.b_taken_at)}", ""]
    if d.rules_changed:
        lines += ["> The rules changed between the two (different rules hash).", ""]
    lines += ["| | before | after | change |", "|---|---:|---:|---:|"]
    for m in [d.overall, *d.pillars]:
        lines.append(f"| {_cell(m.title)} | {display(m.before, decimals, suffix=' %')} | {display(m.after, decimals, suffix=' %')} "
                     f"| {display_change(m.delta, decimals)} |")
    if d.criteria:
        lines += ["", "| criterion | before | after | status |", "|---|---:|---:|---|"]
        for c in d.criteria:
            status = c.status_after if c.status_before == c.status_after else f"{c.status_before} → {c.status_after}"
            lines.append(f"| {_cell(c.pillar)}/{_cell(c.criterion)} {_cell(c.title)} | {display(c.before, 2)} "
                         f"| {display(c.after, 2)} | {_cell(status)} |")
    if d.evidence:
        lines += ["", "| source | what changed |", "|---|---|"]
        for e in d.evidence:
            lines.append(f"| {_cell(e.source)} | {_cell(e.description)}{f' ({_cell(e.url)})' if e.url else ''} |")
    if not d.pillars and not d.criteria and not d.evidence and d.overall.before == d.overall.after:
        lines += ["", "Nothing changed."]
    return "\n".join(lines) + "\n"
