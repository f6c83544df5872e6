"""The benchmarks keep working: `bench/run.py --quick` runs every one at its smallest size.

Nothing here is timed: the figures of a smoke run mean nothing. It checks that
each benchmark ran, produced its figures, and that the report renders.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO_ROOT

# The Celery benchmarks need redis-server and worker processes; "workers" has its own smoke run, "pool" is run alone.
SKIPPED = ("workers", "pool")


def test_quick_run_of_every_benchmark(tmp_path: Path) -> None:
    results, report = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    skip = [arg for name in SKIPPED for arg in ("--skip", name)]
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "run.py"), "--quick", *skip,
                           "--json", str(results), "--markdown", str(report)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    body = json.loads(results.read_text())
    assert body["quick"] is True and body["failed"] == []
    assert set(body["benchmarks"]) == {"collect_cold", "collect_warm", "backfill", "scale", "scoring", "startup", "status",
                                      "storage", "memory"}
    for name, bench in body["benchmarks"].items():
        assert bench["rows"], name
        for row in bench["rows"]:
            if row["unit"] == "B":  # growth of a file: a small batch may not grow it by a page
                assert row["median"] >= 0 and row["baseline"] > 0, (name, row)
            else:
                assert row["median"] > 0, (name, row)
                assert row["baseline"] is None or row["baseline"] > 0, (name, row)
    assert {"cpu", "cores", "ram", "python", "git", "sqlite"} <= set(body["machine"])

    text = report.read_text()
    assert "## Machine and run" in text
    assert all(bench["title"] in text for bench in body["benchmarks"].values())
