"""The pydantic models of each source kind: its source model and its signals' parameter models (``SIGNALS``).

They live apart from the collectors, importing only pydantic and light helpers,
so that loading a configuration never imports a collector (GitPython, httpx,
markdown-it): :mod:`collectors.kinds` imports a kind's models on first use, and
each collector module imports its own from here.
"""
