"""A project whose rules `calibrate` has something to say about: a generated history and the team's documents.

22 commits a day apart. At commit n (1-based) the repository holds n test files,
n documents, five sources under src/ and, from commit 3 on, a README. The team's
progress document is committed at commits 4, 8 and 16 and judges two criteria:

- ``agree``: tests counted on ``scale [0, 20]`` (n/20); the team says 0.25, 0.40, 0.80;
- ``disagree``: documents counted on ``scale [0, 10]``; the team says n/20;
- ``dead``: a file that never exists; ``saturated``: the README (1.0 in 20 of 22);
  ``constant``: the five sources on ``scale [0, 10]`` (0.5 at every commit).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.support.git import GitRepo

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)
COMMITS = 22
JUDGED = {4: (0.25, 0.20), 8: (0.40, 0.40), 16: (0.80, 0.80)}  # commit -> (agree, disagree) as the team scores them

CONFIG = """\
# The team's rules; comments and layout must survive `calibrate --write`.
store: pw.db
projects:
  - id: svc
    sources:
      - {id: repo, kind: git, path: repo}
    pillars:
      - id: quality
        title: Quality
        criteria:
          - id: agree
            title: Tests cover the service
            checks:
              - {source: repo, signal: file_count, glob: 'tests/*.py', transform: {scale: [0, 20]}}  # twenty tests is done
          - id: disagree
            title: Documents describe it
            checks:
              - source: repo
                signal: file_count
                glob: 'docs/*.md'   # every document counts
                transform:
                  scale: [0, 10]
          - id: dead
            title: A file nobody wrote
            checks:
              - {source: repo, signal: file_exists, path: missing.txt}
          - id: saturated
            title: A README
            checks:
              - {source: repo, signal: file_exists, path: README.md}
          - id: constant
            title: Sources present
            checks:
              - {source: repo, signal: file_count, glob: 'src/*.py', transform: {scale: [0, 10]}}
"""


def progress_document(agree: float, disagree: float) -> str:
    pillar = (agree + disagree) / 2 * 100
    return f"""# Progress snapshot

### 1) Quality
1. Tests cover the service: {agree:.2f}
2. Documents describe it: {disagree:.2f}
Pillar completion: {pillar:g}%

Overall target architecture completion: {pillar:g}%
"""


def calibration_project(root: Path) -> list[str]:
    """The repository at ``root/repo`` and ``root/pw.yaml``; the commit SHAs, oldest first."""
    repo = GitRepo(root / "repo")
    for i in range(5):
        repo.write(f"src/m{i}.py", f"X = {i}\n")
    shas = []
    for n in range(1, COMMITS + 1):
        repo.write(f"tests/test_{n}.py", "def test_it():\n    pass\n")
        repo.write(f"docs/d{n}.md", f"# doc {n}\n")
        if n == 3:
            repo.write("README.md", "# svc\n")
        if n in JUDGED:
            repo.write("notes/PROGRESS.md", progress_document(*JUDGED[n]))
        shas.append(repo.commit(f"commit {n}", when=T0 + timedelta(days=n)))
    (root / "pw.yaml").write_text(CONFIG)
    return shas
