"""A generated repository with a long history: files added, changed, renamed and deleted commit after commit."""

from __future__ import annotations

import os
import random
import subprocess
from datetime import timedelta
from pathlib import Path

from ._support import NOW

_WORDS = ["alpha", "beta", "state", "queue", "retry", "restart", "snapshot", "ledger", "tenant", "policy", "cache",
          "mirror", "replay", "checkpoint", "worker", "budget", "window", "schema", "index"]
HOURS = 3  # between commits, on average


def _path(rng: random.Random, n: int) -> str:
    kind = rng.random()
    if kind < 0.6:
        return f"src/pkg{n % 20:02d}/mod{n:05d}.py"
    if kind < 0.8:
        return f"tests/unit/test_{n:05d}.py"
    if kind < 0.9:
        return f"docs/topic{n:05d}.md"
    return f"config/env{n:05d}.yaml"


def _content(rng: random.Random, path: str) -> bytes:
    lines = []
    for n in range(rng.randint(10, 40)):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 8)))
        if path.startswith("tests/") and n % 6 == 0:
            lines.append(f"def test_{rng.choice(_WORDS)}_{n}():")
        elif path.endswith(".py"):
            lines.append(f"def {rng.choice(_WORDS)}_{n}():  # {words}" if n % 5 == 0 else f"    assert {n}  # {words}")
        else:
            lines.append(words)
    if rng.random() < 0.08:
        lines.insert(rng.randrange(len(lines)), "    # TODO: " + rng.choice(_WORDS))
    return ("\n".join(lines) + "\n").encode()


def make_history(path: Path, *, commits: int, files: int, seed: int = 7) -> Path:
    """A bare repository, branch ``main``: ``files`` files at first, then ``commits - 1`` commits each changing
    about 1 % of them, now and then adding, deleting or renaming one; a commit every few hours up to NOW."""
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    present = ["README.md", *(_path(rng, n) for n in range(files - 1))]
    present = list(dict.fromkeys(present))
    counter = files
    start = NOW - timedelta(hours=HOURS * commits)
    stream = bytearray()

    def put(p: str) -> None:
        data = _content(rng, p)
        stream.extend(b"M 100644 inline %s\ndata %d\n%s\n" % (p.encode(), len(data), data))

    for c in range(commits):
        when = int((start + timedelta(hours=HOURS * c + rng.random())).timestamp())
        message = f"commit {c}".encode()
        stream.extend(b"commit refs/heads/main\nauthor Bench <bench@example.invalid> %d +0000\n" % when)
        stream.extend(b"committer Bench <bench@example.invalid> %d +0000\ndata %d\n%s\n" % (when, len(message), message))
        if c == 0:
            for p in present:
                put(p)
        else:
            for p in rng.sample(present, k=max(1, len(present) // 100)):
                put(p)
            if rng.random() < 0.3:
                new = _path(rng, counter)
                counter += 1
                if new not in present:
                    present.append(new)
                    put(new)
            if rng.random() < 0.15 and len(present) > 2:
                gone = rng.choice(present[1:])
                present.remove(gone)
                stream.extend(b"D %s\n" % gone.encode())
            if rng.random() < 0.05 and len(present) > 2:
                old = rng.choice(present[1:])
                new = old.rsplit("/", 1)[0] + f"/moved{counter:05d}." + old.rsplit(".", 1)[1]
                counter += 1
                present[present.index(old)] = new
                stream.extend(b"R %s %s\n" % (old.encode(), new.encode()))
            if c % 25 == 0:
                put("README.md")
        stream.extend(b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=bytes(stream), check=True,
                   env={**os.environ, "GIT_DIR": str(path)})
    return path
