"""Runs seen from outside the daemon: when each collection ran (marks written by the command itself), and the rows.

:class:`Marks` gives a command source's ``argv`` that writes its start and
end (wall clock, nanoseconds) to a file of its own before printing ``1``;
:func:`overlap` is the most of them running at once. :func:`due_rows` reads
every source's due times and outcomes, :func:`scorings` every time a
project was scored (a new snapshot or a repeat of the latest).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tests.support.database import query


class Marks:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def argv(self, name: str, seconds: float) -> list[str]:
        path = self.folder / f"{name}.txt"
        return ["sh", "-c", f'echo "start $(date +%s%N)" >> {path}; sleep {seconds}; echo "end $(date +%s%N)" >> {path}; echo 1']

    def spans(self) -> list[tuple[int, int]]:
        """Every finished run's (start, end), in nanoseconds."""
        spans = []
        for path in sorted(self.folder.glob("*.txt")):
            words = path.read_text().split()
            marks = list(zip(words[::2], (int(w) for w in words[1::2])))
            spans += [(s, e) for (a, s), (b, e) in zip(marks[::2], marks[1::2]) if (a, b) == ("start", "end")]
        return spans


def overlap(spans: list[tuple[int, int]]) -> int:
    """The most spans going at one instant."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])  # an end sorts before a start at the same instant
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def due_rows(db: Path) -> dict[str, dict[datetime, str]]:
    """Per source: each due time with a row, and its outcome."""
    rows: dict[str, dict[datetime, str]] = {}
    for source, due, outcome in query(db, "SELECT source, due_at, outcome FROM source_runs"):
        assert _time(due) not in rows.setdefault(source, {}), f"{source}: two rows for {due}"
        rows[source][_time(due)] = outcome
    return rows


def scorings(db: Path) -> list[datetime]:
    """Every time a project was scored: each snapshot, and each repeat of one, in order."""
    times = [t for t, in query(db, "SELECT taken_at FROM snapshots")] + [t for t, in query(db, "SELECT seen_at FROM snapshot_repeats")]
    return sorted(_time(t) for t in times)
