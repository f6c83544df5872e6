"""The daemon's collections: exactly ``concurrency`` threads, their slots shared fairly between queues.

Each collection (with ``executor: celery``, one task in flight and the wait
for its result) holds one of ``concurrency`` slots, so ``concurrency`` is
what runs at once, never more. These threads are the daemon's collection
threads only: scoring, delivery and retention run elsewhere, so no
collection, however long it waits, holds them up.

Which waiting collection takes a free slot (:func:`pick`):

- the queue holding the fewest slots first, then the one waiting longest;
- each known queue keeps one slot of its own: a queue already holding one
  takes another only if a slot stays free for every other queue that holds
  none (so one queue with no live worker can never take every slot);
- a *stalled* queue (its latest collection ended as a ``timeout``: no worker
  took its task, or none answered in time) holds one slot at most, a probe,
  until a collection of it answers: a queue with no live worker costs the
  others one slot, whatever ``concurrency``.

With the local executor there is one queue, and all of this is a semaphore
of ``concurrency``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field

LOCAL_QUEUE = "local"

log = logging.getLogger("pillarwatch.daemon")


def pick(waiting: Iterable[str], held: Mapping[str, int], *, concurrency: int, queues: Collection[str],
         stalled: Collection[str]) -> str | None:
    """The queue whose oldest waiting collection takes the next free slot, or None: none may now.

    ``waiting``: the queues with a collection waiting, longest waiting first;
    ``held``: the slots each queue holds; ``queues``: every queue known.
    """
    free = concurrency - sum(held.values())
    if free <= 0:
        return None
    known = set(queues) | set(held) | set(waiting)
    idle = {q for q in known if not held.get(q)}
    for queue in sorted(waiting, key=lambda q: held.get(q, 0)):  # stable: longest waiting first among equals
        mine = held.get(queue, 0)
        if queue in stalled and mine >= 1:
            continue
        if mine and free - 1 < len(idle - {queue}):
            continue
        return queue
    return None


@dataclass(order=True)
class _Waiting:
    seq: int
    key: Hashable = field(compare=False)
    run: Callable[[], None] = field(compare=False)


class CollectionPool:
    """``submit(key, queue, run)``: run it on one of ``concurrency`` threads when :func:`pick` gives its queue a slot.

    A key (a source) is waiting or running at most once; :meth:`submit`
    says False for a key already there. :meth:`close` stops the threads
    taking more work and returns the keys that never started.
    """

    def __init__(self, concurrency: int, queues: Iterable[str] = (LOCAL_QUEUE,)):
        self.concurrency = concurrency
        self._queues = set(queues)
        self._changed = threading.Condition()
        self._waiting: dict[str, deque[_Waiting]] = {}
        self._held: dict[str, int] = {}
        self._stalled: set[str] = set()
        self._keys: set[Hashable] = set()
        self._seq = itertools.count()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"collect-{i}", daemon=True) for i in range(concurrency)]
        for thread in self._threads:
            thread.start()

    def set_queues(self, queues: Iterable[str]) -> None:
        """The queues the configuration's sources use (after a reload)."""
        with self._changed:
            self._queues = set(queues)
            self._changed.notify_all()

    def submit(self, key: Hashable, queue: str, run: Callable[[], None]) -> bool:
        with self._changed:
            if self._closed or key in self._keys:
                return False
            self._keys.add(key)
            self._waiting.setdefault(queue, deque()).append(_Waiting(next(self._seq), key, run))
            self._changed.notify_all()
        return True

    def answered(self, queue: str, *, timed_out: bool) -> None:
        """How a collection of ``queue`` ended: a timeout stalls the queue, any other answer frees it."""
        with self._changed:
            if timed_out:
                self._stalled.add(queue)
            else:
                self._stalled.discard(queue)
            self._changed.notify_all()

    def busy(self, key: Hashable) -> bool:
        with self._changed:
            return key in self._keys

    @property
    def stalled(self) -> set[str]:
        with self._changed:
            return set(self._stalled)

    def held(self) -> dict[str, int]:
        """The slots each queue holds now."""
        with self._changed:
            return {q: n for q, n in self._held.items() if n}

    def close(self) -> list[Hashable]:
        """Take no more work; the keys still waiting (never started), oldest first."""
        with self._changed:
            self._closed = True
            dropped = sorted(w for queue in self._waiting.values() for w in queue)
            self._waiting.clear()
            for w in dropped:
                self._keys.discard(w.key)
            self._changed.notify_all()
        return [w.key for w in dropped]

    def _next(self) -> tuple[str, _Waiting] | None:
        with self._changed:
            while not self._closed:
                order = sorted((q for q, w in self._waiting.items() if w), key=lambda q: self._waiting[q][0].seq)
                queue = pick(order, self._held, concurrency=self.concurrency, queues=self._queues, stalled=self._stalled)
                if queue is not None:
                    self._held[queue] = self._held.get(queue, 0) + 1
                    return queue, self._waiting[queue].popleft()
                self._changed.wait()
            return None

    def _work(self) -> None:
        while (taken := self._next()) is not None:
            queue, waiting = taken
            try:
                waiting.run()
            except Exception:  # a bug in a run must not cost the pool a thread
                log.exception("collection %s failed", waiting.key)
            finally:
                with self._changed:
                    self._held[queue] -= 1
                    self._keys.discard(waiting.key)
                    self._changed.notify_all()


__all__ = ["LOCAL_QUEUE", "CollectionPool", "pick"]
