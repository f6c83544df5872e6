"""Import hand-written progress documents into the history.

A document has the shape ``pillarwatch verify-doc`` reads. Each one becomes an
``imported`` snapshot: its pillars and criteria matched to the project's by
normalised title (unknown ones keep a slug of their title), every criterion
``manual`` with the claimed score and the document line as its evidence, and
the pillar and overall figures *recomputed* from the criteria the way
pillarwatch computes them. What the document claimed and whether it agrees
is kept beside the snapshot (the verification findings).

The snapshot's time is the document's ``Date:`` line (midnight UTC), else the
time of the git commit that last changed it. Importing the same content twice
adds nothing.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, time, timezone

from pydantic import BaseModel

from collectors.evidence import Evidence, Provenance
from collectors.markdown import normalise_title
from daemon.config.model import Project
from daemon.errors import InputError
from daemon.run.progress_doc import ProgressDocument, Verification, parse_progress_document, verify
from daemon.scoring.snapshot import CriterionScore, PillarScore, Snapshot
from daemon.store import Store


class ImportOutcome(BaseModel):
    path: str
    commit: str | None
    taken_at: datetime | None
    snapshot: int | None  # None: imported before
    overall: float | None
    disagreements: list[str]  # "Durability: claims 75%, criteria give 74.5%"


def import_text(
    store: Store, project: Project, text: str, *, path: str, now: datetime,
    commit: str | None = None, committed_at: datetime | None = None, add_pillars: bool = False,
) -> ImportOutcome:
    """Parse, verify and store one document as an imported snapshot (nothing if it was imported before).

    A pillar the project does not have is refused unless `add_pillars`: a
    misspelt title would otherwise start a trend of its own.
    """
    where = f"{path}{f' at {commit[:7]}' if commit else ''}"
    try:
        doc = parse_progress_document(text)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    if not add_pillars and (unknown := unknown_pillars(project, doc)):
        raise InputError(f"{where}: pillar(s) {', '.join(repr(t) for t in unknown)} not in project {project.id!r}; "
                         "check the titles, or import with --add-pillars to take them")
    taken_at = _when(doc, committed_at)
    if taken_at is None:
        raise InputError(f"{path}: no 'Date:' line and not in a git repository: cannot tell when it was written")
    verification = verify(doc)
    snapshot = to_snapshot(project, doc, verification, taken_at=taken_at, path=path, commit=commit)
    digest = hashlib.sha256(text.encode()).hexdigest()
    saved = store.save_imported(snapshot, content_hash=digest, path=path, commit=commit,
                                verification=verification.model_dump(mode="json"), now=now)
    return ImportOutcome(
        path=path, commit=commit, taken_at=taken_at, snapshot=saved.id if saved else None, overall=snapshot.overall,
        disagreements=[f"{f.title}: claims {f.claimed:g}%, criteria give {f.computed_display}"
                       for f in verification.disagreements if f.claimed is not None],
    )


def unknown_pillars(project: Project, doc: ProgressDocument) -> list[str]:
    """Titles of the document's pillars that match none of the project's by normalised title."""
    known = {normalise_title(p.title) for p in project.expanded_pillars}
    return [p.title for p in doc.pillars if normalise_title(p.title) not in known]


def to_snapshot(
    project: Project, doc: ProgressDocument, verification: Verification, *,
    taken_at: datetime, path: str, commit: str | None,
) -> Snapshot:
    """The document as a snapshot of the project (pure)."""
    configured = {normalise_title(p.title): p for p in project.expanded_pillars}
    computed = [f for f in verification.figures if f.what == "pillar"]
    pillars = []
    for claimed, figure in zip(doc.pillars, computed):
        match = configured.get(normalise_title(claimed.title))
        known = {normalise_title(c.title): c.id for c in match.criteria} if match else {}
        criteria = [
            CriterionScore(
                id=known.get(normalise_title(c.title)) or _slug(c.title), title=c.title, score=c.score, status="manual",
                reason=f"claimed in {path}:{c.line}",
                evidence=[Evidence(source="import", signal="declared_score", params={"title": c.title},
                                   value={"score": c.score}, provenance=Provenance(commit=commit, path=path, line=c.line),
                                   observed_at=taken_at)],
            )
            for c in claimed.criteria
        ]
        pillars.append(PillarScore(
            id=match.id if match else _slug(claimed.title), title=match.title if match else claimed.title,
            score=figure.computed, coverage=1.0 if criteria else 0.0, criteria=criteria,
        ))
    overall = verification.figures[-1].computed
    return Snapshot(project=project.id, taken_at=taken_at, rules_hash="imported", complete=True, overall=overall,
                    pillars=pillars, origin="imported")


def _when(doc: ProgressDocument, committed_at: datetime | None) -> datetime | None:
    if doc.date is not None:
        return datetime.combine(doc.date, time(0, 0), tzinfo=timezone.utc)
    return committed_at


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", normalise_title(title)).strip("-") or "untitled"
