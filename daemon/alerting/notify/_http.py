"""One HTTP POST turned into a :class:`SendResult`, shared by the webhook and Slack channels.

Status classes follow Alertmanager and RFC 9110: 2xx is delivered; 408, 425,
429 and 5xx are worth another try; 410 means the endpoint is gone for good and
the channel is switched off; any other answer is permanent. Redirects are not
followed, so signed bodies and tokens never travel to a host nobody configured.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from datetime import datetime
from functools import cache

import httpx

from collectors.secrets import one_line, redact_url, scrub, url_secrets
from daemon.alerting.notify._common import MESSAGE_LIMIT, SendResult, hide_in_logs, retry_after

_RETRYABLE_4XX = frozenset({408, 425, 429})
_USER_AGENT = "pillarwatch-notify/1"


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    now: datetime,
    secrets: Iterable[str | None] = (),
    secret_url: bool = False,
    verify: ssl.SSLContext | None = None,
) -> SendResult:
    """POST ``body`` to ``url``; never raises for a delivery fault. ``secret_url``: the URL's path is a credential;
    ``verify``: the TLS context (default: the system's CAs)."""
    hidden = [*url_secrets(url, secret_path=secret_url), *(s for s in secrets if s)]
    hide_in_logs(hidden)
    where = redact_url(url, secret_path=secret_url)
    try:
        response = httpx.post(
            url,
            content=body,
            headers={"User-Agent": _USER_AGENT, **headers},
            timeout=timeout,
            follow_redirects=False,
            verify=verify or _tls(),
        )
    except httpx.TimeoutException:
        return SendResult(ok=False, retryable=True, error=f"{where}: no answer within {timeout:g} s")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # Connection refused, reset, DNS, TLS, a malformed URL from the environment:
        # all retryable, since the receiver or the configuration may come back.
        detail = scrub(str(exc), hidden)
        return SendResult(ok=False, retryable=True, error=one_line(f"{where}: {type(exc).__name__}: {detail}", MESSAGE_LIMIT))
    return classify(response, where=where, now=now, secrets=hidden)


@cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs ~40 ms; one context serves every send.
    return httpx.create_ssl_context()


def permanence(status: int) -> tuple[bool, bool]:
    """``(retryable, disable)`` for a failed HTTP status, the same for every channel that speaks HTTP."""
    return status in _RETRYABLE_4XX or status >= 500, status == 410


def classify(response: httpx.Response, *, where: str, now: datetime, secrets: Iterable[str | None] = ()) -> SendResult:
    """The result an HTTP answer stands for."""
    status = response.status_code
    if 200 <= status < 300:
        return SendResult(ok=True, retryable=False, status_code=status)
    snippet = scrub(one_line(response.text, 200), secrets) if response.content else ""
    error = f"{where}: HTTP {status}" + (f": {snippet}" if snippet else "")
    retryable, disable = permanence(status)
    return SendResult(
        ok=False,
        retryable=retryable,
        error=error,
        status_code=status,
        retry_after=retry_after(response.headers.get("Retry-After"), now=now),
        disable=disable,
    )
