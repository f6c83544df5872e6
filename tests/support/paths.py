"""Where the repository and its recorded fixtures are."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent  # tests/support/ -> the repository
FIXTURES = REPO_ROOT / "tests" / "fixtures"  # recorded public data, see its PROVENANCE.md


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()
