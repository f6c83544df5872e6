"""The hand-written part of docs/SCALING.md: how the Celery executor fails and recovers.

bench_workers renders it into docs/SCALING.md with the measured figures, so a
run of the benchmark keeps it.
"""

FAILING_AND_RECOVERING = """\
## Failing and recovering

How `executor: celery` behaves when a part of it fails, what the daemon records, and what brings it back.
Every fault is a value: the run of that due time is recorded as an `error` of a kind below, the source's
evidence is kept and shown `stale` (never as a regression), and the next due time collects it again.

| what fails | what the daemon records | how it recovers |
| --- | --- | --- |
| a worker killed mid-task | nothing | the task is delivered again (Redis: after `visibility_timeout`; RabbitMQ: when the worker's connection drops) and run by another worker; one result per due time, one snapshot |
| the broker restarts and keeps its tasks (settings below) | nothing | waiting tasks are delivered after the restart, tasks a worker held unacknowledged again |
| the broker restarts empty (Redis without persistence) | a task that was waiting in its queue is lost: found within about 10 s, not waited for until the end of the result wait; when the last attempt is lost too, `unreachable` ("task ... on queue '...' was lost") | the task is sent again, `celery.max_retries` times (after `retry_delay`, doubling) within the result wait; then the next due time |
| the result backend is away when the worker stores the result | `unreachable` ("the worker could not store its result") when the last attempt fails too, never a collector crash (`malformed`); when nothing could be stored, the task is found lost as above | sent again, as above |
| the broker is away when a task is sent | `unreachable` ("cannot send the task"), after a few publish retries | the next due time |
| a result that arrives late (a slow job, a task delivered again) | the run of its due time; the source's latest result stays the one of the latest due time | nothing to do: a late result never replaces a newer one |

A task is lost when neither the broker holds it (its queue's lists and the tasks delivered to a worker and
not yet acknowledged, three looks 2 s apart) nor a worker answers that it has it (Celery's
`inspect query_task`): a task a worker runs through a broker restart is not lost, and its result comes.
The daemon looks only on a Redis broker.

Broker settings that keep tasks through a restart:

- **Redis**: persistence, either the append-only file (`appendonly yes`, `appendfsync everysec`: at most a
  second of tasks lost) or RDB snapshots (`save 60 100`: the tasks since the last snapshot lost), and
  `maxmemory-policy noeviction` (an evicting Redis drops tasks). Without persistence a restart loses every
  waiting task and the list of unacknowledged ones; the daemon then finds the lost ones as above.
- **RabbitMQ**: Celery declares its queues durable and sends its tasks persistent (the defaults; keep them),
  and pillarwatch acknowledges tasks late (`acks_late`), so a restart keeps waiting tasks and a task whose
  worker or connection died is delivered again. In a cluster, quorum queues survive the loss of a node.

One task per git source: the documents and JUnit reports read through a git source are collected in its
task, at the commit it saw, on its schedule and queue; they send no task of their own. A document has no
`timeout_seconds`: it counts as its git source's (which bounds each of its reads) in the
`visibility_timeout` check, so a task of a git source with two documents counts three times its
`timeout_seconds`, plus 10 s and the longest retry delay.
"""
