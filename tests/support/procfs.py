"""A process seen from /proc: its memory and its open file descriptors."""

from __future__ import annotations

import os
from pathlib import Path


def rss_kb(pid: int) -> int:
    """Resident set size (VmRSS) in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> dict[str, str]:
    """The process's open file descriptors: number -> what it points at."""
    found = {}
    base = Path(f"/proc/{pid}/fd")
    for fd in os.listdir(base):
        try:
            found[fd] = os.readlink(base / fd)
        except FileNotFoundError:  # closed while we looked
            continue
    return found
