"""Evidence collectors: plain functions from serialisable requests to evidence.

Each module collects from one kind of source and exposes
``collect(source, requests, *, now, ...) -> CollectResult``. Collectors only
collect: they never score, store or alert, so the same function can run in a
worker process on another machine.
"""
