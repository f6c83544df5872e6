"""What an alert says: its title and message, in words, over the changes of :mod:`daemon.changes`."""

from __future__ import annotations

from datetime import datetime, timedelta

from daemon.alerting.rules import Alert, AlertMessage
from daemon.changes import CriterionChange, EvidenceChange
from daemon.config.alerts import EventKind
from daemon.scoring.arithmetic import display
from daemon.scoring.snapshot import rfc3339

# --- messages --------------------------------------------------------------------------


def percent(value: float | None, decimals: int) -> str:
    return display(value, decimals, suffix="%" if value is not None else "")


def duration(span: timedelta) -> str:
    """``7h``, ``45m``, ``3d``: how long, as a person would round it."""
    seconds = max(0, int(span.total_seconds()))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def title(alert: Alert, event: EventKind, name: str, decimals: int, *, now: datetime, error: str | None = None,
          since: datetime | None = None) -> str:
    base, value = percent(alert.baseline, decimals), percent(alert.value, decimals)
    if alert.kind == "source_failing":
        if event == "resolved":
            return f"{name} is answering again"
        return f"{name} has been failing for {duration(now - (since or alert.started_at))}" + (f": {error}" if error else "")
    if alert.kind == "floor":
        if event == "resolved":
            return f"{name} is back above its floor of {base}: {value}"
        return f"{name} is below its floor of {base}: {value}"
    if event == "resolved":
        return f"{name} is back at {value}"
    return f"{name} fell from {base} to {value}"


def message(
    alert: Alert,
    event: EventKind,
    *,
    name: str,
    decimals: int,
    now: datetime,
    snapshot_id: int | None,
    criteria: list[CriterionChange] | None = None,
    evidence: list[EvidenceChange] | None = None,
    error: str | None = None,
    since: datetime | None = None,
    headline: str | None = None,
) -> AlertMessage:
    """One event of one alert; `criteria`/`evidence` default to what the alert has gathered."""
    criteria = alert.criteria if criteria is None else criteria
    evidence = alert.evidence if evidence is None else evidence
    heading = headline or title(alert, event, name, decimals, now=now, error=error, since=since)
    low, low_at = _low(alert)
    notes = _notes(heading, alert, event, decimals, since)
    return AlertMessage(
        event=event,
        project=alert.project,
        subject=alert.subject,
        kind=alert.kind,
        severity=alert.severity,
        title=heading,
        summary="\n".join(notes + _changes(criteria, evidence)),
        baseline=alert.baseline,
        value=alert.value,
        baseline_display=percent(alert.baseline, decimals),
        value_display=percent(alert.value, decimals),
        low=low,
        low_at=low_at,
        low_display=percent(low, decimals) if low is not None else "",
        notes=notes,
        criteria=criteria,
        evidence=evidence,
        snapshot_id=snapshot_id,
        started_at=alert.started_at,
        ended_at=now if event == "resolved" else None,
        fingerprint=alert.fingerprint,
        links=list(dict.fromkeys(e.url for e in evidence if e.url)),
    )


def _low(alert: Alert) -> tuple[float | None, datetime | None]:
    """The lowest figure the alert saw, and when (an alert stored before lows were kept: its latest figure)."""
    if alert.low is not None:
        return alert.low, alert.low_at
    return alert.value, None


def _notes(heading: str, alert: Alert, event: EventKind, decimals: int, since: datetime | None) -> list[str]:
    """The summary's lines above its criteria and evidence: what happened, in a sentence or three."""
    lines = [heading + "."]
    if alert.kind == "regression" and event != "resolved" and alert.baseline is not None and alert.value is not None:
        lines.append(f"A drop of {display(alert.baseline - alert.value, decimals)} points since {rfc3339(alert.started_at.replace(microsecond=0))}.")
    if alert.kind == "source_failing" and event != "resolved":
        lines.append(f"Failing since {rfc3339((since or alert.started_at).replace(microsecond=0))}; its criteria keep their last score until their max_age.")
    low, low_at = _low(alert)
    if event == "resolved" and alert.kind != "source_failing" and low is not None and alert.value is not None:
        when = f" on {rfc3339(low_at.replace(microsecond=0))}" if low_at is not None else ""
        lines.append(f"It fell as low as {percent(low, decimals)}{when} and recovered to {percent(alert.value, decimals)}.")
    return lines


def _changes(criteria: list[CriterionChange], evidence: list[EvidenceChange]) -> list[str]:
    lines = []
    if criteria:
        lines.append("Criteria that moved:")
        lines += [f"- {c.title} ({c.pillar}): {_criterion_side(c.before, c.status_before)} → {_criterion_side(c.after, c.status_after)}"
                  for c in criteria]
    if evidence:
        lines.append("Evidence that changed:")
        lines += [f"- {e.description}" + (f" <{e.url}>" if e.url else "") for e in evidence]
    return lines


def _criterion_side(score: float | None, status: str | None) -> str:
    shown = display(score, 2)
    return shown if status in ("ok", None) else f"{shown} ({status})"
