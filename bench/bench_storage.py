"""Bytes per stored snapshot, unchanged and changed: the growth of the database file.

One project (one git source, the ten signals) is recorded over and over the
way a collection records it (:func:`daemon.run.record.record` after saving the
source's result). *Unchanged*: the same evidence every time, fifteen minutes
apart: a cheap repeat. *Changed*: every time a new commit (so every fact's
provenance changes) and one changed value. The file is measured after a
``PRAGMA wal_checkpoint(TRUNCATE)``, before and after a batch, and the growth
divided by the batch. The daemon also logs each source run in ``source_runs``
(for its schedule); that cost is measured separately. The baseline is the
size of the snapshot as ``status --json`` prints it, compacted.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from collectors.evidence import CollectResult
from daemon.config.loading import load_config
from daemon.config.model import Config
from daemon.run.record import record
from daemon.run.runner import collect_sources
from daemon.store import Store

from ._support import NOW, BenchResult, Context, Row, changed_result, median, project_dict, write_config

NAME = "storage"
TITLE = "Bytes per stored snapshot"

_UNCHANGED_TARGET = 200


def sizes(ctx: Context) -> tuple[int, int, int]:
    """(unchanged per batch, changed per batch, rounds)."""
    return (40, 10, 2) if ctx.quick else (1000, 200, 3)


def _file_size(store: Store) -> int:
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    assert store.path is not None
    return store.path.stat().st_size


def _batch(store: Store, config: Config, result: CollectResult, count: int, start: int, *, changed: bool,
           schedule_log: bool = False) -> float:
    """Record ``count`` snapshots; bytes of growth per snapshot."""
    project = config.projects[0]
    before = _file_size(store)
    for i in range(start, start + count):
        now = NOW + timedelta(minutes=15 * i)
        this = changed_result(result, i) if changed else result.model_copy(update={"evidence": [
            e.model_copy(update={"observed_at": now}) for e in result.evidence]})
        if schedule_log:  # what the daemon writes around each run of a source
            store.claim_run(project.id, "repo", now, now=now)
            store.record_run(project.id, "repo", now, outcome="ok", now=now, result=this)
        else:
            with store.transaction():
                store.save_result(project.id, this, now)
        record(store, config, project, [this], now=now)
    return (_file_size(store) - before) / count


def run(ctx: Context) -> BenchResult:
    unchanged_n, changed_n, rounds = sizes(ctx)
    (repo,) = ctx.repos(1, 60 if ctx.quick else 2000)
    folder = ctx.folder(NAME)
    config = load_config(write_config(folder, [project_dict("svc", {"path": str(repo), "branch": "main"})]))
    (result,) = collect_sources(config, config.projects, now=NOW)["svc"]
    assert result.answered, result.error

    unchanged: list[float] = []
    changed: list[float] = []
    cycle: list[float] = []
    step = 0
    with ctx.task(f"{NAME}: {unchanged_n} unchanged and {changed_n} changed snapshots per round", total=rounds * 3) as task:
        for r in range(rounds):
            db = folder / f"round{r}.db"
            with Store.open(db) as store:
                # A first snapshot, so that the batches measure growth, not the empty file.
                record(store, config, config.projects[0], [result], now=NOW - timedelta(days=1))
                step += 1
                changed.append(_batch(store, config, result, changed_n, step, changed=True))
                step += changed_n
                task.advance()
                # The state the unchanged batch repeats is the last changed one.
                last = changed_result(result, step - 1)
                unchanged.append(_batch(store, config, last, unchanged_n, step, changed=False))
                step += unchanged_n
                task.advance()
                cycle.append(_batch(store, config, last, unchanged_n, step, changed=False, schedule_log=True))
                step += unchanged_n
                task.advance()
                rows = store.db.execute("SELECT count(*) FROM snapshots").fetchone()[0]
                repeats = store.db.execute("SELECT count(*) FROM snapshot_repeats").fetchone()[0]
                latest = store.latest("svc")
            Path(db).unlink()
    assert latest is not None
    json_bytes = len(json.dumps(latest.to_json(), separators=(",", ":")).encode())
    met = median(unchanged) <= _UNCHANGED_TARGET
    run_bytes = max(0.0, median(cycle) - median(unchanged))
    return BenchResult(
        name=NAME, title=TITLE,
        size=f"one project, 10 criteria with their evidence; {changed_n} changed then {unchanged_n} unchanged snapshots per round",
        rounds=rounds,
        rows=[
            Row("unchanged snapshot (cheap repeat)", "B", median(unchanged), json_bytes, "the snapshot as compact JSON",
                target=f"≤ {_UNCHANGED_TARGET} B", met=met, extra={"rounds": unchanged}),
            Row("changed snapshot (new commit)", "B", median(changed), json_bytes, "the snapshot as compact JSON",
                extra={"rounds": changed}),
            Row("unchanged, with the daemon's run log (source_runs)", "B", median(cycle), json_bytes,
                "the snapshot as compact JSON", extra={"rounds": cycle}),
        ],
        method=("File growth after `PRAGMA wal_checkpoint(TRUNCATE)` across a batch of `record()` calls (the source's "
                "latest result saved first, as `pillarwatch collect` does), divided by the batch; page-granular, so "
                "batches are large. The last row claims and records a run of the source first, as the daemon does."),
        notes=[f"Last round stored {rows} snapshot rows and {repeats} repeats.",
               "A repeat is one row of `snapshot_repeats` (the snapshot's id and the time it was seen again); the "
               "source's latest result is replaced in place. A changed snapshot stores its criterion rows (with "
               "each check's parameters and value) and, after a new commit, a new row for every fact, since each "
               "fact's provenance names the commit: about the size of its JSON.",
               "Found here and fixed: the daemon's run log (`source_runs`, one row per run of each source, read "
               "for the schedule and for the `pillarwatch_source_runs` counters) was never pruned, so each run of "
               f"a source cost about {run_bytes:.0f} B more, kept forever: with 100 sources collected every 15 "
               f"minutes, about {run_bytes * 100 * 96 * 365 / 1e6:,.0f} MB a year. Retention now folds runs older "
               f"than `retention.runs_for` (30 days) into per-source totals the counters go on from: at most about "
               f"{run_bytes * 100 * 96 * 30 / 1e6:,.0f} MB for those 100 sources."],
    )
