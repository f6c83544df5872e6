"""Warm re-collection when nothing changed, against one ``git fetch`` per repository.

Every generated repository is a URL source (``file://``), so the collector
mirrors it into its cache on the first collection and fetches it afterwards,
as it would a remote. After that first collection, each round collects every
source again with nothing changed upstream, handing the collector each
source's previous result as the runner and the daemon do; the baseline is
the fetch alone (the collector's own command, ``git fetch --prune origin`` in
each mirror), the same number at a time. DESIGN.md: an unchanged source costs
"one fetch plus a HEAD comparison, no tree walk".
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import timedelta
from pathlib import Path

from collectors.evidence import CollectResult
from daemon.config.loading import load_config
from daemon.config.model import Config
from daemon.run.runner import collect_sources

from ._support import (
    NOW,
    BenchResult,
    Context,
    Row,
    alternate,
    cpu_counted,
    map_parallel,
    median,
    project_dict,
    timed,
    write_config,
)

NAME = "collect_warm"
TITLE = "Warm re-collection, nothing changed"

_TARGET = 1.1


def sizes(ctx: Context) -> tuple[int, int, int]:
    """(repositories, files per repository, rounds)."""
    return (4, 60, 2) if ctx.quick else (200, 2000, 5)


def _fetch(mirror: Path) -> None:
    """The collector's fetch, started the way it starts git (C locale, no stdin, a session of its own)."""
    env = {**os.environ, "LANGUAGE": "C", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    subprocess.run(["git", f"--git-dir={mirror}", "fetch", "--prune", "origin"], cwd=mirror, env=env, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True)


def run(ctx: Context) -> BenchResult:
    count, files, rounds = sizes(ctx)
    repos = ctx.repos(count, files)
    folder = ctx.folder(NAME)
    urls = [r.as_uri() for r in repos]
    sources = [{"url": url, "branch": "main"} for url in urls]
    config = load_config(write_config(folder, [project_dict(f"p{i:03d}", s) for i, s in enumerate(sources)]))
    # The same projects without the one signal that must walk history again for a new time (same mirrors).
    lean = load_config(write_config(folder, [project_dict(f"p{i:03d}", s, without=("activity",)) for i, s in enumerate(sources)],
                                    name="lean.yaml"))
    assert lean.cache_path == config.cache_path
    mirrors = [config.cache_path / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".git") for url in urls]
    workers = config.concurrency
    # What the store would hand each configuration's next collection (a lean result lacks `commits_since`).
    previous_of: dict[int, dict[str, dict[str, CollectResult]]] = {id(config): {}, id(lean): {}}
    previous = previous_of[id(config)]
    step = [0]

    def collect(cfg: Config) -> dict[str, list[CollectResult]]:
        step[0] += 1
        now = NOW + timedelta(minutes=15 * step[0])
        mine = previous_of[id(cfg)]
        found = collect_sources(cfg, cfg.projects, now=now, previous=mine)
        mine.update({pid: {r.source: r for r in results} for pid, results in found.items()})
        return found

    with ctx.task(f"{NAME}: first collection, cloning {count} mirrors", total=None):
        first_seconds = timed(lambda: collect(config))
        collect(lean)  # the lean configuration's own previous results (the mirrors are shared)
    assert all(m.exists() for m in mirrors), "the collector did not mirror every repository where expected"
    first_failed = [pid for pid, r in previous.items() if not r["repo"].answered]

    def fetch_all() -> float:
        return timed(lambda: map_parallel(_fetch, mirrors, workers))

    cpu: dict[str, list[tuple[float, float]]] = {"collector": [], "fetch": []}


    with ctx.task(f"{NAME}: {count} sources, re-collection vs git fetch", total=3 * rounds) as task:
        mine, leaner, base = alternate(rounds, [cpu_counted(cpu, "collector", lambda: timed(lambda: collect(config))),
                                                lambda: timed(lambda: collect(lean)), cpu_counted(cpu, "fetch", fetch_all)],
                                       task.advance)

    # The evidence reused from the unchanged commit must be what a full read finds at the same moment.
    warm = collect(config)
    full: dict[str, list[CollectResult]] = {}
    reread = timed(lambda: full.update(collect_sources(config, config.projects, now=NOW + timedelta(minutes=15 * step[0]))))
    differ = [pid for pid, results in full.items()
              if [e.model_dump() for e in results[0].evidence] != [e.model_dump() for e in warm[pid][0].evidence]]
    unanswered = sorted(set(first_failed) | {pid for pid, r in warm.items() if not r[0].answered})
    ratio, lean_ratio = median(mine) / median(base), median(leaner) / median(base)
    def per_source_ms(what: str, which: int) -> float:
        return median([c[which] for c in cpu[what]]) / count * 1000

    notes = [f"CPU per source, median of the rounds: the collector {per_source_ms('collector', 0):.1f} ms in Python and "
             f"{per_source_ms('collector', 1):.1f} ms in git processes; the bare fetch {per_source_ms('fetch', 0):.1f} ms "
             f"in Python (starting it) and {per_source_ms('fetch', 1):.1f} ms in git.",
             f"First collection (cloning every mirror, reading every tree): {first_seconds:.1f} s.",
             f"Reused evidence checked equal to a full read at the same moment for {count - len(differ)} of {count} sources"
             + (f" (differ: {', '.join(differ[:5])})." if differ else ".")]
    if unanswered:
        notes.append(f"Sources that failed: {', '.join(unanswered[:5])}.")
    notes += [
        "Fixed while writing this benchmark: every collection used to read the whole tree and every matching blob "
        "again even when the branch had not moved (the third row). Now "
        "the collector is handed the source's previous result (`pillarwatch collect` and the runner from the store, "
        "the daemon in its collect job); when the branch's ref, read from the ref files without starting git, still "
        "names the commit of that result (its fingerprint) and the source's `max_file_bytes` is the same, the "
        "evidence read from the tree is reused, `file_age` and `head` are aged to the new time by arithmetic (commit "
        "times are whole seconds, so they come back exactly), and `commits_since` is asked of git again only once its "
        "count can have changed: the result records until when each count holds (until its oldest commit leaves the "
        "window, or a commit dated later than the collection enters it). Git commands are also started with "
        "`subprocess` instead of GitPython's `execute`, whose watchdog thread per command added about 2 ms to each, "
        "and the unchanged mirror is no longer opened with GitPython at all (that read its configuration: about as "
        "much Python as the rest of the re-collection). The reused evidence is checked above to equal a full read at "
        "the same moment.",
    ]
    notes.append(
        "Issue 15 (before: 1.15× with ten signals, 1.22× with nine; target 1.1×). Where the time above the fetch "
        "went, profiled with a CPU clock in every thread: (1) the runner's `collect_all` worked out the time limit of "
        "every pending job each time one finished, and each time validated the job's source models again: about "
        "12,000 validations per collection of 200 sources, a third of all the Python of a warm re-collection; the "
        "limit is now worked out once per job. (2) Every git command was waited for by `communicate(timeout=)`, "
        "whose wait for the exit sleeps 1, 2, 4 ms between looks when git has closed its output but not yet "
        "exited (on a loaded machine, usual): git's pipes are now read to their end with `poll` and the exit is "
        "waited for on a pidfd, without sleeping. (3) The runner's loop waited with `wait(FIRST_COMPLETED)` over "
        "every pending job, which hooks a waiter onto each of them at every look: finished jobs now arrive on a "
        "queue. (4) The branch's ref is read from the ref files through plain paths rather than pathlib. "
        "What is left, measured one source at a time with a CPU clock: the collector's Python per unchanged source "
        "is about 1.1 ms besides the 0.7 ms of starting its fetch (0.6 ms when measured alone, warm in the caches): "
        "validating the ten signals' parameters (a fifth of it; the regex parameters compile their RE2 pattern to "
        "be validated), opening the mirror's folder (a third: resolving the cache path, checking it can be read), reading "
        "the ref and building the ten evidence models; the runner adds about 0.5 ms (building the job, validating "
        "its source model again as a worker would, the thread pool).")
    if ratio > _TARGET or lean_ratio > _TARGET:
        notes.append(
            f"Why a {_TARGET:g}× target is missed in this run: a `file://` fetch of an unchanged repository is the "
            "cheapest fetch there is (about 9 ms of git CPU, no network), and with eight at a time on 2 cores the "
            "run is bound by CPU, so the ratio is about (git + Python of the collector) / (git + Python of the bare "
            "fetch) per source, from the CPU split above: the 1.5 ms or so of Python the collector and the runner "
            "add per source is the miss, and it runs one thread at a time (the GIL). Other work on the shared "
            "machine moves the ratio by several per cent between runs (the nine-signal row does strictly less "
            "than the ten-signal one and can still come out slower). Against a remote across a network, where a "
            "fetch takes tens to hundreds of milliseconds, the same 1.5 ms is a few per cent or less.")
    return BenchResult(
        name=NAME, title=TITLE,
        size=f"{count} `file://` sources x {files} files, 10 signals each, {workers} at a time",
        rounds=rounds,
        rows=[
            Row("re-collect all sources, 10 signals", "s", median(mine), median(base), "one `git fetch` per repository",
                target=f"≤ {_TARGET}×", met=ratio <= _TARGET, extra={"rounds": mine, "baseline_rounds": base}),
            Row("re-collect, 9 signals (without `commits_since`)", "s", median(leaner), median(base),
                "one `git fetch` per repository", target=f"≤ {_TARGET}×", met=lean_ratio <= _TARGET,
                extra={"rounds": leaner}),
            Row("re-collect reading every tree again (no previous result; one round)", "s", reread, median(base),
                "one `git fetch` per repository", extra={"rounds": [reread]}),
        ],
        method=("`collect_sources(..., previous=...)` over one project per repository, after a first collection that "
                "cloned the mirrors, against `git fetch --prune origin` in every mirror with the same parallelism; the "
                "three measurements rotate within each round. Each collection is fifteen minutes later than the one "
                "before, so the signals that depend on the clock (`file_age`, `commits_since`, `head`) are answered "
                "for the new time. The second row drops `commits_since` (it counts the commits in a window that slides "
                "with the clock, and asks git again when the window has passed one of them). "
                "The third is the same collection without the previous results, as every collection was before "
                "the fix below: the fetch, then every tree walked and every matching blob read."),
        notes=notes,
    )
