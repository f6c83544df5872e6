"""JUnit XML test results: files in a git source or a folder, one report by URL, or the reports CI produced.

The reports CI produced are a zip: a named artifact of a GitHub Actions
workflow's newest completed run, or a GitLab job's artifacts
(:mod:`collectors.artifacts` downloads it, :mod:`collectors.zipread` reads
the entries that match ``glob``, default ``**/*.xml``).

Counts come from the ``<testcase>`` elements themselves, not from the suite
attributes (which reporters fill in inconsistently), so that suite, class and
test name filters can select a subset. Parsing goes through defusedxml: an
entity declaration (the XML bomb family) is refused before it can expand.
One malformed file fails the whole source: counts missing a file would be
wrong in a way nobody would notice.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from wcmatch import glob

from collectors.artifacts import GitHubArtifact, GitLabArtifact, download
from collectors.evidence import (
    CollectResult,
    ErrorKind,
    Evidence,
    EvidenceRequest,
    Provenance,
    SourceFault,
    answer,
    failed,
    path_text,
    signal_params,
)
from collectors.gitrepo import GLOB_FLAGS, Deadline, GitSource, list_files, read_bytes
from collectors.http import fetch, http_url
from collectors.models.junit import SIGNALS, Tests
from collectors.regex import compile_regex
from collectors.secrets import shown_url
from collectors.zipread import zip_entries

__all__ = ["SIGNALS", "JUnitSource", "Tests", "collect"]

_LIST_LIMIT = 20
_ARTIFACT_GLOB = "**/*.xml"
_LOCATIONS = ("git", "path", "url", "github", "gitlab")
_STATUS_KINDS: dict[int, ErrorKind] = {401: "auth", 403: "auth", 404: "not_found", 410: "not_found", 429: "rate_limited"}


class JUnitSource(BaseModel):
    """JUnit XML reports: a glob in a git source, a folder or a CI artifact's zip, or one URL."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["junit"] = "junit"
    id: str
    glob: str | None = Field(default=None, min_length=1)
    git: str | None = None
    path: str | None = None
    url: str | None = None
    github: GitHubArtifact | None = None
    gitlab: GitLabArtifact | None = None
    max_bytes: int = Field(default=20_000_000, gt=0)  # per report file (zip entries too)
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _one_location(self) -> JUnitSource:
        given = [key for key in _LOCATIONS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_LOCATIONS)}" + (f", not {' and '.join(given)}" if given else ""))
        if given[0] == "url" and self.glob is not None:
            raise ValueError("give url alone: it names one report, so no glob")
        if given[0] in ("git", "path") and self.glob is None:
            raise ValueError(f"give glob with {given[0]}: which report files to read")
        return self


class _Case(NamedTuple):
    suite: str
    classname: str
    name: str
    outcome: Literal["passed", "failure", "error", "skipped"]


class _Report(NamedTuple):
    cases: list[_Case]
    files: int
    provenance: Provenance
    fingerprint: str


# ---------------------------------------------------------------------------
# Parsing


def _local(tag: object) -> str:
    # Comments and processing instructions have a function as tag; namespaces are ignored.
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _outcome(case: Any) -> Literal["passed", "failure", "error", "skipped"]:
    # Only <failure>/<error> count: Surefire's <flakyFailure> is a test that passed on a rerun.
    children = {_local(child.tag) for child in case}
    if "error" in children:
        return "error"
    if "failure" in children:
        return "failure"
    return "skipped" if "skipped" in children else "passed"


def _parse(data: str | bytes, name: str) -> list[_Case]:
    """The test cases of one report; raises SourceFault("malformed") naming the file."""
    try:
        root = fromstring(data.removeprefix("\ufeff") if isinstance(data, str) else data)
    except DefusedXmlException as exc:
        raise SourceFault("malformed", f"{name}: refused XML ({type(exc).__name__}: entity or DTD declarations "
                                       "are not allowed in a JUnit report)") from None
    except ParseError as exc:
        raise SourceFault("malformed", f"{name}: not well-formed XML ({exc})") from None
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise SourceFault("malformed", f"{name}: not a JUnit report (root element <{_local(root.tag)}>)")
    cases: list[_Case] = []
    # A stack of child iterators, not recursion: the nesting depth is up to the file.
    stack: list[tuple[Iterator[Any], str]] = [(iter(root), root.get("name", "") if _local(root.tag) == "testsuite" else "")]
    while stack:
        children, suite = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
        elif _local(child.tag) == "testsuite":
            stack.append((iter(child), child.get("name", "")))
        elif _local(child.tag) == "testcase":
            cases.append(_Case(suite, child.get("classname", ""), child.get("name", ""), _outcome(child)))
    return cases


# ---------------------------------------------------------------------------
# Reading the reports


def _from_folder(source: JUnitSource) -> _Report:
    root = Path(str(source.path))
    if not root.is_dir():
        raise SourceFault("not_found", f"folder not found: {root}")
    base = root.resolve()
    names = sorted(glob.glob(str(source.glob), root_dir=str(root), flags=GLOB_FLAGS))
    files = [root / name for name in names if (root / name).is_file()]  # FIFOs and folders are not reports
    if not files:
        raise SourceFault("not_found", f"no files match {source.glob!r} in {root}")
    cases: list[_Case] = []
    digest = hashlib.sha256()
    for file in files:
        if not file.resolve().is_relative_to(base):
            raise SourceFault("unsafe", f"{file} is outside {root} (a symlink or '..' in the glob)")
        data = _read_capped(file, source.max_bytes)
        digest.update(f"{file.relative_to(root)}\0{len(data)}\0".encode() + data)
        cases += _parse(data, str(file))
    return _Report(cases, len(files), Provenance(path=path_text(str(files[0]))), digest.hexdigest())


def _read_capped(file: Path, limit: int) -> bytes:
    try:
        with file.open("rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SourceFault("malformed", f"{file} is not a regular file")
            data = handle.read(limit + 1)  # never more than the limit, whatever the file grew to
    except OSError as exc:
        raise SourceFault("unreachable", f"cannot read {file}: {exc.strerror}", retryable=True) from None
    if len(data) > limit:
        raise SourceFault("malformed", f"{file} is too large (over {limit} bytes)")
    return data


def _from_git(source: JUnitSource, repo: GitSource, commit: str | None, cache_dir: Path | None) -> _Report:
    # One deadline for the listing and every read: timeout_seconds bounds the whole collection.
    deadline = Deadline.after(source.timeout_seconds)
    names, sha = list_files(repo, str(source.glob), cache_dir=cache_dir, commit=commit, deadline=deadline)
    if not names:
        raise SourceFault("not_found", f"no files match {source.glob!r} in git source {repo.id!r} at {sha[:12]}")
    cases: list[_Case] = []
    for name in names:
        # Bytes, as from a folder: the XML parser decides the encoding by the byte order mark and the
        # declaration, so a UTF-16 report (NUL bytes throughout) is no "binary file". read_bytes names
        # the file in its own faults (too large, missing, ...).
        data, _ = read_bytes(repo, name, cache_dir=cache_dir, commit=sha, max_bytes=source.max_bytes,
                             deadline=deadline)
        cases += _parse(data, f"{name} at {sha[:12]}")
    return _Report(cases, len(names), Provenance(path=path_text(names[0]), commit=sha), sha)


def _from_url(source: JUnitSource) -> _Report:
    url = str(source.url)
    shown = shown_url(url)
    got = fetch(url, timeout=source.timeout_seconds, max_bytes=source.max_bytes, follow_redirects=["*"],
                headers={"Accept": "application/xml, text/xml, */*"})
    if got.status >= 300:
        kind = _STATUS_KINDS.get(got.status, "http_status")
        raise SourceFault(kind, f"{shown}: HTTP {got.status}", retryable=got.status == 429 or got.status >= 500)
    if got.oversize:
        raise SourceFault("malformed", f"{shown}: report is too large (over {source.max_bytes} bytes)")
    cases = _parse(got.body, shown)
    return _Report(cases, 1, Provenance(url=shown), hashlib.sha256(got.body).hexdigest())


def _from_artifact(source: JUnitSource, cache_dir: Path | None) -> _Report:
    spec = source.github or source.gitlab
    assert spec is not None  # the model allows no source without a location
    archive = download(spec, timeout=source.timeout_seconds, cache_dir=cache_dir)
    pattern = source.glob or _ARTIFACT_GLOB
    cases: list[_Case] = []
    names: list[str] = []
    for name, data in zip_entries(archive.data, pattern, max_entry_bytes=source.max_bytes, name=archive.name,
                                  deadline=archive.deadline):
        names.append(name)
        cases += _parse(data, f"{name} in {archive.name}")
    if not names:
        raise SourceFault("not_found", f"{archive.name}: no files in the zip match {pattern!r}")
    provenance = archive.provenance.model_copy(update={"path": path_text(names[0])})
    return _Report(cases, len(names), provenance, archive.fingerprint)


# ---------------------------------------------------------------------------
# Answering


def _describe(p: Tests) -> str:
    filters = [f"{key}~{value!r}" for key in ("suite", "classname", "name") if (value := getattr(p, key)) is not None]
    return " ".join(filters) if filters else "(no filter)"


def _tests(report: _Report, p: Tests) -> dict[str, Any]:
    patterns = [(key, compile_regex(value)) for key in ("suite", "classname", "name")
                if (value := getattr(p, key)) is not None]
    chosen = [c for c in report.cases if all(rx.search(getattr(c, key)) for key, rx in patterns)]
    counts = {kind: sum(1 for c in chosen if c.outcome == kind) for kind in ("passed", "failure", "error", "skipped")}
    ran = len(chosen) - counts["skipped"]
    if ran == 0:
        skipped = f" that were not skipped ({counts['skipped']} skipped)" if chosen else ""
        raise SourceFault("not_found", f"no tests matched {_describe(p)} in {report.files} file(s){skipped}")
    failed_tests = [f"{c.classname}.{c.name}" if c.classname else c.name
                    for c in chosen if c.outcome in ("failure", "error")]
    return {"tests": len(chosen), "passed": counts["passed"], "failures": counts["failure"],
            "errors": counts["error"], "skipped": counts["skipped"], "pass_ratio": counts["passed"] / ran,
            "files": report.files, "failed_tests": failed_tests[:_LIST_LIMIT]}


def _evidence(source: JUnitSource, report: _Report, request: EvidenceRequest, now: datetime) -> Evidence:
    def read() -> tuple[dict[str, Any], Provenance]:
        params = signal_params("junit", SIGNALS, request)
        assert isinstance(params, Tests)
        return _tests(report, params), report.provenance

    return answer(source.id, request, now, read, provenance=report.provenance)


def collect(
    source: JUnitSource,
    requests: list[EvidenceRequest],
    *,
    now: datetime,
    cache_dir: Path | None = None,
    repo: GitSource | None = None,
    commit: str | None = None,
    previous: CollectResult | None = None,
    allow_commands: bool = False,
) -> CollectResult:
    """Read every report once (from `repo` at `commit` when they are in a git source), then answer each
    request; never raises for source faults. `previous` and `allow_commands` are not used."""
    try:
        if source.git is not None:
            if repo is None:
                raise SourceFault("unsupported", f"JUnit reports are in git source {source.git!r}, which was not given")
            report = _from_git(source, repo, commit, cache_dir)
        elif source.path is not None:
            report = _from_folder(source)
        elif source.github is not None or source.gitlab is not None:
            report = _from_artifact(source, cache_dir)
        else:
            report = _from_url(source)
    except SourceFault as fault:
        return failed(source.id, requests, fault.error, now=now)
    evidence = [_evidence(source, report, request, now) for request in requests]
    return CollectResult(source=source.id, evidence=evidence, fingerprint=report.fingerprint)
