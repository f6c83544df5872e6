"""One collection run: ask every source of a project for its evidence, score, store.

The runner is the only place that knows which collector serves which source
kind, and that a document inside a git source is read at the commit the git
source was just read at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from collectors import docs, git
from collectors.evidence import CollectResult, EvidenceError, EvidenceRequest, failed

from .config import Config, Project
from .scoring import score_project
from .snapshot import Snapshot
from .store import Store

Progress = Callable[[str], None]


def requests_by_source(project: Project) -> dict[str, list[EvidenceRequest]]:
    """Every fact the project's checks ask of each source, each asked once."""
    wanted: dict[str, dict[str, EvidenceRequest]] = {s.id: {} for s in project.sources}
    for pillar in project.expanded_pillars:
        for criterion in pillar.criteria:
            for check in criterion.checks:
                request = check.request()
                wanted[check.source].setdefault(request.model_dump_json(), request)
    return {source: list(requests.values()) for source, requests in wanted.items()}


def collect_project(
    project: Project,
    *,
    cache_dir: Path,
    now: datetime,
    progress: Progress | None = None,
) -> list[CollectResult]:
    """Collect every source of one project; faults come back as evidence errors."""
    wanted = requests_by_source(project)
    results: dict[str, CollectResult] = {}
    # Git sources first: documents inside them are read at the commit just seen.
    ordered = sorted(project.sources, key=lambda s: s.kind != "git")
    for source in ordered:
        if progress:
            progress(f"{project.id}/{source.id}")
        requests = wanted[source.id]
        if isinstance(source, git.GitSource):
            results[source.id] = git.collect(source, requests, now=now, cache_dir=cache_dir)
        elif source.git is None:
            results[source.id] = docs.collect(source, requests, now=now)
        else:
            repo = project.source(source.git)
            assert isinstance(repo, git.GitSource)
            at = results[repo.id]
            if not at.answered or at.fingerprint is None:
                error = EvidenceError(kind="unreachable", message=f"git source {repo.id!r} did not answer: {at.error.message if at.error else 'no commit'}")
                results[source.id] = failed(source.id, requests, error, now=now)
            else:
                results[source.id] = docs.collect(source, requests, now=now, repo=repo, commit=at.fingerprint, cache_dir=cache_dir)
    return [results[s.id] for s in project.sources]


def run_project(
    config: Config,
    project: Project,
    *,
    store: Store | None,
    now: datetime | None = None,
    progress: Progress | None = None,
    save: bool = True,
) -> Snapshot:
    """Collect, score and store one snapshot (``save=False``: a dry run)."""
    now = now or datetime.now(timezone.utc)
    results = collect_project(project, cache_dir=config.cache_path, now=now, progress=progress)
    previous = store.latest(project.id) if store else None
    snapshot = score_project(project, results, previous=previous, now=now)
    return store.save_snapshot(snapshot) if store is not None and save else snapshot
