"""Finding a task the broker lost: not in its queue, not taken by a worker, not answered.

A Redis without persistence (no AOF, no RDB snapshot) that restarts comes back
empty: a task waiting in its queue is gone, and its result would never come.
Without a look, the daemon would wait for it the whole result wait (an hour
and more) while the source's last result still showed ``ok``.

While it waits, :class:`daemon.run.tasks.CeleryExecutor` asks a
:class:`LostWatch` every :data:`LOOK_SECONDS` whether the task still exists:

1. in the broker: in one of its queue's lists (kombu's Redis transport keeps
   one list per priority step) or among the tasks delivered to a worker and
   not yet acknowledged (the ``unacked`` hash; tasks are acknowledged late,
   after their result is stored);
2. missing from both :data:`MISSES` looks in a row (a worker that has just
   popped a task notes it as unacknowledged a moment later), the workers are
   asked (Celery's ``inspect query_task``): one that runs the task after the
   restart still has it, and its result will come.

Only then is the task lost; the executor reads its state once more (a result
stored meanwhile wins) and records the run as ``unreachable``. A broker or
worker that cannot be asked means "not lost": the run waits, as before.
Only Redis brokers are watched: RabbitMQ keeps Celery's tasks in durable
queues through a restart (docs/SCALING.md).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from celery import Celery

# How often a waiting thread looks, and how many looks in a row must miss the task.
LOOK_SECONDS = 2.0
MISSES = 3
# How long the workers have to answer whether they hold the task.
INSPECT_SECONDS = 1.0

# kombu's Redis transport: a queue's list for each priority step after the first is named with this separator.
_PRIORITY_STEPS = (3, 6, 9)
_PRIORITY_SEP = "\x06\x16"
_UNACKED = "unacked"


class LostWatch:
    """Looks for tasks of one Redis broker; :meth:`for_broker` gives None for other brokers."""

    def __init__(self, app: Celery, client: redis.Redis):
        self.app = app
        self.client = client

    @classmethod
    def for_broker(cls, app: Celery, url: str) -> LostWatch | None:
        if url.split(":", 1)[0] not in ("redis", "rediss"):
            return None
        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        except (ValueError, redis.RedisError):  # options kombu reads and redis-py does not: no watch, the wait bounds it
            return None
        return cls(app, client)

    def task(self, task_id: str, queue: str) -> TaskWatch:
        return TaskWatch(self, task_id, queue)

    def in_broker(self, task_id: str, queue: str) -> bool:
        """Whether the broker holds the task: queued, or delivered and not yet acknowledged."""
        needle = task_id.encode()
        keys = [queue, *(f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS)]
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.lrange(key, 0, -1)
            pipe.hvals(_UNACKED)
            answers: list[list[bytes]] = pipe.execute()
        return any(needle in message for messages in answers for message in messages)

    def worker_has(self, task_id: str) -> bool:
        """Whether a worker answers that it holds the task (running, reserved or scheduled); True when none can be asked."""
        try:
            replies: dict[str, Any] | None = self.app.control.inspect(timeout=INSPECT_SECONDS).query_task(task_id)
        except Exception:  # the broker is away again: cannot tell
            return True
        return any(held.get(task_id) for held in (replies or {}).values())


class TaskWatch:
    """One waiting task: :meth:`lost` is True once neither the broker nor a worker has it."""

    def __init__(self, watch: LostWatch, task_id: str, queue: str):
        self.watch, self.task_id, self.queue = watch, task_id, queue
        self._next = time.monotonic() + LOOK_SECONDS
        self._misses = 0

    def lost(self) -> bool:
        if time.monotonic() < self._next:
            return False
        self._next = time.monotonic() + LOOK_SECONDS
        try:
            held = self.watch.in_broker(self.task_id, self.queue)
        except redis.RedisError:  # the broker is away: cannot tell
            self._misses = 0
            return False
        self._misses = 0 if held else self._misses + 1
        if self._misses < MISSES:
            return False
        self._misses = 0
        return not self.watch.worker_has(self.task_id)

    def message(self) -> str:
        return (f"task {self.task_id} on queue {self.queue!r} was lost: neither the broker nor a worker holds it, and no"
                " result came (a broker restarted without persistence, or a result backend away when the worker stored it)")


__all__ = ["INSPECT_SECONDS", "LOOK_SECONDS", "MISSES", "LostWatch", "TaskWatch"]
