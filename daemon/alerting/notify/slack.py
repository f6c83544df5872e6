"""Slack incoming webhooks: Block Kit blocks a person reads at a glance, plus a text fallback."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from collectors.secrets import SecretMissing, require_secret
from daemon.alerting.notify import grouping
from daemon.alerting.notify._common import SendResult, failed
from daemon.alerting.notify._http import post
from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import SlackChannel

# Block Kit limits: a header's text up to 150 characters, a section's up to 3000.
_HEADER_MAX = 150
_SECTION_MAX = 3000
_GROUP_SHOWN = 20  # alerts shown one by one in a group's message (Slack takes 50 blocks); the rest counted
_ICONS = {"firing": ":red_circle:", "reminder": ":large_orange_circle:", "resolved": ":large_green_circle:"}


def send(channel: SlackChannel, message: AlertMessage | Sequence[AlertMessage], *, idempotency_key: str,
         now: datetime) -> SendResult:
    """POST the message (a group's alerts, in one message) to the channel's incoming-webhook URL."""
    try:
        url = require_secret("Slack webhook URL", env=channel.url_env, file=channel.url_file, value=channel.url)
    except SecretMissing as exc:
        return failed(f"slack {channel.id}: {exc}")
    messages = grouping.as_list(message)
    body = json.dumps(payload(messages[0]) if len(messages) == 1 else group_payload(messages), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": idempotency_key}
    return post(url, body, headers, timeout=channel.timeout_seconds, now=now, secret_url=True)


def payload(message: AlertMessage) -> dict[str, Any]:
    """``text`` for notifications and old clients; ``blocks`` for the channel."""
    context = [f"*Project* {_escape(message.project)}", _subject_name(message), f"*Severity* {message.severity}"]
    if message.snapshot_id is not None:
        context.append(f"*Snapshot* {message.snapshot_id}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(message.title, _HEADER_MAX), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(_escape(message.summary), _SECTION_MAX)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": text} for text in context]},
    ]
    if message.links:
        links = "\n".join(f"<{_escape(link)}>" for link in message.links[:10])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(links, _SECTION_MAX)}})
    return {"text": f"{_ICONS[message.event]} {message.title}", "blocks": blocks}


def group_payload(messages: Sequence[AlertMessage]) -> dict[str, Any]:
    """A group's alerts in one message: a header, one section per alert, then the evidence and links once."""
    title = f"{messages[0].project}: {grouping.heading(messages)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, _HEADER_MAX), "emoji": True}}]
    for message in messages[:_GROUP_SHOWN]:
        text = "\n".join([f"{_ICONS[message.event]} *{_escape(message.title)}*", *map(_escape, grouping.notes(message)[1:]),
                          f"{_subject_name(message)} · *Severity* {message.severity}"])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_MAX)}})
    if len(messages) > _GROUP_SHOWN:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"… and {len(messages) - _GROUP_SHOWN} more"}]})
    evidence = [f"- {_escape(e.description)}" + (f" <{_escape(e.url)}>" if e.url else "") for e in grouping.evidence(messages)]
    if evidence:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut("*Evidence that changed*\n" + "\n".join(evidence), _SECTION_MAX)}})
    return {"text": f"{_ICONS[messages[0].event]} {title}", "blocks": blocks}


def _subject_name(message: AlertMessage) -> str:
    kind, _, name = message.subject.partition(":")
    if kind == "pillar":
        return f"*Pillar* {_escape(name)}"
    if kind == "source":
        return f"*Source* {_escape(name)}"
    return "*Overall*"


def _escape(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
