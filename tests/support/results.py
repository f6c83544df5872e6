"""Assertions on what a collector returns."""

from __future__ import annotations

from collectors.evidence import CollectResult


def only_error(result: CollectResult) -> tuple[str, str]:
    """The kind and message of a result that failed as a whole: every evidence item carries its one error."""
    assert result.error is not None and all(e.error == result.error for e in result.evidence)
    return result.error.kind, result.error.message
