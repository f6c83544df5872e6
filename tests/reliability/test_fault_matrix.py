"""Fault matrix: every source kind under every fault that applies to it.

Each cell collects a healthy source once (the criterion it backs is scored
``ok``), then injects one fault and collects again. The promise of DESIGN.md
is the same in every cell: the criterion keeps its last score, marked
``stale`` (scored at the healthy run), the error kind is recorded on the check
(and on the source, when the whole source failed, which makes the snapshot
partial), the pillar and overall % do not move, and no alert is raised: a
collector failure is never a regression. Cells run in-process through
``daemon.run.runner.run_projects`` with a real store; the permission cells run
``pillarwatch collect`` in a subprocess that cannot override file modes.

====================  =========  ===========  ============  ===========  =========  ===========  ============
kind                  timeout    HTTP 5xx     rate limit    malformed    missing    corrupt obj  permission
====================  =========  ===========  ============  ===========  =========  ===========  ============
git                   timeout    unreachable  unreachable   malformed    not_found  malformed    unreachable
doc                   malformed  —            —             malformed    not_found  malformed    unreachable
github                timeout    http_status  rate_limited  malformed    not_found  —            auth
gitlab                timeout    http_status  rate_limited  malformed    not_found  —            auth
junit                 timeout    http_status  rate_limited  malformed    not_found  malformed    unreachable
http                  timeout    (observed)   (observed)    malformed*   unreach.   —            —
command               timeout    —            —             malformed*   not_found  —            unsupported
====================  =========  ===========  ============  ===========  =========  ===========  ============

How each fault is made, and why some cells are empty:

- git: the network faults need a remote, so those cells read a URL source
  from a real bare repository served over git's dumb HTTP protocol, which
  then hangs past ``timeout_seconds``, answers 503, or answers 429 with
  ``Retry-After`` (git has no rate-limit protocol: a 429 is a retryable
  ``unreachable`` remote, like a 5xx). "Malformed" is a folder that holds no
  repository; "missing" the repository moved away; "corrupt object" the
  blob the check reads overwritten under ``.git/objects``, then a commit on
  top that keeps it (an unchanged HEAD may reuse the answers read before, so
  the corruption is met when the branch moves); "permission" the repository
  folder ``chmod 000``.
- doc: a document on disk cannot time out; the one way a local read could
  hang, a FIFO put where the document was, is refused at once as not a
  regular file (the timeout cell). Malformed: a binary file. Corrupt object:
  a document inside a git source whose blob is overwritten. No HTTP.
- github, gitlab: a real HTTP server replaying the recorded API answers
  hangs, answers 503, a rate limit with reset headers (GitHub 403 with
  ``x-ratelimit-remaining: 0``, GitLab 429 with ``RateLimit-Remaining: 0``),
  JSON cut short, 404; permission: a ``token_file`` the process may not read.
  No objects to corrupt.
- junit: the network faults on a report by URL; truncated XML; a reports
  folder moved away; a report inside a git source with its blob corrupt; a
  report file ``chmod 000``.
- http (the probe): a 5xx or a 429 is an observation of the endpoint, not a
  fault (``status`` scores it): tested as such below. Malformed: a
  ``json_value`` check over a body that is not JSON fails that one check
  (*: the source answered, the snapshot stays complete). Missing: nothing
  listens on the port any more. No objects, no files.
- command: a 5xx or a rate limit has no meaning. Malformed: the number it
  prints is not a number (*, per check). Permission: the program lost its
  execute bit (refused even for root).

You are probably root here, and root ignores file modes: the permission cells
run the real CLI in a subprocess whose capability bounding set lacks
``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH`` (the interpreter lives
under ``/root``, so dropping to another uid is not an option).

A full disk is a fault of the database, not of a source: a real 4 MiB tmpfs
holds the store (mounting one needs root or CAP_SYS_ADMIN; skipped with the
reason otherwise), and a filler file takes its space to the last byte, or to
a chosen few kilobytes. The write is refused whole (``record`` raises,
nothing is half-written); ``collect`` says so in one line and exits 2; the
daemon logs each refused write in one line and keeps running, first with
room for a collection but not for the new snapshot ("snapshot not stored"),
then with no room at all ("run not recorded"); once the filler is gone the
next run stores the snapshot. This is ENOSPC from a real file system, which
``RLIMIT_FSIZE`` (EFBIG, and a signal) or ``PRAGMA max_page_count`` (SQLite's
own limit, never the OS) would only imitate.

A daemon subprocess with seven sources of seven kinds failing at once stays
up, keeps every criterion ``stale`` and raises nothing but one
``source_failing`` alert per source once ``stale_after`` has passed.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config.loading import load_config
from daemon.config.model import Config
from daemon.run.runner import run_projects
from daemon.scoring.snapshot import Snapshot
from daemon.store import Store
from tests.support.database import query, store_problems
from tests.support.git import GitRepo
from tests.support.git_remote import GitRemote
from tests.support.http_server import HttpServer, Reply
from tests.support.paths import FIXTURES
from tests.support.processes import DaemonProcess, wait_for

pytestmark = pytest.mark.reliability

REPORT = (FIXTURES / "junit_pytest_failure_skipped.xml").read_bytes()  # 3 passed of 4 that ran: 0.75
RUNS = "/repos/o/r/actions/workflows/ci.yml/runs"
PIPELINES = "/projects/group%2Fproject/pipelines"
TIMEOUT = 2  # seconds: every timeout cell hangs far longer than this
HANG = 60


def github_listing() -> dict[str, Any]:
    return json.loads((FIXTURES / "gh_actions_list_workflow_runs.json").read_text())  # 5 of 6 runs succeeded


def gitlab_listing() -> list[dict[str, Any]]:
    listed = json.loads((FIXTURES / "gitlab_list_project_pipelines_docs.json").read_text())
    for item, status in zip(listed, ("success", "failed")):
        item["status"] = status
    return listed


# --- one source of each kind, healthy, with the faults that apply to it ------------------------------


@dataclass
class Target:
    """A project of one failing source (plus the git source it may be read through)."""

    sources: list[dict[str, Any]]
    check: dict[str, Any]
    score: float  # the healthy score of the criterion the check backs
    inject: Callable[[], None]

    @property
    def source(self) -> str:
        return str(self.check["source"])


class Bench:
    """Builds a healthy source of a kind and the function that breaks it in one way."""

    def __init__(self, tmp_path: Path, server: HttpServer, cleanups: list[Callable[[], None]]):
        self.tmp, self.server, self.cleanups = tmp_path, server, cleanups

    def repo(self, name: str = "repo") -> GitRepo:
        repo = GitRepo(self.tmp / name)
        for n in range(3):
            repo.write(f"tests/test_restart_{n}.py", f"def test_restart_{n}():\n    pass\n")
        repo.write("docs/STATUS.md", "# Status\n\nSurvive restart: 0.80\n")
        repo.write("reports/junit.xml", REPORT)
        repo.commit("healthy")
        return repo

    # git: three files of four mention restarts -> 0.75

    def git(self, fault: str) -> Target:
        repo = self.repo()
        check = {"source": "repo", "signal": "content_match", "glob": "tests/*.py", "regex": "restart",
                 "field": "files", "transform": {"scale": [0, 4]}}
        if fault in ("timeout", "http_5xx", "rate_limit"):
            remote = GitRemote(repo, self.tmp / "served")
            self.cleanups.append(remote.close)
            faults = {"timeout": Reply(200, b"", delay=HANG), "http_5xx": Reply(503, "unavailable"),
                      "rate_limit": Reply(429, "slow down", headers={"Retry-After": "3600"})}
            source = {"id": "repo", "kind": "git", "url": remote.url, "timeout_seconds": TIMEOUT}
            return Target([source], check, 0.75, lambda: setattr(remote, "fault", faults[fault]))

        def inject() -> None:
            if fault == "malformed":  # a folder that holds no repository
                repo.path.rename(self.tmp / "moved")
                (repo.path / "tests").mkdir(parents=True)
            elif fault == "missing":
                repo.path.rename(self.tmp / "moved")
            elif fault == "corrupt_object":
                corrupt(repo, "tests/test_restart_1.py")
            elif fault == "permission":
                repo.path.chmod(0)
                self.cleanups.append(lambda: repo.path.chmod(0o755))

        return Target([{"id": "repo", "kind": "git", "path": str(repo.path)}], check, 0.75, inject)

    # doc: a declared score of 0.80

    def doc(self, fault: str) -> Target:
        check = {"source": "status", "signal": "declared_score", "title": "Survive restart"}
        if fault == "corrupt_object":
            repo = self.repo()
            sources = [{"id": "repo", "kind": "git", "path": str(repo.path)},
                       {"id": "status", "kind": "doc", "git": "repo", "path": "docs/STATUS.md"}]
            return Target(sources, check, 0.8, lambda: corrupt(repo, "docs/STATUS.md"))
        path = self.tmp / "STATUS.md"
        path.write_text("# Status\n\nSurvive restart: 0.80\n")

        def inject() -> None:
            if fault == "timeout":  # a FIFO would block a reader until someone writes to it
                path.unlink()
                os.mkfifo(path)
            elif fault == "malformed":
                path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
            elif fault == "missing":
                path.unlink()
            elif fault == "permission":
                path.chmod(0)

        return Target([{"id": "status", "kind": "doc", "path": str(path)}], check, 0.8, inject)

    # github and gitlab: the recorded listings, 5 of 6 and 1 of 2 runs successful

    def github(self, fault: str) -> Target:
        self.server.route(RUNS, Reply(200, github_listing()))
        source = {"id": "ci", "kind": "github", "repo": "o/r", "workflow": "ci.yml", "api_url": self.server.url,
                  "token_env": None, "timeout_seconds": TIMEOUT}
        if fault == "permission":
            source.update(token_env=None, token_file=str(self.token_file()))
        reset = str(int(time.time()) + 3000)
        faults = {
            "timeout": Reply(200, github_listing(), delay=HANG),
            "http_5xx": Reply(503, {"message": "Service Unavailable"}),
            "rate_limit": Reply(403, {"message": "API rate limit exceeded"},
                                headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}),
            "malformed": Reply(200, '{"total_count": 6, "workflow_runs": [{"id": 1, "sta'),
            "missing": Reply(404, {"message": "Not Found"}),
        }
        return Target([source], {"source": "ci", "signal": "success_rate"}, 5 / 6,
                      lambda: self._break_api(fault, RUNS, faults))

    def gitlab(self, fault: str) -> Target:
        self.server.route(PIPELINES, Reply(200, gitlab_listing()))
        source = {"id": "ci", "kind": "gitlab", "project": "group/project", "api_url": self.server.url,
                  "token_env": None, "timeout_seconds": TIMEOUT}
        if fault == "permission":
            source.update(token_file=str(self.token_file()))
        reset = str(int(time.time()) + 3000)
        faults = {
            "timeout": Reply(200, gitlab_listing(), delay=HANG),
            "http_5xx": Reply(502, "<html>502 Bad Gateway</html>", headers={"Content-Type": "text/html"}),
            "rate_limit": Reply(429, {"message": "Retry later"},
                                headers={"RateLimit-Remaining": "0", "RateLimit-Reset": reset}),
            "malformed": Reply(200, "[{\"id\": 48, \"status\": \"succ"),
            "missing": Reply(404, {"message": "404 Project Not Found"}),
        }
        return Target([source], {"source": "ci", "signal": "success_rate"}, 0.5,
                      lambda: self._break_api(fault, PIPELINES, faults))

    def token_file(self) -> Path:
        path = self.tmp / "api-token"
        path.write_text("t0ken-for-the-fault-matrix\n")
        return path

    def _break_api(self, fault: str, route: str, faults: dict[str, Reply]) -> None:
        if fault == "permission":
            (self.tmp / "api-token").chmod(0)
        else:
            self.server.route(route, faults[fault])

    # junit: 3 passed of the 4 that ran -> 0.75

    def junit(self, fault: str) -> Target:
        check = {"source": "reports", "signal": "tests"}
        if fault in ("timeout", "http_5xx", "rate_limit", "malformed"):
            self.server.route("/junit.xml", Reply(200, REPORT, {"Content-Type": "application/xml"}))
            faults = {"timeout": Reply(200, REPORT, delay=HANG), "http_5xx": Reply(503, "down"),
                      "rate_limit": Reply(429, "slow down", headers={"Retry-After": "3600"}),
                      "malformed": Reply(200, REPORT[: len(REPORT) // 2], {"Content-Type": "application/xml"})}
            source = {"id": "reports", "kind": "junit", "url": f"{self.server.url}/junit.xml", "timeout_seconds": TIMEOUT}
            return Target([source], check, 0.75, lambda: self.server.route("/junit.xml", faults[fault]))
        if fault == "corrupt_object":
            repo = self.repo()
            sources = [{"id": "repo", "kind": "git", "path": str(repo.path)},
                       {"id": "reports", "kind": "junit", "git": "repo", "glob": "reports/*.xml"}]
            return Target(sources, check, 0.75, lambda: corrupt(repo, "reports/junit.xml"))
        folder = self.tmp / "reports"
        folder.mkdir()
        (folder / "junit.xml").write_bytes(REPORT)

        def inject() -> None:
            if fault == "missing":
                folder.rename(self.tmp / "moved")
            elif fault == "permission":
                (folder / "junit.xml").chmod(0)

        return Target([{"id": "reports", "kind": "junit", "path": str(folder), "glob": "*.xml"}], check, 0.75, inject)

    # http: {"checks": [{"ok": true}]} -> 1.0

    def http(self, fault: str) -> Target:
        server = self.server
        if fault == "missing":  # its own server, closed to make the fault
            server = HttpServer()
            self.cleanups.append(server.close)
        server.route("/health", Reply(200, {"checks": [{"ok": True}]}))
        source = {"id": "live", "kind": "http", "url": f"{server.url}/health", "timeout_seconds": TIMEOUT}
        check = {"source": "live", "signal": "json_value", "path": "checks.0.ok"}
        faults = {"timeout": Reply(200, {"checks": [{"ok": True}]}, delay=HANG),
                  "malformed": Reply(200, "<html>maintenance</html>", {"Content-Type": "text/html"})}
        return Target([source], check, 1.0, server.close if fault == "missing" else lambda: server.route("/health", faults[fault]))

    # command: prints "coverage 87.5" -> 0.75 on a [50, 100] scale

    def command(self, fault: str) -> Target:
        program = self.tmp / "coverage.sh"
        program.write_text("#!/bin/sh\necho coverage 87.5\n")
        program.chmod(0o755)
        check = {"source": "cmd", "signal": "stdout_number", "regex": r"coverage (\S+)", "transform": {"scale": [50, 100]}}

        def inject() -> None:
            if fault == "timeout":
                program.write_text("#!/bin/sh\necho coverage 87.5\nexec sleep 60\n")
            elif fault == "malformed":
                program.write_text("#!/bin/sh\necho coverage n/a\n")
            elif fault == "missing":
                program.unlink()
            elif fault == "permission":
                program.chmod(0o644)

        source = {"id": "cmd", "kind": "command", "argv": [str(program)], "timeout_seconds": TIMEOUT}
        return Target([source], check, 0.75, inject)


def corrupt(repo: GitRepo, path: str) -> None:
    """Overwrite the loose object of the blob at `path` with garbage, then commit something else.

    The new commit still holds the blob; it moves HEAD, so the collector reads
    the tree again (an unchanged HEAD may reuse the answers read before).
    """
    sha = repo.git("rev-parse", f"HEAD:{path}")
    obj = repo.path / ".git" / "objects" / sha[:2] / sha[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"this is not a zlib stream")
    repo.write("NEWS.md", "Nothing to see.\n")
    repo.commit("news")


def write_config(tmp_path: Path, target: Target, **project: Any) -> Config:
    body = {
        "version": 1, "store": "pw.db", "allow_commands": True,
        "projects": [{
            "id": "svc",
            "alerts": {"threshold": 5, "for": 1},
            "sources": target.sources,
            "pillars": [{"id": "p", "title": "P", "criteria": [
                {"id": "c", "title": "Survive restart", "checks": [target.check]},
                {"id": "steady", "title": "Reviewed", "manual": {"score": 0.5, "reason": "review", "expires": "2099-01-01"}},
            ]}],
            **project,
        }],
    }
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return load_config(path)


# --- the matrix ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    kind: str
    fault: str
    error: str  # the error kind recorded on the check
    says: str  # the essential part of its one-line message
    whole_source: bool = True  # False: the source answered and one check failed

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.fault}"


CELLS = [
    Cell("git", "timeout", "timeout", f"timed out after {TIMEOUT}s"),
    Cell("git", "http_5xx", "unreachable", "The requested URL returned error: 503"),
    Cell("git", "rate_limit", "unreachable", "The requested URL returned error: 429"),
    Cell("git", "malformed", "malformed", "not a git repository"),
    Cell("git", "missing", "not_found", "repository not found"),
    Cell("git", "corrupt_object", "malformed", "cannot read tests/test_restart_1.py: object"),
    Cell("git", "permission", "unreachable", "permission denied"),
    Cell("doc", "timeout", "malformed", "document is not a regular file"),
    Cell("doc", "malformed", "malformed", "document is a binary file"),
    Cell("doc", "missing", "not_found", "document not found"),
    Cell("doc", "corrupt_object", "malformed", "cannot read docs/STATUS.md: object"),
    Cell("doc", "permission", "unreachable", "Permission denied"),
    Cell("github", "timeout", "timeout", f"timed out after {TIMEOUT}s"),
    Cell("github", "http_5xx", "http_status", "HTTP 503 Service Unavailable"),
    Cell("github", "rate_limit", "rate_limited", "HTTP 403, rate limited until"),
    Cell("github", "malformed", "malformed", "response is not JSON"),
    Cell("github", "missing", "not_found", "HTTP 404 Not Found"),
    Cell("github", "permission", "auth", "cannot read: Permission denied"),
    Cell("gitlab", "timeout", "timeout", f"timed out after {TIMEOUT}s"),
    Cell("gitlab", "http_5xx", "http_status", "HTTP 502 Bad Gateway"),
    Cell("gitlab", "rate_limit", "rate_limited", "HTTP 429, rate limited until"),
    Cell("gitlab", "malformed", "malformed", "response is not JSON"),
    Cell("gitlab", "missing", "not_found", "HTTP 404 Not Found"),
    Cell("gitlab", "permission", "auth", "cannot read: Permission denied"),
    Cell("junit", "timeout", "timeout", f"no answer within {TIMEOUT}s"),
    Cell("junit", "http_5xx", "http_status", "HTTP 503"),
    Cell("junit", "rate_limit", "rate_limited", "HTTP 429"),
    Cell("junit", "malformed", "malformed", "not well-formed XML"),
    Cell("junit", "missing", "not_found", "folder not found"),
    Cell("junit", "corrupt_object", "malformed", "cannot read reports/junit.xml: object"),
    Cell("junit", "permission", "unreachable", "Permission denied"),
    Cell("http", "timeout", "timeout", f"no answer within {TIMEOUT}s"),
    Cell("http", "malformed", "malformed", "is not JSON", whole_source=False),
    Cell("http", "missing", "unreachable", "refused"),
    Cell("command", "timeout", "timeout", f"timed out after {TIMEOUT}s"),
    Cell("command", "malformed", "malformed", "'n/a' (matched by 'coverage (\\\\S+)') is not a number", whole_source=False),
    Cell("command", "missing", "not_found", "command not found"),
    Cell("command", "permission", "unsupported", "permission denied running"),
]


@pytest.fixture
def bench(tmp_path: Path, http_server: HttpServer) -> Iterator[Bench]:
    cleanups: list[Callable[[], None]] = []
    yield Bench(tmp_path, http_server, cleanups)
    for cleanup in reversed(cleanups):
        cleanup()


def criterion(snapshot: Snapshot, criterion_id: str = "c") -> Any:
    (found,) = [c for p in snapshot.pillars for c in p.criteria if c.id == criterion_id]
    return found


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_a_fault_leaves_the_evidence_stale_and_raises_nothing(cell: Cell, bench: Bench, tmp_path: Path) -> None:
    target: Target = getattr(bench, cell.kind)(cell.fault)
    config = write_config(tmp_path, target)
    now = datetime.now(timezone.utc)
    with Store.open(config.store_path) as store:
        (good,) = run_projects(config, config.projects, store=store, now=now)
        assert good.complete and (criterion(good).status, criterion(good).score) == ("ok", pytest.approx(target.score))

        target.inject()
        if cell.fault == "permission" and cell.kind != "command":  # no execute bit stops root too
            collect_without_dac_override(tmp_path)
            bad = store.latest("svc")
        else:
            (bad,) = run_projects(config, config.projects, store=store, now=now + timedelta(minutes=1))
        assert bad is not None and bad.id != good.id

        c = criterion(bad)
        assert (c.status, c.score, c.scored_at) == ("stale", criterion(good).score, good.taken_at), c.reason
        error = c.checks[0].error
        assert error is not None and error.kind == cell.error, error
        assert cell.says in error.message and "\n" not in error.message, error.message
        assert cell.says in (c.reason or "")
        # The pillar and the overall % hold: nothing fell, nothing to alert on.
        assert (bad.pillars[0].score, bad.overall) == (good.pillars[0].score, good.overall)
        state = next(s for s in bad.sources if s.id == target.source)
        assert state.answered is not cell.whole_source and bad.complete is not cell.whole_source
        if cell.whole_source:
            assert state.error is not None and state.error.kind == cell.error
        assert store.alerts(project="svc") == []
        assert store.db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    assert store_problems(config.store_path, pillars=1, criteria=2) == []


def test_http_5xx_and_429_are_observations_of_the_endpoint_not_faults(bench: Bench, tmp_path: Path) -> None:
    target = bench.http("observed")
    target.check = {"source": "live", "signal": "status", "field": "code", "transform": {"thresholds": [[200, 1], [300, 0]]}}
    config = write_config(tmp_path, target)
    now = datetime.now(timezone.utc)
    for status in (503, 429):
        bench.server.route("/health", Reply(status, {"message": "busy"}, headers={"Retry-After": "60"}))
        (snap,) = run_projects(config, config.projects, store=None, now=now)
        c = criterion(snap)
        assert snap.complete and c.status == "ok" and c.checks[0].value == status and c.evidence[0].error is None


# --- permission denied, for root too ------------------------------------------------------------------

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_file_mode_override() -> None:
    """In the child, before exec: a root process without these capabilities obeys file modes like any other."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def collect_without_dac_override(workdir: Path) -> None:
    """`pillarwatch collect` over workdir/pw.yaml in a process that file modes apply to."""
    try:
        proc = subprocess.run([sys.executable, "-m", "daemon.cli", "collect", "--config", "pw.yaml", "--json"],
                              cwd=workdir, capture_output=True, text=True, timeout=60, check=False,
                              preexec_fn=_drop_file_mode_override)
    except subprocess.SubprocessError as exc:  # preexec_fn failed: no CAP_SETPCAP to give up the others
        pytest.skip(f"cannot run a process that obeys file modes: {exc}")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    json.loads(proc.stdout)


# --- a full disk under the database -------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs for the store, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"a full disk needs a small tmpfs, and mounting one was refused: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int = 0, name: str = "filler") -> Path:
    """Fill the file system at `mount` up to its last byte but `leave`; returns the filler file."""
    filler = mount / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in (1 << 16, 1 << 12, 1):
            while True:
                stats = os.statvfs(mount)
                if stats.f_bavail * stats.f_frsize <= leave:
                    return filler
                try:
                    os.write(fd, b"\0" * min(chunk, max(1, stats.f_bavail * stats.f_frsize - leave)))
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def disk_config(tmp_path: Path, store: Path, repo: GitRepo, paths: list[str]) -> Path:
    """One criterion per path: the file exists."""
    crits = [{"id": f"c{i}", "title": f"Criterion {i}", "checks": [{"source": "repo", "signal": "file_exists", "path": path}]}
             for i, path in enumerate(paths)]
    body = {"version": 1, "store": str(store),
            "daemon": {"debounce": "0.2s", "send_interval": "0.5s", "shutdown_grace": "5s"},
            "projects": [{"id": "svc", "schedule": {"every": "1s"}, "sources": [{"id": "repo", "kind": "git", "path": str(repo.path)}],
                          "pillars": [{"id": "p", "title": "P", "criteria": crits}]}]}
    path = tmp_path / "pw.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def snapshot_rows(db: Path) -> list[tuple]:
    return query(db, "SELECT id, overall, complete FROM snapshots ORDER BY id")


def test_a_full_disk_refuses_the_write_whole_and_the_next_run_stores_it(tmp_path: Path, small_disk: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("tests/test_0.py", "")
    repo.commit("one of two")
    config = load_config(disk_config(tmp_path, small_disk / "pw.db", repo, ["tests/test_0.py", "tests/test_1.py"]))
    now = datetime.now(timezone.utc)
    with Store.open(config.store_path) as store:
        (first,) = run_projects(config, config.projects, store=store, now=now)
        repo.write("tests/test_1.py", "")
        repo.commit("two of two")
        filler = fill(small_disk)
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            run_projects(config, config.projects, store=store, now=now + timedelta(minutes=1))
        assert [s.id for s in store.history("svc")] == [first.id]  # type: ignore[misc]
        filler.unlink()
        (second,) = run_projects(config, config.projects, store=store, now=now + timedelta(minutes=2))
        assert (first.overall, second.overall) == (50.0, 100.0)
    assert store_problems(config.store_path, pillars=1, criteria=2) == []


def test_collect_on_a_full_disk_says_so_in_one_line_and_exits_2(tmp_path: Path, small_disk: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("tests/test_0.py", "")
    repo.commit("one")
    # Enough criteria that a run needs more pages than the space left once the database is open.
    config = load_config(disk_config(tmp_path, small_disk / "pw.db", repo, [f"tests/test_{i}.py" for i in range(150)]))
    with Store.open(config.store_path) as store:
        run_projects(config, config.projects, store=store)
    repo.write("tests/test_1.py", "")
    repo.commit("two")
    filler = fill(small_disk, leave=48 * 1024)  # the database opens (its -shm takes 32 KiB), the run does not fit
    full = subprocess.run([sys.executable, "-m", "daemon.cli", "collect", "--config", str(config.path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert full.returncode == 2, full.stdout + full.stderr
    assert full.stderr.splitlines() == ["pillarwatch: error: database: database or disk is full"]
    filler.unlink()
    assert [row[0] for row in snapshot_rows(config.store_path)] == [1]
    assert store_problems(config.store_path, pillars=1, criteria=150) == []
    with Store.open(config.store_path) as store:  # space is back: the next run is stored
        run_projects(config, config.projects, store=store)
    assert [row[0] for row in snapshot_rows(config.store_path)] == [1, 2]


def test_the_daemon_logs_a_full_disk_in_one_line_and_carries_on_when_space_returns(
    tmp_path: Path, small_disk: Path, daemons: Callable[[], DaemonProcess]
) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("tests/test_0.py", "")
    repo.commit("not yet")
    # 200 criteria on one fact: a collection writes a few pages (one evidence item), a new snapshot many more.
    criteria = 200
    disk_config(tmp_path, small_disk / "pw.db", repo, ["tests/test_1.py"] * criteria)
    db = small_disk / "pw.db"
    d = daemons()
    wait_for(lambda: snapshot_rows(db), what="first snapshot", logs=d.logs)
    assert snapshot_rows(db) == [(1, 0.0, 1)]

    fillers = [fill(small_disk, leave=40 * 1024)]  # room for a collection, not for a new snapshot
    repo.write("tests/test_1.py", "")
    repo.commit("done")  # the score rises: a new snapshot to store
    wait_for(lambda: d.logs().count("svc: snapshot not stored: cannot write") >= 2, what="snapshots refused", logs=d.logs)
    fillers.append(fill(small_disk, name="filler-2"))  # not even room for a collection
    wait_for(lambda: d.logs().count("svc/repo: run not recorded: cannot write") >= 2, what="runs refused", logs=d.logs)
    assert d.proc is not None and d.proc.poll() is None
    for filler in fillers:
        filler.unlink()

    wait_for(lambda: any(overall == 100.0 for _, overall, _ in snapshot_rows(db)), what="the snapshot after space returned",
             logs=d.logs)
    assert d.stop() == 0
    logs = d.logs()
    assert "Traceback" not in logs
    lines = logs.splitlines()
    refused = [line for line in lines if "cannot write the database" in line]
    assert refused and all(line.endswith("database or disk is full") for line in refused), refused
    assert all(line[:2] == "20" for line in lines), "every log line is a whole record: " + next(line for line in lines if line[:2] != "20")
    assert store_problems(db, pillars=1, criteria=criteria) == []
    assert [overall for _, overall, _ in snapshot_rows(db)] == [0.0, 100.0]


# --- the daemon with many failing sources at once -------------------------------------------------------


def test_a_daemon_with_seven_failing_sources_stays_up_and_only_says_they_fail(
    tmp_path: Path, bench: Bench, daemons: Callable[[], DaemonProcess]
) -> None:
    # GitLab on a host of its own: a rate limit holds for a host and a credential, and would silence GitHub too.
    gitlab_host = HttpServer()
    bench.cleanups.append(gitlab_host.close)
    targets = {kind: getattr(bench, kind)(fault) for kind, fault in [
        ("git", "missing"), ("doc", "malformed"), ("github", "http_5xx"), ("junit", "malformed"), ("http", "timeout"),
        ("command", "timeout")]}
    targets["gitlab"] = Bench(tmp_path, gitlab_host, bench.cleanups).gitlab("rate_limit")
    sources, criteria = [], []
    for kind, target in targets.items():
        for source in target.sources:
            source["id"] = f"{kind}-{source['id']}"
            sources.append({**source, "timeout_seconds": 1} if "timeout_seconds" in source else source)
        criteria.append({"id": kind, "title": kind, "checks": [{**target.check, "source": f"{kind}-{target.source}"}]})
    body = {"version": 1, "store": "pw.db", "allow_commands": True,
            "daemon": {"debounce": "0.3s", "send_interval": "0.3s", "shutdown_grace": "5s"},
            "projects": [{"id": "svc", "schedule": {"every": "2s"},
                          "alerts": {"threshold": 5, "for": 1, "stale_after": "4s", "repeat_interval": "1h"},
                          "sources": sources, "pillars": [{"id": "p", "title": "P", "criteria": criteria}]}]}
    (tmp_path / "pw.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    db = tmp_path / "pw.db"
    d = daemons()

    def latest_statuses() -> dict[str, tuple[str, float]]:
        rows = query(db, "SELECT criterion, status, score FROM criterion_scores WHERE snapshot_id = (SELECT max(id) FROM snapshots)")
        return {name: (status, score) for name, status, score in rows}

    healthy = wait_for(lambda: (s := latest_statuses()) and all(st == "ok" for st, _ in s.values()) and s,
                       what="a healthy snapshot", logs=d.logs)
    assert {k: pytest.approx(v) for k, (_, v) in healthy.items()} == {k: t.score for k, t in targets.items()}

    for target in targets.values():
        target.inject()
    wait_for(lambda: all(st == "stale" for st, _ in latest_statuses().values()), what="every criterion stale", logs=d.logs)
    assert {k: v for k, (_, v) in latest_statuses().items()} == {k: v for k, (_, v) in healthy.items()}

    def failing() -> set[str]:
        return {row[0] for row in query(db, "SELECT subject FROM alerts WHERE kind = 'source_failing'")}

    wait_for(lambda: len(failing()) == len(sources), timeout=40, what="one source_failing alert per source", logs=d.logs)
    time.sleep(2.5)  # more runs fail: still nothing else
    assert d.proc is not None and d.proc.poll() is None
    assert query(db, "SELECT kind, count(*) FROM alerts GROUP BY kind") == [("source_failing", len(sources))]
    assert failing() == {f"source:{s['id']}" for s in sources}
    with Store.open(db, readonly=True) as store:
        latest = store.latest("svc")
    assert latest is not None and not latest.complete
    kinds = {c.id: c.checks[0].error.kind for c in latest.pillars[0].criteria if c.checks[0].error}
    assert kinds == {"git": "not_found", "doc": "malformed", "github": "http_status", "gitlab": "rate_limited",
                     "junit": "malformed", "http": "timeout", "command": "timeout"}
    assert d.stop() == 0
    assert "Traceback" not in d.logs()
