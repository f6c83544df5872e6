"""Backfill: a project scored at every past commit of a generated history, against a batched raw-git floor.

The subject is :func:`daemon.run.backfill.backfill` into a new database (so
every commit is scored and stored), one git source and nine signals: two
``file_exists``, ``file_count``, two ``content_match``, ``test_cases``,
``file_age``, ``commits_since`` and ``head``. The floor is the fewest git
commands that give the same facts, run one after another as backfill runs:
``git rev-list --first-parent`` for the timeline, one ``ls-tree -r -l`` per
commit (files, counts, sizes), one ``git grep -c`` per content check across
all the commits at once, and one ``git log --name-only`` for file ages and
commit counts; Python only reads their output. The history is generated
(``bench/_history.py``): files added, changed, renamed and deleted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from collectors import git
from collectors.git_history import first_parent_log
from collectors.history_reader import collect_history
from daemon.config.loading import load_config
from daemon.run.backfill import backfill
from daemon.run.jobs import requests_by_source
from daemon.store import Store

from ._history import make_history
from ._support import BenchResult, Context, Row, hot_spots, interleaved, median, time_shares, timed, write_config

NAME = "backfill"
TITLE = "Backfill of a git history"

_TARGET = 2.0
_LINEAR = 1.5

CHECKS: list[tuple[str, dict[str, Any]]] = [
    ("readme", {"signal": "file_exists", "path": "README.md"}),
    ("unit-tests", {"signal": "file_exists", "glob": "tests/**/test_*.py"}),
    ("modules", {"signal": "file_count", "glob": "src/**/*.py", "transform": {"scale": [0, 2000]}}),
    ("todos", {"signal": "content_match", "glob": "src/**/*.py", "regex": "TODO", "field": "files",
               "transform": {"scale": [100, 0]}}),
    ("retry", {"signal": "content_match", "glob": "tests/**/*.py", "regex": "def test_retry", "field": "files",
               "transform": {"scale": [0, 20]}}),
    ("cases", {"signal": "test_cases", "glob": "tests/**/*.py", "transform": {"scale": [0, 500]}}),
    ("readme-age", {"signal": "file_age", "path": "README.md", "transform": {"fresh_within_days": [30, 365]}}),
    ("activity", {"signal": "commits_since", "days": 30}),
    ("head", {"signal": "head", "transform": {"fresh_within_days": [7, 90]}}),
]
# The floor's `git grep` per content check: (regex, pathspec) as git reads them.
_GREPS = [("TODO", ":(glob)src/**/*.py"), ("def test_retry", ":(glob)tests/**/*.py"), ("def test_", ":(glob)tests/**/*.py")]


def sizes(ctx: Context) -> tuple[tuple[int, int], tuple[int, int], int]:
    """((commits, files) of the main history, (commits, files) of the long one, rounds)."""
    return ((30, 150), (300, 60), 2) if ctx.quick else ((200, 1500), (10_000, 150), 3)


def _project(repo: Path) -> dict[str, Any]:
    criteria = [{"id": cid, "title": cid, "checks": [{"source": "repo", **check}]} for cid, check in CHECKS]
    return {"id": "svc", "sources": [{"id": "repo", "kind": "git", "path": str(repo), "branch": "main"}],
            "pillars": [{"id": "code", "title": "Code", "criteria": criteria[:6]},
                        {"id": "process", "title": "Process", "criteria": criteria[6:]}]}


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, check=True,
                          env={**os.environ, "LC_ALL": "C"}).stdout


def floor(repo: Path, commits: int) -> int:
    """The same facts from the fewest git commands; the number of tree entries read (so nothing is optimised away)."""
    shas = _git(repo, "rev-list", "--first-parent", f"--max-count={commits}", "main").split()
    entries = 0
    for sha in shas:
        entries += _git(repo, "ls-tree", "-r", "-l", "-z", "--full-tree", sha.decode()).count(b"\0")
    for regex, pathspec in _GREPS:
        entries += _git(repo, "grep", "-c", "-E", "-e", regex, *(s.decode() for s in shas), "--", pathspec).count(b"\n")
    entries += _git(repo, "log", "--format=%H %ct", "--name-only", "main").count(b"\n")
    return entries


def _backfill(folder: Path, repo: Path, commits: int, tag: str) -> int:
    """Backfill `commits` commits into a new database; the number stored."""
    config = load_config(write_config(folder, [_project(repo)], name=f"{tag}.yaml"))
    db = folder / f"{tag}.db"
    db.unlink(missing_ok=True)
    store = Store.open(db)
    try:
        return backfill(store, config, config.projects[0], commits=commits).added
    finally:
        store.close()


def _equal_to_fresh(folder: Path, repo: Path, commits: int, sample: int) -> tuple[int, list[str]]:
    """(commits compared, those that differ): the history reader's results against a fresh collection there."""
    config = load_config(write_config(folder, [_project(repo)], name="check.yaml"))
    source = git.GitSource(id="repo", path=str(repo), branch="main")
    requests = requests_by_source(config.projects[0])["repo"]
    log = first_parent_log(source, cache_dir=folder, max_count=commits)
    step = max(1, len(log) // sample)
    chosen = {sha for sha, _ in log[::step]} | {log[-1][0]}
    differ, compared = [], 0
    for (sha, when), result in zip(log, collect_history(source, requests, log, cache_dir=folder)):
        if sha in chosen:
            compared += 1
            fresh = git.collect(source, requests, now=when, cache_dir=folder, commit=sha)
            if fresh.model_dump() != result.model_dump():
                differ.append(sha[:7])
    return compared, differ


def _per_commit_before(folder: Path, repo: Path, commits: int) -> float:
    """The timeline source collected afresh at each commit, as backfill did before: seconds."""
    config = load_config(write_config(folder, [_project(repo)], name="before.yaml"))
    source = git.GitSource(id="repo", path=str(repo), branch="main")
    requests = requests_by_source(config.projects[0])["repo"]
    log = first_parent_log(source, cache_dir=folder, max_count=commits)
    return timed(lambda: [git.collect(source, requests, now=when, cache_dir=folder, commit=sha) for sha, when in log])


def run(ctx: Context) -> BenchResult:
    (commits, files), (long_commits, long_files), rounds = sizes(ctx)
    folder = ctx.folder(NAME)
    with ctx.task(f"{NAME}: generating histories of {commits} and {long_commits} commits", total=None):
        repo = make_history(folder / "history.git", commits=commits, files=files)
        long_repo = make_history(folder / "long.git", commits=long_commits, files=long_files, seed=11)
    tenth = long_commits // 10

    with ctx.task(f"{NAME}: {commits} commits, backfill vs git floor", total=2 * rounds) as task:
        mine, base = interleaved(rounds, lambda: timed(lambda: _backfill(folder, repo, commits, "main")),
                                 lambda: timed(lambda: floor(repo, commits)), task.advance)
    with ctx.task(f"{NAME}: {long_commits} commits, backfill vs git floor", total=4) as task:
        long_mine, long_base = interleaved(1, lambda: timed(lambda: _backfill(folder, long_repo, long_commits, "long")),
                                           lambda: timed(lambda: floor(long_repo, long_commits)), task.advance)
        tenth_mine, tenth_base = interleaved(1, lambda: timed(lambda: _backfill(folder, long_repo, tenth, "tenth")),
                                             lambda: timed(lambda: floor(long_repo, tenth)), task.advance)
    with ctx.task(f"{NAME}: evidence against a fresh read, profile", total=None):
        compared, differ = _equal_to_fresh(folder, repo, commits, 10)
        long_compared, long_differ = _equal_to_fresh(folder, long_repo, long_commits, 5)
        before = _per_commit_before(folder, repo, commits)
        spots = hot_spots(lambda: _backfill(folder, repo, commits, "profiled"), 8)
        shares = time_shares(lambda: _backfill(folder, repo, commits, "shared"), {
            "reading git (history reader)": ("history_reader.py", "collect_history"),
            "scoring": ("score.py", "score_project"),
            "storing": ("snapshots.py", "save_snapshot"),
        })
    assert not differ and not long_differ, f"backfilled evidence differs from a fresh read at {differ + long_differ}"

    ratio, long_ratio = median(mine) / median(base), long_mine[0] / long_base[0]
    growth = (long_mine[0] / long_commits) / (tenth_mine[0] / tenth)
    notes = [
        f"Evidence read along the history checked equal to a fresh collection at the same commit for {compared} "
        f"commits of the {commits}-commit history and {long_compared} of the {long_commits}-commit one.",
        f"Where the time goes (cProfile of one {commits}-commit backfill, own time): {', '.join(spots)}.",
        f"Shares of that backfill (cumulative): {', '.join(shares)}.",
        f"Before this change, reading the timeline source afresh at each of the {commits} commits alone took "
        f"{before:.1f} s ({before / median(base):.1f}× the floor; the fourth row): a tree walk, a glob match in Python "
        "of every path and a read of every matching blob at every commit.",
        "Now the source is read along its history at once (`collectors/history_reader.py`, "
        "`collectors/history_walk.py`): one `ls-tree` of the first commit and one `git log --raw` of the "
        "first-parent chain, each commit's tree moved by its changes; which paths a glob matches is worked out "
        "once per path; an answer read from the tree is worked out again only at a commit whose changes touch a "
        "path its glob matches; each blob is read once per history and each regex or test-case reader asks it "
        "once, by blob id. `file_age` asks git only at the first commit and at merges that changed the path; "
        "`commits_since` without a path counts on one commit graph walked as `git log --max-age` walks it "
        "(with a path it still runs one `git log` per commit); `head` needs nothing. A commit whose read fails "
        "is read by the collector itself, so faults come out exactly as before.",
        "The floor greps each commit's whole tree, so it grows with commits × files; the backfill grows with "
        "commits (scoring and storing one snapshot each) plus the distinct blobs of the history.",
        "Not pushed down to git: `git grep` across the commits. It greps every commit's tree again (the floor's "
        "cost), its regex dialect is not the RE2 the collector runs, and it counts lines, not matches; reading "
        "each distinct blob once and asking RE2 once per blob is less work and the same answer. Every match is "
        "still counted, once per blob: `matches` is part of `content_match`'s evidence (its default field).",
        "Saving: backfill now saves 50 snapshots a transaction; one transaction (an fsync, `synchronous = FULL`) "
        "per snapshot cost more than reading its commit.",
    ]
    return BenchResult(
        name=NAME, title=TITLE,
        size=f"{commits} commits × ~{files} files, and {long_commits} commits × ~{long_files} files; 9 signals",
        rounds=rounds,
        rows=[
            Row(f"backfill {commits} commits", "s", median(mine), median(base),
                "rev-list + ls-tree per commit + git grep per check + git log", target=f"≤ {_TARGET:g}×",
                met=ratio <= _TARGET, extra={"rounds": mine, "baseline_rounds": base}),
            Row(f"backfill {long_commits} commits (one round)", "s", long_mine[0], long_base[0],
                "the same floor over the long history", target=f"≤ {_TARGET:g}×", met=long_ratio <= _TARGET),
            Row(f"cost per commit, {long_commits} vs {tenth} commits", "ms", long_mine[0] / long_commits * 1000,
                tenth_mine[0] / tenth * 1000, f"per commit over the last {tenth}", target=f"≤ {_LINEAR:g}× (linear)",
                met=growth <= _LINEAR, extra={"floor_per_commit_ms": [long_base[0] / long_commits * 1000,
                                                                       tenth_base[0] / tenth * 1000]}),
            Row(f"before: the source collected afresh at each of {commits} commits (one round)", "s", before,
                median(base), "the same floor"),
        ],
        method=__doc__ or "",
        notes=notes,
    )
