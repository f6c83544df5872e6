"""The `pillarwatch` command: a thin layer over the library.

Each command loads the configuration, opens the store, calls one library
function and prints the result (a table, or JSON with ``--json``). A
:class:`PillarwatchError` becomes one line on stderr and exit status 2 here,
and only here. Exit statuses: 0 success, 1 a finding (a figure that disagrees,
an overall below ``--fail-under``), 2 bad usage, configuration or input.

Over 400 lines: the whole command line is here, as in sqlite-utils' cli.py;
each command is a few lines of options and one library call, and reads best
beside the others. What a command computes lives in the library.
Commands that need a heavy part (the web server, Celery, the daemon, git
history, collecting, rich's tables, the report) import it in their own body, so
that every other command starts fast: `status --json` loads the configuration's
models, the store and the snapshot, and little else (see bench/bench_startup.py).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pydantic_core
import typer
from pydantic import ValidationError

from collectors.evidence import SourceFault
from collectors.secrets import one_line
from daemon import __version__, queries
from daemon.config.loading import load_config, load_worker_settings
from daemon.config.model import Config, Project
from daemon.errors import ConfigError, InputError, PillarwatchError, StoreError
from daemon.gcpause import kept_for_the_process
from daemon.scoring.arithmetic import display
from daemon.store import DatabaseError, Store

if TYPE_CHECKING:
    from daemon.run.executor import Progress
    from daemon.scoring.snapshot import Snapshot
    from daemon.terminal import TerminalConsole

app = typer.Typer(
    name="pillarwatch",
    help="Keeps a target-architecture progress snapshot true by itself: evidence in, scores out, history kept.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class _Console:
    """A :class:`~daemon.terminal.TerminalConsole` made on first use: a command that prints JSON never loads rich."""

    def __init__(self, **options: Any):
        self._options, self._console = options, None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from daemon.terminal import TerminalConsole  # rich loads with the first line drawn: start-up time

            self._console: TerminalConsole | None = TerminalConsole(**self._options)
        return getattr(self._console, name)


out = _Console(highlight=False, soft_wrap=True)
err = _Console(stderr=True, highlight=False)

DEFAULT_CONFIG = "config/pillarwatch.yaml"

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="PILLARWATCH_CONFIG",
        help=f"Configuration file (default {DEFAULT_CONFIG}, or $PILLARWATCH_CONFIG).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProjectOption = Annotated[str | None, typer.Option("--project", "-p", help="Only this project (by id).")]


# A command is one short process that builds large, acyclic structures (a configuration and a snapshot
# of 10,000 criteria are a few hundred thousand objects each): with the default thresholds the cycle
# collector traversed them again and again, half of `report`'s time. Commands collect rarely; the
# long-running ones (daemon, serve, worker) go back to the defaults.
_GC_DEFAULTS = gc.get_threshold()
_COMMAND_GC = (100_000, 10, 10)


def _long_running() -> None:
    gc.set_threshold(*_GC_DEFAULTS)


def _config(path: Path) -> Config:
    with kept_for_the_process():  # a command's configuration lives until it exits
        return load_config(path)


def _projects(config: Config, project: str | None) -> list[Project]:
    return [config.project(project)] if project else list(config.projects)


def _print_json(value: Any) -> None:
    text = pydantic_core.to_json(value, indent=2) + b"\n"
    binary = getattr(sys.stdout, "buffer", None)
    if binary is None:  # a text stream only (output captured in a test or a benchmark)
        sys.stdout.write(text.decode())
        return
    sys.stdout.flush()
    binary.write(text)  # the bytes as they are: 17 MB at 10,000 criteria, not decoded and encoded again
    binary.flush()


def _json_text(value: Any) -> str:
    """Indented JSON of plain values or models, by pydantic's serialiser in Rust.

    The standard library's encoder runs in Python as soon as it indents: 3.4 s
    for the 14 MB of a 10,000-criteria snapshot, against 0.1 s here.
    """
    return pydantic_core.to_json(value, indent=2).decode() + "\n"


def _latest(config: Config, project: str | None) -> tuple[Snapshot, Project]:
    chosen = queries.choose_project(config, project)
    with Store.open(config.store_path, readonly=True) as store, kept_for_the_process():  # read once, kept
        return queries.latest(store, chosen), chosen


@app.command()
def check(config: ConfigOption = Path(DEFAULT_CONFIG), as_json: JsonOption = False) -> None:
    """Validate the configuration; errors name the file, line and field."""
    cfg = _config(config)
    summary = [
        {"id": p.id, "sources": len(p.sources), "pillars": len(p.expanded_pillars),
         "criteria": sum(len(x.criteria) for x in p.expanded_pillars), "rules_hash": p.rules_hash()}
        for p in cfg.projects
    ]
    if as_json:
        _print_json({"config": str(config), "ok": True, "projects": summary})
        return
    for s in summary:
        out.print(f"{config}: ok: project {s['id']}: {s['sources']} sources, {s['pillars']} pillars, {s['criteria']} criteria (rules {s['rules_hash']})")


@app.command()
def collect(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Score with the current rules without storing anything.")] = False,
    fail_under: Annotated[float | None, typer.Option("--fail-under", help="Exit 1 when an overall % is below this.", min=0, max=100)] = None,
    as_json: JsonOption = False,
) -> None:
    """Collect every source once, score, store a snapshot and print the summary."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time
    from daemon.run.record import deliver_pending  # collecting loads only for the commands that collect: start-up time
    from daemon.run.runner import run_projects

    cfg = _config(config)
    projects = _projects(cfg, project)
    if dry_run:
        store = Store.open(cfg.store_path, readonly=True) if cfg.store_path.exists() else None
    else:
        store = Store.open(cfg.store_path)
    try:
        with _progress(sum(len(p.sources) for p in projects), quiet=as_json) as progress:
            snapshots = run_projects(cfg, projects, store=store, save=not dry_run, progress=progress)
        # The collection is over, so its groups are complete: sent now, not after their group_wait.
        delivery = None if dry_run else deliver_pending(store, cfg, now=datetime.now(timezone.utc), flush=True)
    finally:
        if store is not None:
            store.close()
    if as_json:
        _print_json(snapshots if len(snapshots) > 1 else snapshots[0])
    else:
        for s in snapshots:
            out.print(terminal.snapshot_summary(s, cfg.display.decimals))
        if dry_run:
            out.print("dry run: nothing was stored")
        else:
            out.print(f"stored in {cfg.store_path}")
        if delivery is not None and delivery.total:
            done = ", ".join(f"{n} {what}" for what, n in delivery.counts().items() if n)
            out.print(f"alert messages: {done} (pillarwatch alerts shows them)")
    if fail_under is not None:
        below = [s for s in snapshots if s.overall is None or s.overall < fail_under]
        for s in below:
            err.print(f"pillarwatch: {s.project}: overall {display(s.overall, 2)}% is below --fail-under {fail_under:g}")
        if below:
            raise typer.Exit(1)


@contextmanager
def _progress(total: int | None, *, quiet: bool, label: str = "collecting") -> Iterator[Progress | None]:
    """A progress bar on a terminal for long work (a handful of steps or more; None: not known yet)."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time

    if quiet or not err.is_terminal or (total is not None and total < 5):
        yield None
        return
    from rich.progress import Progress as RichProgress  # the progress bar loads only when one is drawn: start-up time
    from rich.progress import TextColumn

    with RichProgress(*RichProgress.get_default_columns(), TextColumn("{task.fields[last]}"), console=err, transient=True) as bar:
        task = bar.add_task(label, total=total, last="")
        # TextColumn reads markup without the console's render_str: escape here.
        yield lambda what, done, steps: bar.update(task, completed=done, total=steps,
                                                   last=terminal.escape(terminal.terminal_text(what)))


@app.command()
def status(config: ConfigOption = Path(DEFAULT_CONFIG), project: ProjectOption = None, as_json: JsonOption = False) -> None:
    """The latest snapshot: overall, pillars, criteria."""
    cfg = _config(config)
    snapshot, _ = _latest(cfg, project)
    if as_json:
        _print_json(snapshot)
    else:
        from daemon import terminal  # rich and the views load only when a table is drawn: start-up time

        out.print(terminal.snapshot_detail(snapshot, cfg.display.decimals))


@app.command()
def report(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    format: Annotated[str, typer.Option("--format", "-f", help="markdown, json or html (the dashboard page as one self-contained file).")] = "markdown",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """The full progress snapshot document, with what is missing next."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time

    if format not in ("markdown", "json", "html"):
        raise InputError(f"--format {format!r}: use markdown, json or html")
    from daemon.web.report import TRUST_LIMIT, build_report, render_markdown, report_json  # only here: start-up time

    cfg = _config(config)
    snapshot, chosen = _latest(cfg, project)
    if format == "html":
        from daemon.web import dashboard  # Jinja2 is loaded only by the commands that render HTML

        with Store.open(cfg.store_path, readonly=True) as store:
            text = dashboard.page(store, cfg, chosen.id, standalone=True, snapshot=snapshot)
    else:
        with Store.open(cfg.store_path, readonly=True) as store:
            trust = queries.calibration(store, chosen, limit=TRUST_LIMIT)
        built = build_report(snapshot, decimals=cfg.display.decimals, trust=trust)
        text = (
            _json_text(report_json(built))
            if format == "json"
            else render_markdown(built, title=chosen.title)
        )
    if output:
        output.write_text(text, encoding="utf-8")
    elif format == "markdown":  # the document's own line breaks stay; control characters in its text are shown escaped
        sys.stdout.write("\n".join(terminal.terminal_text(line) for line in text.split("\n")))
    else:
        sys.stdout.write(text)


@app.command()
def explain(
    criterion: Annotated[str, typer.Argument(help="A criterion id, or PILLAR/CRITERION when ids repeat.")],
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """The evidence behind one criterion's score."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time

    cfg = _config(config)
    snapshot, _ = _latest(cfg, project)
    found = queries.explain(snapshot, criterion)
    if as_json:
        _print_json(found.to_json())
    else:
        out.print(terminal.explanation(snapshot.pillar(found.pillar), found.criterion, snapshot))


def _moment(value: str | None, option: str) -> datetime | None:
    # The API's parser: a value means the same on both.
    return queries.parse_moment(value, option, now=datetime.now(timezone.utc))


@app.command()
def history(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    pillar: Annotated[str | None, typer.Option("--pillar", help="Only this pillar.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this date or time, or this long ago (7d).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this date or time.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many snapshots, the newest.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """The series of snapshots: a sparkline per pillar, first and last figures, low and high."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time

    cfg = _config(config)
    chosen = queries.choose_project(cfg, project)
    with Store.open(cfg.store_path, readonly=True) as store:
        found = queries.history(store, chosen, pillar=pillar, since=_moment(since, "--since"),
                                until=_moment(until, "--until"), limit=limit)
    if as_json:
        _print_json(found.model_dump(mode="json"))
    else:
        out.print(terminal.history_view(found, cfg.display.decimals))


@app.command()
def diff(
    a: Annotated[int | None, typer.Argument(help="The earlier snapshot id (default: the one before B).")] = None,
    b: Annotated[int | None, typer.Argument(help="The later snapshot id (default: the latest).")] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    snapshot_file: Annotated[Path | None, typer.Option("--snapshot-file", help="B is the snapshot in this file, as `collect --dry-run --json` printed it, never stored; A defaults to the latest stored.")] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="text, markdown (a pull-request comment) or json.")] = "text",
    as_json: JsonOption = False,
) -> None:
    """What changed between two snapshots: pillars and criteria that moved, and the evidence behind them."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time
    from daemon.changes import diff as diff_of  # the wording of changes loads only for diff: start-up time

    if format not in ("text", "markdown", "json"):
        raise InputError(f"--format {format!r}: use text, markdown or json")
    if snapshot_file is not None and b is not None:
        raise InputError("--snapshot-file is snapshot B: give at most snapshot A as an argument")
    cfg = _config(config)
    with Store.open(cfg.store_path, readonly=True) as store:
        # With both ids given, the snapshots say which project they belong to.
        chosen = None if a is not None and b is not None else queries.choose_project(cfg, project)
        if chosen is None:
            first, second = store.get(a), store.get(b)  # type: ignore[arg-type]
            known = {p.id: p for p in cfg.projects}.get(second.project)
            found = diff_of(first, second, blame=queries.commit_blame(cfg, known) if known else None)
        elif snapshot_file is not None:
            first = store.get(a) if a is not None else queries.latest(store, chosen)
            found = diff_of(first, _snapshot_in(snapshot_file, chosen.id), blame=queries.commit_blame(cfg, chosen))
        else:
            found = queries.diff_latest(store, chosen, a, b, blame=queries.commit_blame(cfg, chosen))
    if as_json or format == "json":
        _print_json(found.model_dump(mode="json"))
    elif format == "markdown":
        from daemon.changes import diff_markdown  # the wording of changes loads only for diff: start-up time

        sys.stdout.write(diff_markdown(found, cfg.display.decimals))
    else:
        out.print(terminal.diff_view(found, cfg.display.decimals))


def _snapshot_in(path: Path, project: str) -> Snapshot:
    """The snapshot of ``project`` in a file `collect --json` wrote (one snapshot, or a list of them)."""
    from daemon.scoring.snapshot import Snapshot  # read only for diff --snapshot-file: start-up time

    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--snapshot-file {path}: cannot read it: {exc.strerror}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"--snapshot-file {path}: not JSON: {one_line(str(exc))}") from None
    mine = [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, dict) and s.get("project") == project]
    if not mine:
        raise InputError(f"--snapshot-file {path}: no snapshot of project {project!r} in it (write it with `collect --json`)")
    try:
        return Snapshot.model_validate(mine[0])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise InputError(f"--snapshot-file {path}: not a snapshot: {where}: {first['msg']}") from None


@app.command()
def backfill(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    since: Annotated[str | None, typer.Option("--since", help="Score every commit since this date or time, or this long ago (90d).")] = None,
    commits: Annotated[int | None, typer.Option("--commits", min=1, help="Score the last N commits.")] = None,
    source: Annotated[str | None, typer.Option("--source", help="The git source whose history sets the timeline (default: the first).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Score past commits of the project's git history and store them as backfilled snapshots."""
    from daemon.run.backfill import backfill as run_backfill  # git history reading loads only for backfill

    cfg = _config(config)
    reports = []
    with Store.open(cfg.store_path) as store:
        for chosen in _projects(cfg, project):
            with _progress(None, quiet=as_json, label=f"backfilling {chosen.id}") as progress:
                reports.append(run_backfill(store, cfg, chosen, since=_moment(since, "--since"), commits=commits,
                                            source_id=source, progress=progress))
    if as_json:
        _print_json([r.model_dump(mode="json") for r in reports])
        return
    for r in reports:
        span = f" ({r.first:%Y-%m-%d} … {r.last:%Y-%m-%d})" if r.first and r.last else ""
        out.print(f"{r.project}: {r.commits} commits of {r.source}{span}: {r.added} backfilled, {r.skipped} already there")


@app.command("import")
def import_documents(
    files: Annotated[list[Path] | None, typer.Argument(help="Hand-written progress documents (Markdown or copied text).")] = None,
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    from_git: Annotated[Path | None, typer.Option("--from-git", help="A git repository: import every committed version of --path.")] = None,
    path: Annotated[str | None, typer.Option("--path", help="With --from-git: the document's path in the repository.")] = None,
    add_pillars: Annotated[bool, typer.Option("--add-pillars", help="Take pillars the project does not have (refused otherwise).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Import hand-written progress documents into the history as imported snapshots, with their verification."""
    from collectors import git, git_history  # git history: loaded only by this command, for start-up time
    from collectors.markdown import MAX_DOCUMENT_BYTES
    from daemon.run.importer import import_text

    if bool(from_git) != bool(path):
        raise InputError("--from-git and --path go together")
    if not files and not from_git:
        raise InputError("name documents to import, or --from-git PATH --path FILE")
    cfg = _config(config)
    chosen = queries.choose_project(cfg, project)
    now = datetime.now(timezone.utc)
    outcomes = []
    with Store.open(cfg.store_path) as store:
        for file in files or []:
            text = _read_document(file)
            changed = git_history.last_change(file)
            outcomes.append(import_text(store, chosen, text, path=str(file), now=now, add_pillars=add_pillars,
                                        commit=changed[0] if changed else None, committed_at=changed[1] if changed else None))
        if from_git and path:
            source = git.GitSource(id="import", path=str(from_git.resolve()), branch="HEAD")
            try:
                versions = git_history.file_versions(source, path, cache_dir=cfg.cache_path)
                with _progress(len(versions), quiet=as_json, label="importing") as progress:
                    for n, (sha, when) in enumerate(versions, 1):
                        text, _ = git.read_text(source, path, cache_dir=cfg.cache_path, commit=sha, strict=True,
                                                max_bytes=MAX_DOCUMENT_BYTES)
                        outcomes.append(import_text(store, chosen, text, path=path, now=now, commit=sha, committed_at=when,
                                                    add_pillars=add_pillars))
                        if progress:
                            progress(sha[:7], n, len(versions))
            except SourceFault as fault:
                raise InputError(f"{from_git}: {fault.error.message}") from None
    if as_json:
        _print_json([o.model_dump(mode="json") for o in outcomes])
        return
    for o in outcomes:
        where = o.path + (f" at {o.commit[:7]}" if o.commit else "")
        if o.snapshot is None:
            out.print(f"{where}: imported before, skipped")
            continue
        found = f"; [yellow]{len(o.disagreements)} figure(s) disagree[/]: " + "; ".join(o.disagreements) if o.disagreements else ""
        out.print(f"{where}: snapshot #{o.snapshot} of {o.taken_at:%Y-%m-%d}, overall {display(o.overall, cfg.display.decimals)}%{found}")


def _read_document(file: Path) -> str:
    """A progress document from disk: a regular UTF-8 file within the document size limit."""
    from collectors.markdown import read_document  # loaded only by the commands that read documents

    try:
        return read_document(str(file))
    except SourceFault as fault:
        raise InputError(fault.error.message) from None


@app.command()
def init(
    repo: Annotated[Path, typer.Option("--repo", help="The git repository to draft checks from (read at HEAD).")],
    from_doc: Annotated[Path | None, typer.Option("--from-doc", help="A hand-written progress snapshot: its pillars, criteria and scores.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The configuration file to write.")] = Path(DEFAULT_CONFIG),
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file if it exists.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write a starting configuration: pillars and criteria from a document (or the four example pillars), checks drafted from the repository."""
    from daemon.run.initialise import initialise  # the drafting loads only for this command

    with _progress(None, quiet=as_json, label="reading the repository") as progress:
        outcome = initialise(repo, output, document=from_doc, force=force, now=datetime.now(timezone.utc), progress=progress)
    if as_json:
        _print_json(outcome.model_dump(mode="json"))
        return
    criteria = [c for p in outcome.pillars for c in p.criteria]
    out.print(f"{outcome.config}: project {outcome.project}: {len(outcome.pillars)} pillars, {len(criteria)} criteria, "
              f"{sum(len(c.checks) for c in criteria)} drafted checks (the repository at {outcome.commit[:7]})", markup=False)
    if outcome.imported is not None:
        done = (f"imported as snapshot #{outcome.imported.snapshot}" if outcome.imported.snapshot is not None
                else "imported before, kept")
        out.print(f"{outcome.imported.path}: the team's judgment of {outcome.imported.taken_at:%Y-%m-%d}: {done}", markup=False)
    if outcome.not_imported:
        err.print(f"pillarwatch: warning: scores not imported: {outcome.not_imported}", markup=False, soft_wrap=True)
    out.print(f"next: pillarwatch check --config {outcome.config}", markup=False)


@app.command()
def calibrate(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    write: Annotated[bool, typer.Option("--write", help="Apply the suggested transforms to the configuration file.")] = False,
    fail_on: Annotated[str | None, typer.Option("--fail-on", help="Exit 1 when a rule has one of these verdicts (dead,saturated,constant,disagrees).")] = None,
    tolerance: Annotated[float, typer.Option("--tolerance", min=0, max=1, help="The mean error up to which a rule agrees with the team.")] = 0.15,
    as_json: JsonOption = False,
) -> None:
    """How far to trust each rule: dead, saturated or constant, and its error against the team's own scores."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time
    from daemon.run.calibrate import calibrate as run_calibrate  # git history reading loads only here
    from daemon.scoring.calibrate import VERDICTS

    failing = [v.strip() for v in (fail_on or "").split(",") if v.strip()]
    if unknown := [v for v in failing if v not in VERDICTS]:
        raise InputError(f"--fail-on {','.join(unknown)}: not a verdict (use {', '.join(VERDICTS)})")
    cfg = _config(config)
    chosen = queries.choose_project(cfg, project)
    with Store.open(cfg.store_path) as store, _progress(None, quiet=as_json, label="backfilling judged commits") as progress:
        done = run_calibrate(store, cfg, chosen, tolerance=tolerance, write=write, progress=progress)
    if as_json:
        _print_json(done.model_dump(mode="json"))
    else:
        out.print(terminal.calibration_view(done.calibration, done.patch, written=done.written))
    if any(v in failing for c in done.calibration.criteria for v in c.verdicts):
        raise typer.Exit(1)


@app.command()
def prune(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be removed without removing it.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Thin old snapshots by the `retention:` tiers; never the latest, nor one an open alert refers to."""
    cfg = _config(config)
    projects = _projects(cfg, project)
    if not dry_run and not cfg.store_path.exists():
        raise StoreError(f"{cfg.store_path}: no database yet (run `pillarwatch collect` first)")
    now = datetime.now(timezone.utc)
    with Store.open(cfg.store_path, readonly=dry_run) as store:
        results = [store.prune(p.id, cfg.retention, now=now, dry_run=dry_run).to_json(cfg.retention) for p in projects]
    if as_json:
        _print_json({"dry_run": dry_run, "projects": results})
        return
    for r in results:
        out.print(f"{r['project']}: {r['snapshots']} snapshots: {r['kept']} kept, {r['removed']} {'to remove' if dry_run else 'removed'}")
        for tier, t in r["tiers"].items():
            if t["kept"] or t["removed"]:
                out.print(f"  {tier:<9} {t['ages']:<12} {t['kept']:>6} kept {t['removed']:>6} {'to remove' if dry_run else 'removed'}")
        if r["pinned"]:
            out.print("  kept although their tier would drop them (the latest, or an open alert refers to them): "
                      + ", ".join(f"#{i}" for i in r["pinned"]))
        if r["deleted"] and r["deleted"]["snapshots"]:
            out.print(f"  deleted {r['deleted']['snapshots']} snapshot(s) and {r['deleted']['evidence']} evidence row(s) no snapshot uses")
    if dry_run:
        out.print("dry run: nothing was removed")


@app.command("verify-doc")
def verify_doc(
    file: Annotated[Path, typer.Argument(help="A hand-written progress snapshot (Markdown or copied text).")],
    as_json: JsonOption = False,
) -> None:
    """Recompute a hand-written progress document; exit 1 if any figure disagrees."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time
    from daemon.run.progress_doc import parse_progress_document, verify  # loaded only by this command: start-up time

    text = _read_document(file)
    try:
        result = verify(parse_progress_document(text))
    except InputError as exc:
        raise InputError(f"{file}: {exc}") from None
    if as_json:
        _print_json({"file": str(file), **result.model_dump(mode="json")})
    else:
        out.print(terminal.verification(result, str(file)))
    if not result.ok:
        raise typer.Exit(1)


LogLevelOption = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
HostOption = Annotated[str | None, typer.Option("--host", help="Serve the API on this address (default: api.host, 127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Serve the API on this port (default: api.port, 8477).")]


def _service_logging(log_level: str) -> None:
    """Timestamped log lines on stderr for the long-running commands."""
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter(f"{log_level!r}: use debug, info, warning or error", param_hint="--log-level")
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,  # replaces the one-line format main() set up for the other commands
    )
    # The daemon logs missed and skipped runs itself; httpx would log URLs, which may hold tokens.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)


@app.command("daemon")
def run_daemon(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    log_level: LogLevelOption = "info",
    no_api: Annotated[bool, typer.Option("--no-api", help="Do not serve the HTTP API.")] = False,
    host: HostOption = None,
    port: PortOption = None,
) -> None:
    """Run the scheduler (and the HTTP API) in the foreground until SIGTERM or SIGINT; SIGHUP reloads the configuration."""
    _long_running()
    from daemon.service import Daemon  # the daemon's parts load only for this command

    _service_logging(log_level)
    service = Daemon(config, api=not no_api, host=host, port=port, access_log=log_level.lower() == "debug")
    # Handlers only set flags: the daemon's own loop acts on them.
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    signal.signal(signal.SIGHUP, lambda *_: service.request_reload())
    raise typer.Exit(service.run_until_stopped())


@app.command()
def serve(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    host: HostOption = None,
    port: PortOption = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Serve the read-only HTTP API alone, in the foreground, until SIGTERM or SIGINT; SIGHUP reloads the configuration."""
    _long_running()
    from daemon.web.api import api_token  # FastAPI loads only for this command
    from daemon.web.server import ApiServer

    _service_logging(log_level)
    log = logging.getLogger("pillarwatch.api")
    current = [_config(config)]

    def reload(*_: object) -> None:
        try:
            new = _config(config)
            api_token(new)  # a token that cannot be read would lock every reader out
        except PillarwatchError as exc:
            log.error("reload failed, keeping the running configuration: %s", str(exc).replace("\n", "; "))
        else:
            current[0] = new
            log.info("reloaded %s", config)

    server = ApiServer(lambda: current[0], host=host or current[0].api.host, port=port or current[0].api.port,
                       access_log=log_level.lower() == "debug")
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    signal.signal(signal.SIGHUP, reload)
    log.info("API on %s", server.url)
    server.serve()


@app.command()
def worker(
    config: ConfigOption = Path(DEFAULT_CONFIG),
    queues: Annotated[str | None, typer.Option("--queues", "-Q", help="Comma-separated queues to consume (default: celery.default_queue).")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, max=256, help="Worker processes (default: the number of CPUs).")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", envvar="PILLARWATCH_CACHE_DIR", help="This worker's git mirrors and HTTP cache (default: cache_dir of the configuration, or .pillarwatch/mirrors beside it).")] = None,
    log_level: LogLevelOption = "info",
) -> None:
    """Run a Celery worker for `executor: celery`: collect the sources the daemon sends, in the foreground until SIGTERM."""
    _long_running()
    from daemon.run.tasks import WorkerOptions, celery_app, configure_worker  # Celery loads only for the worker

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        raise typer.BadParameter(f"{log_level!r}: use debug, info, warning or error", param_hint="--log-level")
    settings, partial = load_worker_settings(config)
    chosen = [q.strip() for q in (queues or settings.default_queue).split(",") if q.strip()]
    if not chosen:
        raise typer.BadParameter("name at least one queue", param_hint="--queues")
    known = settings.all_queues
    if settings.queues and (unknown := [q for q in chosen if q not in known]):
        raise ConfigError([f"--queues: no queue {', '.join(map(repr, unknown))} in celery.queues (have: {', '.join(known)})"])
    configure_worker(WorkerOptions(cache_dir=(cache_dir.resolve() if cache_dir else partial.cache_path),
                                   allow_commands=partial.allow_commands))
    argv = ["worker", f"--queues={','.join(chosen)}", f"--loglevel={log_level.upper()}", "--without-gossip", "--without-mingle",
            f"--hostname=pillarwatch-{os.getpid()}@{socket.gethostname()}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    celery_app(settings).worker_main(argv)


alerts_app = typer.Typer(help="Alerts and the delivery state of each of their messages.", no_args_is_help=False,
                         add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback(invoke_without_command=True)
def alerts(
    ctx: typer.Context,
    config: ConfigOption = Path(DEFAULT_CONFIG),
    project: ProjectOption = None,
    state: Annotated[str | None, typer.Option("--state", help="pending, firing or resolved.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Alerts and the delivery state of each of their messages, and the channels a 410 switched off."""
    from daemon import terminal  # rich and the views load only in the commands that draw them: start-up time

    if ctx.invoked_subcommand is not None:
        return
    cfg = _config(config)
    if project:
        cfg.project(project)
    with Store.open(cfg.store_path, readonly=True) as store:
        result = queries.alerts(store, project=project, state=state, limit=limit)
    if as_json:
        _print_json(result)
    else:
        out.print(terminal.alerts_view(result, cfg.display.decimals))


@alerts_app.command("enable")
def alerts_enable(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="The channel id, as in the configuration's channels.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="PILLARWATCH_CONFIG",
                                                   help=f"Configuration file (default {DEFAULT_CONFIG}).",
                                                   show_default=False)] = None,
) -> None:
    """Switch a channel that answered HTTP 410 back on: later messages are sent to it again."""
    cfg = _config(config or (ctx.parent.params.get("config") if ctx.parent else None) or Path(DEFAULT_CONFIG))
    with Store.open(cfg.store_path) as store:
        enabled = queries.enable_channel(store, cfg, channel)
    out.print(f"channel {channel}: enabled" if enabled else f"channel {channel}: already enabled", markup=False)


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False) -> None:
    if version:
        out.print(f"pillarwatch {__version__}")
        raise typer.Exit(0)


def main() -> None:
    """Console entry point: library errors become one line and exit status 2."""
    # Warnings (a delivery to retry, a source to skip) go to stderr as one line each.
    logging.basicConfig(level=logging.WARNING, format="pillarwatch: %(levelname)s: %(message)s", stream=sys.stderr)
    gc.set_threshold(*_COMMAND_GC)
    try:
        code = app(prog_name="pillarwatch", standalone_mode=False)
    except ConfigError as exc:
        # Each problem already names its file, line and field.
        for problem in exc.problems:
            err.print(problem, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except PillarwatchError as exc:
        err.print(f"pillarwatch: error: {exc}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except DatabaseError as exc:
        # The database refused a write (a full disk) or a read: the transaction was rolled back whole.
        err.print(f"pillarwatch: error: database: {' '.join(str(exc).split())}", markup=False, soft_wrap=True)
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):  # typer.Abort: Ctrl-C at a prompt
        sys.exit(130)
    except Exception as exc:
        # The command line parser's errors (click's, vendored by recent typer: matched by shape). Its
        # own form is three lines (usage, hint, error); one line names the command and the fault.
        if not callable(getattr(exc, "format_message", None)) or not isinstance(getattr(exc, "exit_code", None), int):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # `pillarwatch` alone: the help, as click prints it
            err.print(exc.format_message(), markup=False, highlight=False)
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        hint = " (see --help)" if ctx is not None else ""
        err.print(f"pillarwatch: error: {where}{one_line(exc.format_message())}{hint}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    # Without standalone mode, click returns the exit status of `typer.Exit` (None when a command just ends).
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
