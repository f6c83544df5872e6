"""The pages' templates: the Jinja2 environment, the inline stylesheet and the policy allowing it.

Pages are rendered on the server from Jinja2 templates (``daemon/web/templates``)
with autoescaping on: every title, reason and piece of evidence comes from a
configuration or a source, never from us, so none of it is trusted.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from daemon import __version__

__all__ = ["content_security_policy", "render", "when"]


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # PackageLoader reads the templates from the installed package, wherever it is.
    env = Environment(
        loader=PackageLoader("daemon.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["path"] = lambda value: quote(str(value), safe="")
    return env


@lru_cache(maxsize=1)
def _stylesheet() -> str:
    env = _environment()
    assert env.loader is not None
    return env.loader.get_source(env, "dashboard.css")[0]


@lru_cache(maxsize=1)
def content_security_policy() -> str:
    """The pages' policy: nothing but the package's own stylesheet, allowed by its hash (no 'unsafe-inline').

    The charts are inline SVG, which needs nothing; the index's filter form
    submits to the page itself ('self'). The HTTP API sends this with
    ``frame-ancestors 'none'``, which only a header can carry.
    """
    digest = base64.b64encode(hashlib.sha256(_stylesheet().encode()).digest()).decode()
    return f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; form-action 'self'; base-uri 'none'"


def render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(
        version=__version__, stylesheet=Markup(_stylesheet()), csp=content_security_policy(), **context)


@lru_cache(maxsize=1024)  # a page shows the few times of its collections thousands of times
def when(moment: datetime) -> str:
    """A moment as the pages print it: ``2026-11-01 08:00 UTC``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
