"""Harnesses of the test suite: real things the tests drive, one concept per module.

    paths          the repository root and the recorded fixtures folder
    git            GitRepo: a real git repository in a temporary folder
    git_remote     a bare clone served over git's dumb HTTP protocol, with switchable faults
    http_server    HttpServer: a real HTTP server on 127.0.0.1 with routes set by the test
    ports          a free TCP port of 127.0.0.1
    webhooks       an independent Standard Webhooks verifier and receivers built on it
    smtp           an aiosmtpd handler that keeps what it is given
    brokers        Redis and RabbitMQ servers started on free ports
    processes      the daemon and Celery workers as subprocesses, and polling for what they do
    daemon_config  the configuration the daemon subprocess tests run
    cli            `pillarwatch ...` run as a subprocess
    database       read-only queries of a store file, and a check of its invariants after a crash
    procfs         a process's memory and file descriptors, read from /proc
    guarded        running code in a fresh interpreter under a deadline
    results        assertions on what a collector returns
    alerts         alert messages and outbox items to deliver, and a fake clock
    api            the HTTP API served on a thread
    history        a database of several snapshots from real collections
    html_tree      a tiny DOM to query rendered pages

Fixtures live in the ``conftest.py`` files; tests import harnesses from here, never from a conftest.
"""
