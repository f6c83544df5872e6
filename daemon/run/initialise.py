"""`pillarwatch init`: read a repository at HEAD, draft a configuration, write it, import the team's judgment.

The repository is read through :mod:`collectors.gitrepo` (the commit's tree and
blobs, as every collector reads it, within one deadline); the drafting itself
is pure (:mod:`daemon.run.draft`, :mod:`daemon.run.draft_default`,
:mod:`daemon.run.draft_yaml`). The file is written only when it loads as a
configuration, and never over an existing one without ``force``. A document's
own scores are then imported into the new configuration's store as the team's
judgment at the document's date (:func:`daemon.run.importer.import_text`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from collectors import git_history
from collectors.evidence import SourceFault
from collectors.gitrepo import BINARY_PROBE, LINK_MODE, GitSource, Repository, Tree
from collectors.markdown import MAX_DOCUMENT_BYTES, read_document
from collectors.testcases import find_test_cases
from daemon.config.loading import load_config
from daemon.errors import ConfigError, InputError
from daemon.run.draft import DraftPillar, FoundTest, RepoView, StatusDoc, draft_from_document, is_test_file
from daemon.run.draft_default import draft_default
from daemon.run.draft_yaml import render
from daemon.run.importer import ImportOutcome, import_text
from daemon.run.progress_doc import parse_progress_document
from daemon.store import Store

__all__ = ["InitOutcome", "initialise", "read_repository"]

_MAX_TEXT_BYTES = 1_000_000  # a test file or document larger than this is not read
_MAX_TOTAL_BYTES = 200_000_000  # nor any once this much was read: memory stays bounded
_MAX_STATUS_DOCS = 200
_TIMEOUT_SECONDS = 600.0
_SKIPPED = ("node_modules/", "vendor/", "third_party/", ".git/")

Progress = Callable[[str, int, int], None]


class InitOutcome(BaseModel):
    config: str
    project: str
    commit: str
    document: str | None
    pillars: list[DraftPillar]
    imported: ImportOutcome | None = None
    not_imported: str | None = None  # why the document's scores were not imported


def read_repository(path: Path, *, progress: Progress | None = None) -> tuple[RepoView, list[StatusDoc]]:
    """What drafting needs of the repository at `path`, read at HEAD: file names, test files, status documents."""
    source = GitSource(id="repo", path=str(path), timeout_seconds=_TIMEOUT_SECONDS)
    try:
        repo = Repository(source, None, sync=False)
        try:
            sha, _ = repo.resolve("HEAD", "branch")
            tree = Tree(repo, sha)
            # A name that is not printable text (a newline, bytes that are not UTF-8) is left out: no
            # document can name it, and a configuration could not show it plainly.
            files = [p for p in sorted(tree.files)
                     if p.isprintable() and not p.startswith(_SKIPPED) and "/node_modules/" not in p]
            wanted = [p for p in files if is_test_file(p) or p.lower().endswith(".md")]
            texts: dict[str, str] = {}
            total = 0
            for n, name in enumerate(wanted, 1):
                entry = tree.files[name]
                if entry.mode != LINK_MODE and 0 <= entry.size <= _MAX_TEXT_BYTES and total + entry.size <= _MAX_TOTAL_BYTES:
                    total += entry.size
                    data = repo.blob(entry.sha, name)
                    if b"\0" not in data[:BINARY_PROBE]:
                        texts[name] = data.decode("utf-8", errors="replace")
                if progress:
                    progress(name, n, len(wanted))
        finally:
            repo.close()
    except SourceFault as fault:
        raise InputError(f"--repo {path}: {fault.error.message}") from None
    tests = [FoundTest(path=c.path, line=c.line, name=c.name, scope=c.scope)
             for path, text in texts.items() if is_test_file(path) for c in find_test_cases(path, text)]
    status = [StatusDoc(path=p, text=t) for p, t in texts.items()
              if p.lower().endswith(".md") and "pass" in t.lower()][:_MAX_STATUS_DOCS]
    name = path.resolve().name or "project"
    return RepoView(name=name, commit=sha, files=files, texts=texts, tests=tests, tests_signal=True), status


def initialise(repo: Path, output: Path, *, document: Path | None, force: bool, now: datetime,
               progress: Progress | None = None) -> InitOutcome:
    """Draft a configuration for `repo` (from `document` when given), write it to `output`, import the document."""
    if output.exists() and not force:
        raise InputError(f"{output}: exists; pass --force to overwrite it")
    if output.is_dir():
        raise InputError(f"{output}: is a folder; name a file")
    text = None
    if document is not None:
        try:
            text = read_document(str(document), MAX_DOCUMENT_BYTES)
            doc = parse_progress_document(text)
        except SourceFault as fault:
            raise InputError(f"--from-doc: {fault.error.message}") from None
        except InputError as exc:
            raise InputError(f"{document}: {exc}") from None
    view, status = read_repository(repo, progress=progress)
    if text is not None and document is not None:
        draft = draft_from_document(doc, text, view, status, document=document.name)
    else:
        draft = draft_default(view, status)
    folder = output.resolve().parent
    config_text = render(draft, repo_path=os.path.relpath(repo.resolve(), folder), store=f".pillarwatch/{draft.project}.db",
                         generated=now.strftime("%Y-%m-%d"))
    _write_checked(output, config_text)
    outcome = InitOutcome(config=str(output), project=draft.project, commit=view.commit,
                          document=str(document) if document else None, pillars=draft.pillars)
    if text is not None and document is not None:
        try:  # a document in the repository is named as `pillarwatch import --from-git` names it
            named = document.resolve().relative_to(repo.resolve()).as_posix()
        except ValueError:
            named = str(document)
        _import(outcome, output, document, named, text, now)
    return outcome


def _write_checked(output: Path, text: str) -> None:
    """Write `text` to `output` only once it loads as a configuration (through a temporary file beside it)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.init-tmp")
    temporary.write_text(text, encoding="utf-8")
    try:
        load_config(temporary)
    except ConfigError as exc:  # a drafting bug: say what failed rather than leave a broken file
        temporary.unlink()
        raise InputError(f"the drafted configuration does not load: {exc.problems[0] if exc.problems else exc}") from None
    os.replace(temporary, output)


def _import(outcome: InitOutcome, output: Path, document: Path, named: str, text: str, now: datetime) -> None:
    """The document's scores as the team's judgment, in the new configuration's store."""
    config = load_config(output)
    project = config.projects[0]
    changed = git_history.last_change(document)
    try:
        with Store.open(config.store_path) as store:
            outcome.imported = import_text(store, project, text, path=named, now=now,
                                           commit=changed[0] if changed else None,
                                           committed_at=changed[1] if changed else None)
    except InputError as exc:
        outcome.not_imported = str(exc)
