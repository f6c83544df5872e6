"""``pillarwatch calibrate``: the commits the team judged are scored, then every rule is assessed.

A team score (an imported document, a manual score) is compared with the
rule's score at the same commit: the document's commit when it is on the
timeline's branch, else the last commit before the document's date. A
commit with no stored score yet is backfilled (:func:`daemon.run.backfill.backfill_commits`:
the one way to collect the past). The analysis is :func:`daemon.queries.calibration`;
the suggested transforms become a patch of the configuration file
(:mod:`daemon.config.editing`), written only when asked — a change of the
rules hash, which alerting re-scores its baselines for, never a regression.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from collectors import git_history
from collectors.evidence import SourceFault
from daemon import queries
from daemon.config.editing import TransformEdit, set_transforms, unified_diff
from daemon.config.loading import load_config
from daemon.config.model import Config, Project
from daemon.errors import ConfigError, InputError
from daemon.run.backfill import backfill_commits, timeline_source
from daemon.run.executor import Progress
from daemon.store import Store


class CalibrationRun(BaseModel):
    calibration: queries.Calibration
    backfilled: int  # judged commits scored for this run
    patch: str  # a unified diff of the configuration file ("" when nothing is suggested)
    written: bool


def calibrate(store: Store, config: Config, project: Project, *, tolerance: float, write: bool = False,
              progress: Progress | None = None) -> CalibrationRun:
    """Backfill what the comparison needs, assess every rule, and patch the configuration if asked."""
    added = backfill_judged(store, config, project, progress=progress)
    found = queries.calibration(store, project, tolerance=tolerance)
    edits = [TransformEdit(project=project.id, pillar=c.pillar, criterion=c.criterion, check=c.suggestion.check,
                           transform=c.suggestion.transform) for c in found.criteria if c.suggestion is not None]
    path = config.path
    patch, written = "", False
    if edits and path is not None:
        before = path.read_text(encoding="utf-8")
        after = set_transforms(before, edits, where=str(path))
        patch = unified_diff(before, after, path.name)
        if write:
            _replace_checked(path, after)
            written = True
    return CalibrationRun(calibration=found, backfilled=added, patch=patch, written=written)


def backfill_judged(store: Store, config: Config, project: Project, *, progress: Progress | None = None) -> int:
    """Backfill the timeline commits of team scores that have no stored rule score; the number added."""
    histories = queries.calibration_points(store, project)
    judged = [j for h in histories for j in h.judged]
    if not judged or queries.timeline_source(project) is None:
        return 0
    timeline = timeline_source(project, None)
    try:
        log = dict(git_history.first_parent_log(timeline, cache_dir=config.cache_path))
        targets = {j.commit if j.commit in log else git_history.commit_before(timeline, j.taken_at, cache_dir=config.cache_path)
                   for j in judged}
    except SourceFault as fault:
        raise InputError(f"cannot read the history of {project.id}/{timeline.id}: {fault.error.message}") from None
    scored = {r.commit for h in histories for r in h.rules} | store.backfilled_commits(project.id, timeline.id)
    todo = sorted(((sha, log[sha]) for sha in targets if sha in log and sha not in scored), key=lambda c: c[1])
    return backfill_commits(store, config, project, todo, source_id=timeline.id, progress=progress) if todo else 0


def _replace_checked(path: Path, text: str) -> None:
    """Write the new configuration only if it loads: beside the old one, then renamed over it."""
    draft = path.with_name(f".{path.name}.calibrate")
    draft.write_text(text, encoding="utf-8")
    try:
        load_config(draft)
    except ConfigError as exc:
        draft.unlink()
        raise InputError(f"{path}: the patched configuration does not load ({exc.problems[0]}); nothing written") from None
    os.replace(draft, path)
