"""Cold collection: every generated repository read from scratch, against raw git plumbing.

The subject is the runner (:func:`daemon.run.runner.collect_sources`) collecting
one local git source per project, ten signals each, ``concurrency`` sources at
a time. The baseline computes the same evidence with the cheapest git
commands that give it (``log -1``, ``ls-tree -r``, ``grep -c``, ``log -1 --
PATH``, ``rev-list --count``), the same number of repositories at a time,
Python only parsing their output. Both run in the same process, alternating.
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path
from typing import Any

from wcmatch import glob

from collectors import git
from daemon.config.loading import load_config
from daemon.run.jobs import requests_by_source
from daemon.run.runner import collect_sources

from ._support import (
    NOW,
    SIGNALS,
    BenchResult,
    Context,
    Row,
    cpu_counted,
    interleaved,
    map_parallel,
    median,
    project_dict,
    time_shares,
    timed,
    write_config,
)

NAME = "collect_cold"
TITLE = "Cold collection of git repositories"

_GLOB_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.DOTGLOB
_TARGET = 2.0
_NOTES = [
    "Before (issue 15): 4.74×. 60 % of the collector's time went to reading the matched blobs one at a time "
    "through GitPython's `git cat-file --batch` pipe (a write, a flush and a read per object, the GIL held in "
    "between), 15 % to matching every path against each glob with wcmatch's per-path machinery, 10 % to git "
    "commands. What changed: (1) each content signal's blobs are read by one `git cat-file --batch --buffer` "
    "(`collectors.gitcommand.blobs`) handed every id at once; git reads the ids from an unnamed temporary file and "
    "writes its answers to another, which is read in 1 MiB chunks: through pipes, the wake-ups and 4-8 KiB reads "
    "cost this process about 16 ms of CPU per 1,200 blobs, against about 4 ms read from the file; a batch "
    "holds at most 64 MiB of blobs, so the file stays bounded. (2) Each glob is one regular expression compiled "
    "once from wcmatch's own translation of it (`collectors.globs`), run with `filter` over only the paths under "
    "its literal folders (found by bisection in the sorted tree): the same dialect, the matching in C. (3) The "
    "tree's `ls-tree` records are decoded at once, and only symbolic links are followed. (4) git commands are "
    "waited for on a pidfd instead of `communicate(timeout=)`, whose wait sleeps 1, 2, 4 ms between looks. (5) "
    "The branch's ref is read from its file instead of asking `git rev-parse`. (6) The runner's `collect_all` no "
    "longer validates every pending job's source models each time one job finishes (see the warm benchmark). "
    "Pushing the search down to `git grep` was not done: its regular expressions are POSIX or PCRE, not RE2, it "
    "counts matching lines rather than matches, cannot match across lines as the collector's multi-line RE2 does, "
    "and drops binary files silently where the evidence lists them as skipped; so it does not give the same "
    "evidence. Git pathspecs were not used for globs either: git's `:(glob)` has no braces and treats `**` and "
    "character classes in its own way, and the in-Python match is now 1 % of the time.",
    "What is left above the plumbing: the Python part (splitting `ls-tree` and `cat-file` output, decoding each "
    "blob and running RE2 through its Python wrapper, building ten evidence models) runs under one GIL for all "
    "eight collection threads, while the plumbing's work is almost all inside git, on both cores; and the "
    "collector starts one `cat-file` per content signal where the plumbing runs one `git grep`, and the "
    "`cat-file` answers are read and split in Python where `git grep` counts inside git.",
]


def sizes(ctx: Context) -> tuple[int, int, int]:
    """(repositories, files per repository, rounds)."""
    return (4, 60, 2) if ctx.quick else (200, 2000, 3)


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, check=True)
    return out.stdout.decode("utf-8", errors="replace")


def _compiled(pattern: str) -> re.Pattern[str]:
    (regex,), _ = glob.translate(pattern, flags=_GLOB_FLAGS)
    return re.compile(regex)


def plumbing(repo: Path, now: float) -> dict[str, Any]:
    """The ten signals' evidence from git plumbing: what the collector's answer is measured against."""
    sha, committed = _git(repo, "log", "-1", "--format=%H %ct", "main", "--").split()
    names = [record.split("\t", 1)[1] for record in _git(repo, "ls-tree", "-r", "-l", "-z", "--full-tree", sha).split("\0") if record]
    present = set(names)
    out: dict[str, Any] = {}
    for cid, _, check in SIGNALS:
        signal = check["signal"]
        if signal == "file_exists" and "path" in check:
            out[cid] = check["path"] in present
        elif signal in ("file_exists", "file_count"):
            matcher = _compiled(check["glob"])
            out[cid] = sum(1 for name in names if matcher.match(name))
        elif signal == "content_match":
            counts = _git_grep(repo, sha, check["regex"], check["glob"])
            out[cid] = (len(counts), sum(counts.values()))
        elif signal == "file_age":
            line = _git(repo, "log", "-1", "--format=%H %ct", sha, "--", check["path"]).split()
            out[cid] = (now - int(line[1])) / 86400
        elif signal == "commits_since":
            oldest = math.floor(now - check["days"] * 86400) + 1
            out[cid] = int(_git(repo, "rev-list", "--count", f"--max-age={oldest}", f"--min-age={math.floor(now)}", sha))
        elif signal == "head":
            out[cid] = (now - int(committed)) / 86400
    return out


def _git_grep(repo: Path, sha: str, regex: str, pattern: str) -> dict[str, int]:
    result = subprocess.run(["git", f"--git-dir={repo}", "grep", "-I", "-c", "-E", "-e", regex, sha, "--", f":(glob){pattern}"],
                            capture_output=True)
    if result.returncode not in (0, 1):  # 1: no match
        raise RuntimeError(result.stderr.decode())
    counts = {}
    for line in result.stdout.decode().splitlines():
        path, _, n = line.rpartition(":")
        counts[path] = int(n)
    return counts


def collector_view(evidence: list[Any]) -> dict[str, Any]:
    """The collector's evidence in the shape :func:`plumbing` returns, to check both found the same."""
    by_key = {(e.signal, tuple(sorted(e.params.items()))): e.value for e in evidence}
    out: dict[str, Any] = {}
    for cid, _, check in SIGNALS:
        params = {k: v for k, v in check.items() if k not in ("signal", "field", "transform")}
        if "days" in params:
            params["days"] = float(params["days"])
        value = by_key[(check["signal"], tuple(sorted(params.items())))]
        signal = check["signal"]
        if signal == "file_exists" and "path" in check:
            out[cid] = value["exists"]
        elif signal in ("file_exists", "file_count"):
            out[cid] = value["count"]
        elif signal == "content_match":
            out[cid] = (value["files"], value["matches"])
        elif signal == "file_age":
            out[cid] = value["days"]
        elif signal == "commits_since":
            out[cid] = value["count"]
        elif signal == "head":
            out[cid] = value["age_days"]
    return out


def same_evidence(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] or (isinstance(a[k], float) and math.isclose(a[k], b[k])) for k in a)


def run(ctx: Context) -> BenchResult:
    count, files, rounds = sizes(ctx)
    repos = ctx.repos(count, files)
    folder = ctx.folder(NAME)
    config = load_config(write_config(folder, [project_dict(f"p{i:03d}", {"path": str(r), "branch": "main"})
                                               for i, r in enumerate(repos)]))
    workers = config.concurrency
    now = NOW
    collected: dict[str, Any] = {}

    def subject() -> float:
        def work() -> None:
            collected.update(collect_sources(config, config.projects, now=now))
        return timed(work)

    plain: list[dict[str, Any]] = []

    def baseline() -> float:
        def work() -> None:
            plain[:] = map_parallel(lambda repo: plumbing(repo, now.timestamp()), repos, workers)
        return timed(work)

    cpu: dict[str, list[tuple[float, float]]] = {"collector": [], "plumbing": []}


    with ctx.task(f"{NAME}: {count} repositories, collector vs plumbing", total=2 * rounds) as task:
        mine, base = interleaved(rounds, cpu_counted(cpu, "collector", subject), cpu_counted(cpu, "plumbing", baseline), task.advance)

    def per_repo_ms(what: str, which: int) -> float:
        return median([c[which] for c in cpu[what]]) / count * 1000

    mismatched = [p.id for p, want in zip(config.projects, plain)
                  if not same_evidence(collector_view(collected[p.id][0].evidence), want)]
    failed = [p.id for p in config.projects if not collected[p.id][0].answered]
    notes = [f"Evidence checked equal to the plumbing's for {count - len(mismatched)} of {count} repositories"
             + (f" (differ: {', '.join(mismatched[:5])})" if mismatched else "") + ".",
             f"CPU per repository, median of the rounds: the collector {per_repo_ms('collector', 0):.1f} ms in Python "
             f"and {per_repo_ms('collector', 1):.1f} ms in git processes; the plumbing {per_repo_ms('plumbing', 0):.1f} ms "
             f"in Python and {per_repo_ms('plumbing', 1):.1f} ms in git. The Python part runs one thread at a time "
             "(the GIL); git's runs on every core."]
    if failed:
        notes.append(f"Sources that failed: {', '.join(failed[:5])}.")
    project = config.projects[0]
    shares = time_shares(lambda: git.collect(project.sources[0], requests_by_source(project)["repo"], now=now,
                                             cache_dir=config.cache_path),
                         {"reading blobs (one `cat-file --batch` per content signal)": ("gitrepo.py", "blobs"),
                          "listing the tree (`ls-tree -r`, parsed)": ("gitrepo.py", "_read"),
                          "matching globs": ("gitrepo.py", "glob"),
                          "running other git commands (`log`)": ("gitcommand.py", "run_status")})
    notes.append("Where the collector's time goes (cProfile of one repository's collection): " + ", ".join(shares) + ".")
    notes += _NOTES
    per_repo = median(mine) / count * 1000
    return BenchResult(
        name=NAME, title=TITLE,
        size=f"{count} repositories x {files} files, 10 signals each, {workers} at a time",
        rounds=rounds,
        rows=[
            Row("collect all repositories", "s", median(mine), median(base), "git plumbing, same evidence",
                target=f"≤ {_TARGET:g}×", met=median(mine) / median(base) <= _TARGET,
                extra={"rounds": mine, "baseline_rounds": base, "per_repository_ms": per_repo}),
        ],
        method=("`collect_sources` over one project per repository (local `path` sources, so nothing is cached "
                "between rounds) against, per repository, `git log -1`, `git ls-tree -r -l`, one `git grep -c` per "
                "content signal, `git log -1 -- PATH` and `git rev-list --count`, with the same parallelism; "
                "rounds alternate between the two."),
        notes=notes,
    )
