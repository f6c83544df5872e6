"""Terminal renderings (rich) of snapshots, explanations and verifications.

Everything here is a string of rich markup (or a table or group of them), and
data inside markup is escaped with :func:`_esc`. Every string reaches the
terminal through :class:`TerminalConsole`, which shows control characters
(from file names, titles, messages) escaped instead of sending them raw.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from collectors.evidence import Evidence, evidence_key
from daemon.changes import SnapshotDiff
from daemon.queries import Calibration, History
from daemon.scoring.arithmetic import display, display_change
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot

if TYPE_CHECKING:  # verify-doc's parser (markdown-it) loads only for that command: start-up time
    from daemon.run.progress_doc import Verification

# C0 controls, DEL and C1 controls (0x9b is CSI to some terminals).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """`text` with every control character shown as its Python escape (``\\x1b``, ``\\r``, ``\\n``)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


class TerminalConsole(Console):
    """A console that never writes a control character it was given as text: the one place they are escaped."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(terminal_text(text), **kwargs)


def _esc(value: object) -> str:
    """Data placed in markup: shown as it is, never read as markup."""
    return escape(str(value))


_STATUS_STYLE = {"ok": "green", "stale": "yellow", "unknown": "red", "manual": "cyan", "not_applicable": "dim"}


def _percent(value: float | None, decimals: int) -> str:
    return display(value, decimals, suffix="%")


def _change(change: float, decimals: int) -> str:
    """Signed and coloured by the figure shown, so a change that rounds to 0 is neither green nor red."""
    shown = display_change(change, decimals)
    colour = "green" if shown.startswith("+") else "red" if shown.startswith("-") else "dim"
    return f"[{colour}]{shown}[/]"


def snapshot_summary(snapshot: Snapshot, decimals: int) -> RenderableType:
    """Overall and one line per pillar: what `collect` prints."""
    state = "complete" if snapshot.complete else "[yellow]partial[/]"
    repeat = f", unchanged since {snapshot.taken_at:%Y-%m-%d %H:%M}Z" if snapshot.last_seen_at else ""
    table = Table(
        title=f"{_esc(snapshot.project)}: overall {_percent(snapshot.overall, decimals)} ({state}, snapshot #{snapshot.id if snapshot.id is not None else '-'}{repeat})",
        title_justify="left",
    )
    table.add_column("pillar")
    table.add_column("score", justify="right")
    table.add_column("coverage", justify="right")
    table.add_column("criteria")
    for pillar in snapshot.pillars:
        counts: dict[str, int] = {}
        for c in pillar.criteria:
            counts[c.status] = counts.get(c.status, 0) + 1
        table.add_row(
            _esc(pillar.title),
            _percent(pillar.score, decimals),
            _percent(pillar.coverage * 100, 0),
            ", ".join(f"[{_STATUS_STYLE[k]}]{n} {k}[/]" for k, n in sorted(counts.items())),
        )
    failing: list[RenderableType] = [
        f"[yellow]source {_esc(s.id)} did not answer" + (f" ({s.error.kind}): {_esc(s.error.message)}" if s.error else "") + "[/]"
        for s in snapshot.sources
        if not s.answered
    ]
    return Group(table, *failing) if failing else table


def snapshot_detail(snapshot: Snapshot, decimals: int) -> RenderableType:
    """The summary plus every criterion with its status and why: what `status` prints."""
    return Group(snapshot_summary(snapshot, decimals), *(_pillar_table(p, decimals) for p in snapshot.pillars))


def _pillar_table(pillar: PillarScore, decimals: int) -> Table:
    table = Table(title=f"{_esc(pillar.title)}: {_percent(pillar.score, decimals)}", title_justify="left", show_edge=False)
    table.add_column("criterion")
    table.add_column("score", justify="right")
    table.add_column("status")
    table.add_column("why", overflow="fold")
    for c in pillar.criteria:
        table.add_row(
            f"{_esc(c.title)} [dim]({_esc(pillar.id)}/{_esc(c.id)})[/]",
            f"{c.score:.2f}" if c.score is not None else "–",
            f"[{_STATUS_STYLE[c.status]}]{c.status}[/]",
            _esc(c.reason or ""),
        )
    return table


def provenance(evidence: Evidence) -> str:
    p = evidence.provenance
    parts = []
    if p.commit:
        parts.append(p.commit[:12])
    if p.path:
        parts.append(p.path + (f":{p.line}" if p.line else ""))
    if p.url:
        parts.append(p.url)
    return " ".join(parts)


def explanation(pillar: PillarScore, criterion: CriterionScore, snapshot: Snapshot) -> RenderableType:
    head = Group(
        f"[bold]{_esc(criterion.title)}[/] ({_esc(pillar.id)}/{_esc(criterion.id)}) in {_esc(snapshot.project)}, snapshot #{snapshot.id}",
        f"score {criterion.score if criterion.score is not None else '–'} · status [{_STATUS_STYLE[criterion.status]}]{criterion.status}[/]"
        + (f" · {_esc(criterion.reason)}" if criterion.reason else "")
        + (f" · last fresh score at {criterion.scored_at:%Y-%m-%d %H:%M}Z" if criterion.scored_at else ""),
    )
    if not criterion.checks:
        return head
    table = Table(show_edge=False)
    for column in ("check", "source", "value", "transform", "score", "evidence"):
        table.add_column(column, overflow="fold")
    by_key = {e.key: e for e in criterion.evidence}
    for check in criterion.checks:
        found = by_key.get(evidence_key(check.source, check.signal, check.params))
        params = ", ".join(f"{k}={v}" for k, v in check.params.items())
        table.add_row(
            _esc(f"{check.signal}({params}).{check.field}"),
            _esc(check.source),
            f"[red]{check.error.kind}[/]: {_esc(check.error.message)}" if check.error else _esc(_value(check.value)),
            _esc(check.transform),
            f"{check.score:.2f}" if check.score is not None else "–",
            _esc(provenance(found)) if found else "",
        )
    return Group(head, table, *_listed_cases(criterion))


def _listed_cases(criterion: CriterionScore) -> list[str]:
    """Each test case a `test_cases` evidence lists (a bounded list), as ``path:line name``."""
    lines = []
    for found in criterion.evidence:
        cases = (found.value or {}).get("cases") if found.signal == "test_cases" else None
        if cases:
            more = (found.value or {}).get("count", len(cases)) - len(cases)
            asked = ", ".join(f"{k}={v}" for k, v in found.params.items())
            lines.append(f"test cases of {_esc(found.source)}" + (f" ({_esc(asked)})" if asked else "")
                         + (f": the first {len(cases)}, {more} more" if more > 0 else ""))
            lines += [f"  {_esc(c['path'])}:{c['line']} {_esc(c['name'])}" for c in cases]
    return lines


def _value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def verification(result: Verification, path: str) -> RenderableType:
    table = Table(title=f"{_esc(path)}: {'every figure agrees' if result.ok else f'{len(result.disagreements)} figure(s) disagree'}", title_justify="left")
    for column in ("line", "figure", "claimed", "recomputed", ""):
        table.add_column(column)
    for f in result.figures:
        mark = "" if f.agrees is None else ("[green]ok[/]" if f.agrees else "[red]disagrees[/]")
        table.add_row(
            str(f.line or ""),
            _esc(f"{f.what}: {f.title}"),
            "–" if f.claimed is None else f"{f.claimed:g}%",
            f.computed_display,
            mark,
        )
    return table


def alerts_view(result: dict[str, Any], decimals: int) -> RenderableType:
    """One block per alert (the JSON of :func:`daemon.queries.alerts`): state, figures, each delivery."""
    alerts, backlog = result["alerts"], result["outbox"]
    queued = ", ".join(f"{n} {state}" for state, n in sorted(backlog.items())) or "nothing queued"
    blocks: list[RenderableType] = [f"[bold]alerts: {len(alerts)} shown; outbox: {_esc(queued)}[/]"]
    for c in result.get("disabled_channels", []):
        blocks.append(f"channel {_esc(c['channel'])}: [red]disabled[/] since {_minute(c['disabled_at'])}: "
                      + _esc(f"{c['reason']} (pillarwatch alerts enable {c['channel']})"))
    colour = {"firing": "red", "pending": "yellow", "resolved": "green"}
    for a in alerts:
        sent = a["deliveries"]
        state = f"[{colour.get(a['state'], 'default')}]{_esc(a['state'].upper())}[/]"
        head = f"#{a['id']} {state}" + _esc(f"  {a['project']} {a['subject']} ({a['kind']}, {a['severity']})  {sent[-1]['title'] if sent else ''}")
        when = f", started {_minute(a['started_at'])}" + (f", resolved {_minute(a['resolved_at'])}" if a["resolved_at"] else "")
        lines: list[RenderableType] = [head, f"    {_percent(a['baseline'], decimals)} → {_percent(a['value'], decimals)}{when}"]
        for d in sent:
            tries = f"{d['attempts']} attempt{'s' if d['attempts'] != 1 else ''}"
            style = {"delivered": "green", "dead": "red", "disabled": "red"}.get(d["state"], "yellow")
            error = f": {d['last_error']}" if d["last_error"] and d["state"] != "delivered" else ""
            lines.append(f"    {_esc(d['event'])} → {_esc(d['channel'])}: [{style}]{_esc(d['state'])}[/]" + _esc(f" ({tries}){error}"))
        blocks.append(Group(*lines))
    return Group(*blocks)


def _minute(stamp: str) -> str:
    """``2026-11-26T00:48:12Z`` as ``2026-11-26 00:48Z``."""
    return stamp[:16].replace("T", " ") + "Z"


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """One character per value on a fixed 0–100 scale (so lines compare); a gap is a space."""
    return "".join(" " if v is None else _BARS[min(len(_BARS) - 1, int(max(0.0, v) / 100 * len(_BARS)))] for v in values)


def history_view(history: History, decimals: int) -> RenderableType:
    """One row per pillar and the overall: a sparkline, first and last figure, low, high."""
    points = history.points
    span = f"{points[0].taken_at:%Y-%m-%d %H:%M}Z … {points[-1].taken_at:%Y-%m-%d %H:%M}Z" if points else "no snapshots"
    shown = f"{len(points)} of {history.total} snapshots" if history.total != len(points) else f"{len(points)} snapshots"
    table = Table(title=f"{_esc(history.project)}: {shown}, {span}", title_justify="left")
    for column, justify in (("", "left"), ("trend", "left"), ("first", "right"), ("last", "right"), ("change", "right"),
                            ("low", "right"), ("high", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    rows = [(title, [p.pillars.get(pid) for p in points]) for pid, title in history.pillar_titles.items()]
    if history.pillar is None:
        rows.append(("Overall", [p.overall for p in points]))
    for title, values in rows:
        known = [v for v in values if v is not None]
        change = known[-1] - known[0] if len(known) > 1 else None
        table.add_row(
            _esc(title), sparkline(values),
            _percent(known[0] if known else None, decimals), _percent(known[-1] if known else None, decimals),
            "–" if change is None else _change(change, decimals),
            _percent(min(known) if known else None, decimals), _percent(max(known) if known else None, decimals),
        )
    return table


def diff_view(d: SnapshotDiff, decimals: int) -> RenderableType:
    """Pillars and criteria that moved from A to B, and the evidence that changed."""
    later = "this run" if d.b is None else f"#{d.b}"  # B from `diff --snapshot-file` was never stored
    head = f"[bold]{_esc(d.project)}: snapshot #{d.a} ({d.a_taken_at:%Y-%m-%d %H:%M}Z) → {later} ({d.b_taken_at:%Y-%m-%d %H:%M}Z)[/]"
    lines: list[RenderableType] = [head]
    if d.rules_changed:
        lines.append("[yellow]the rules changed between the two (different rules hash)[/]")
    moves = [d.overall, *d.pillars] if d.overall.before != d.overall.after else d.pillars
    if not moves and not d.criteria and not d.evidence:
        lines.append("nothing changed")
    for m in moves:
        delta = "" if m.delta is None else f" ({display_change(m.delta, decimals)})"
        lines.append(_esc(f"{m.title}: {_percent(m.before, decimals)} → {_percent(m.after, decimals)}{delta}"))
    if d.criteria:
        lines.append("[bold]criteria:[/]")
        for c in d.criteria:
            before, after = display(c.before, 2), display(c.after, 2)
            status = f" [{c.status_before} → {c.status_after}]" if c.status_before != c.status_after else ""
            lines.append(_esc(f"  {c.pillar}/{c.criterion} {c.title}: {before} → {after}{status}"))
    if d.evidence:
        lines.append("[bold]evidence:[/]")
        for e in d.evidence:
            lines.append(_esc(f"  {e.source}: {e.description}" + (f" {e.url}" if e.url else "")))
    return Group(*lines)


_VERDICT_STYLE = {"dead": "red", "saturated": "yellow", "constant": "yellow", "disagrees": "red", "agrees": "green",
                  "unjudged": "dim", "no-data": "dim"}


def calibration_view(found: Calibration, patch: str = "", *, written: bool = False) -> RenderableType:
    """One row per rule (its verdict, how often at 1.0, its error against the team), then each in words."""
    table = Table(title=f"{_esc(found.project)}: how far to trust these scores (rules {found.rules_hash})", title_justify="left")
    table.add_column("criterion", overflow="fold")
    table.add_column("verdict", min_width=9)
    for name in ("commits", "at 1.0", "judged", "mean err", "max err"):
        table.add_column(name, justify="right")
    table.add_column("worst at", min_width=7)
    words: list[RenderableType] = []
    for c in found.criteria:
        a = c.agreement
        table.add_row(
            f"{_esc(c.pillar)}/{_esc(c.criterion)}", f"[{_VERDICT_STYLE[c.verdict]}]{c.verdict}[/]",
            str(c.commits), str(c.at_one), str(a.compared),
            f"{a.mean_error:.2f}" if a.mean_error is not None else "–",
            f"{a.max_error:.2f}" if a.max_error is not None else "–",
            a.worst_commit[:7] if a.worst_commit else "–",
        )
        said = c.findings + ([f"suggested: {c.suggestion.words}"] if c.suggestion else [])
        words.append(f"[bold]{_esc(c.pillar)}/{_esc(c.criterion)}[/] {_esc(c.title)}: " + _esc("; ".join(said)))
    parts: list[RenderableType] = [table, *words]
    if patch:
        parts.append("written: the rules changed (a new rules hash; alerting re-scores its baselines, no regression)"
                     if written else "suggested change (apply with --write):")
        parts.append(Text(patch.rstrip("\n")))
    return Group(*parts)
