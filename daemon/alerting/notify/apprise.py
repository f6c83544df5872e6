"""Any service Apprise supports (ntfy, Gotify, Matrix, Teams, ...), one attempt per send.

The outbox owns retries across restarts, so Apprise's own must be off: within
one notify() call Apprise retries a plugin ``retry`` times (``?retry=N`` in the URL, or the
asset's ``default_service_retry``), waiting ``wait`` seconds between tries.
Both are forced to zero here whatever the URL says. Apprise returns only
success or failure; the HTTP status is read from its log line ("..., error=400."),
so a permanent 4xx goes dead at once (and a 410 disables the channel) as on
webhooks. A failure without a status is retryable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

from collectors.secrets import SecretMissing, one_line, redact_url, require_secret, scrub, url_secrets
from daemon.alerting.notify import grouping
from daemon.alerting.notify._common import MESSAGE_LIMIT, SendResult, failed, hide_in_logs
from daemon.alerting.notify._http import permanence
from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import AppriseChannel

# Apprise's HTTP plugins end a failure's log line with the status: "..., error=400."
_STATUS = re.compile(r"\berror=([1-5][0-9]{2})\b")

# Apprise's NotifyType values; the package is imported on first use, as it loads slowly.
_NOTIFY_TYPES = {"critical": "failure", "warning": "warning", "info": "info"}


def send(channel: AppriseChannel, message: AlertMessage | Sequence[AlertMessage], *, idempotency_key: str,
         now: datetime) -> SendResult:
    """Notify through the channel's Apprise URL (a group's alerts in one notification), exactly one attempt."""
    import apprise as _apprise  # heavy (every plugin): loaded only when a message goes through Apprise

    try:
        url = require_secret("Apprise URL", env=channel.url_env, file=channel.url_file, value=channel.url)
    except SecretMissing as exc:
        return failed(f"apprise {channel.id}: {exc}")
    secrets = url_secrets(url, secret_path=True)  # Apprise URLs carry their tokens in the path (and host)
    hide_in_logs(secrets)
    where = redact_url(url, secret_path=True)
    asset = _apprise.AppriseAsset(default_service_retry=0, default_service_wait=0.0)
    plugin = _apprise.Apprise.instantiate(url, asset=asset)
    if plugin is None:
        return failed(f"{where}: not a URL Apprise can use")
    plugin.retry, plugin.wait = 0, 0.0
    query = url.partition("?")[2]
    if "cto=" not in query:  # a timeout written into the URL wins over the channel's
        plugin.socket_connect_timeout = channel.timeout_seconds
    if "rto=" not in query:
        plugin.socket_read_timeout = channel.timeout_seconds
    notifier = _apprise.Apprise(asset=asset)
    notifier.add(plugin)
    messages = grouping.as_list(message)
    firing = [m for m in messages if m.event != "resolved"]
    # The gravest firing alert sets the type; a group that only resolves is a success.
    notify_type = min((_NOTIFY_TYPES[m.severity] for m in firing), key=list(_NOTIFY_TYPES.values()).index, default="success")
    title = messages[0].title if len(messages) == 1 else f"{messages[0].project}: {grouping.heading(messages)}"
    result = notifier.notify(body=_body(messages), title=title, notify_type=notify_type)
    if result:
        return SendResult(ok=True, retryable=False)
    reasons = [entry.message for entry in result.logs() if _severe(entry.level)]
    reason = scrub(reasons[-1], secrets) if reasons else "delivery failed"
    found = _STATUS.search(reasons[-1]) if reasons else None
    if found is None:
        return failed(one_line(f"{where}: {reason}", MESSAGE_LIMIT))
    status = int(found.group(1))
    retryable, disable = permanence(status)
    return SendResult(ok=False, retryable=retryable, error=one_line(f"{where}: {reason}", MESSAGE_LIMIT), status_code=status, disable=disable)


def _severe(level: str) -> bool:
    number = logging.getLevelName(level)  # Apprise's entries carry the level's name
    return not isinstance(number, int) or number >= logging.WARNING


def _body(messages: Sequence[AlertMessage]) -> str:
    if len(messages) == 1:
        text = messages[0].summary.strip()
    else:
        lines = [f"[{grouping.TAGS[m.event]}] " + "\n".join(grouping.notes(m)) for m in messages]
        evidence = [f"- {e.description}" for e in grouping.evidence(messages)]
        text = "\n".join(lines + (["Evidence that changed:", *evidence] if evidence else []))
    links = grouping.links(messages)
    if links:
        text += "\n\n" + "\n".join(links)
    return text
