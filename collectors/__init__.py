"""Evidence collectors: plain functions from serialisable requests to evidence.

Each collector module collects from one kind of source and exposes the same
``collect(source, requests, *, now, cache_dir, repo, commit, previous,
allow_commands) -> CollectResult`` (:class:`collectors.kinds.Collector`);
:func:`collectors.kinds.collect` dispatches on the source's kind. Collectors
only collect: they never score, store or alert, so the same function can run
in a worker process on another machine. The shared pieces: ``evidence``
(the vocabulary, signal parameters), ``gitrepo``/``gitcommand`` (git),
``markdown``, ``http``/``httpcache``, ``secrets`` and ``regex``.
"""
