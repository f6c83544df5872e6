"""E-mail over SMTP: a plain-text message, STARTTLS when asked, credentials from the environment.

The Message-ID comes from the idempotency key, so a copy sent again after a
lost reply threads with (and can be dropped as) the first one.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from collectors.secrets import one_line, read_secret, scrub
from daemon.alerting.notify import grouping
from daemon.alerting.notify._common import MESSAGE_LIMIT, SendResult, failed
from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import EmailChannel
from daemon.scoring.snapshot import rfc3339


def send(channel: EmailChannel, message: AlertMessage | Sequence[AlertMessage], *, idempotency_key: str,
         now: datetime) -> SendResult:
    """Hand the message (a group's alerts, in one e-mail) to the channel's SMTP server; every SMTP or network
    fault is retryable."""
    where = f"smtp://{channel.host}:{channel.port}"
    username = password = None
    if channel.username_env and channel.password_env:
        username, password = read_secret(env=channel.username_env), read_secret(env=channel.password_env)
        missing = [name for name, value in ((channel.username_env, username), (channel.password_env, password)) if not value]
        if missing:
            return failed(f"email {channel.id}: environment variable {', '.join(missing)} is not set")
    mail = compose(channel, message, idempotency_key=idempotency_key, now=now)
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_seconds) as smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if username and password:
                smtp.login(username, password)
            refused = smtp.send_message(mail, from_addr=channel.sender, to_addrs=channel.to)
    except smtplib.SMTPRecipientsRefused as exc:
        return _fault(where, f"every recipient refused: {_codes(exc.recipients)}", None, [username, password])
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return _fault(where, f"{type(exc).__name__} {exc.smtp_code}: {detail}", exc.smtp_code, [username, password])
    except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS failed, dropped
        return _fault(where, f"{type(exc).__name__}: {exc}", None, [username, password])
    # Some recipients took it: sending again would duplicate it for them, so it counts as delivered.
    return SendResult(ok=True, retryable=False, error=f"{where}: refused {_codes(refused)}" if refused else None)


def compose(channel: EmailChannel, message: AlertMessage | Sequence[AlertMessage], *, idempotency_key: str,
            now: datetime) -> EmailMessage:
    """The e-mail: ``[pillarwatch] project: title`` as Subject, then summary, criteria, evidence and links as plain
    text; for a group, ``project: N alerts (...)`` and each alert in turn, the criteria and evidence once."""
    messages = grouping.as_list(message)
    first = messages[0]
    mail = EmailMessage()
    mail["Subject"] = one_line(" ".join(filter(None, (channel.subject_prefix, f"{first.project}: {grouping.heading(messages)}"))), 200)
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail["Date"] = format_datetime(now)
    domain = channel.sender.rpartition("@")[2].strip("<> ") or "pillarwatch.invalid"
    mail["Message-ID"] = f"<{idempotency_key}@{domain}>"
    mail["X-Pillarwatch-Event"] = ", ".join(dict.fromkeys(m.event for m in messages))
    mail["X-Pillarwatch-Fingerprint"] = ", ".join(m.fingerprint for m in messages)
    mail.set_content(body(first) if len(messages) == 1 else group_body(messages))
    return mail


def body(message: AlertMessage) -> str:
    # The summary's own criteria and evidence lines are left to the sections below: each is said once.
    lines = [*grouping.notes(message), ""] if message.notes else [message.summary.strip(), ""]
    lines.append(f"Project: {message.project}    Subject: {message.subject}    Severity: {message.severity}")
    lines += _figures(message)
    return "\n".join(lines + _changes([message])) + "\n"


def group_body(messages: Sequence[AlertMessage]) -> str:
    """Every alert of a group, one paragraph each, then the criteria, evidence and links once for all."""
    lines = [f"{grouping.heading(messages).partition(':')[0]} for {messages[0].project}:", ""]
    for message in messages:
        notes = grouping.notes(message)
        lines.append(f"[{grouping.TAGS[message.event]}] {notes[0]}")
        lines += [f"  {note}" for note in notes[1:]]
        lines.append(f"  Subject: {message.subject}    Severity: {message.severity}")
        lines += [f"  {line}" for line in _figures(message)]
        lines.append("")
    return "\n".join(lines[:-1] + _changes(messages)) + "\n"


def _figures(message: AlertMessage) -> list[str]:
    lines = [f"Event: {message.event}    From {message.baseline_display} to {message.value_display}"]
    if message.event == "resolved" and message.low_display:
        low_at = f" on {rfc3339(message.low_at.replace(microsecond=0))}" if message.low_at else ""
        lines.append(f"Low point: {message.low_display}{low_at}    Recovered to: {message.value_display}")
    lines.append(f"Since: {rfc3339(message.started_at.replace(microsecond=0))}" + (f"    Snapshot: {message.snapshot_id}" if message.snapshot_id else ""))
    return lines


def _changes(messages: Sequence[AlertMessage]) -> list[str]:
    lines: list[str] = []
    criteria, evidence = grouping.criteria(messages), grouping.evidence(messages)
    if criteria:
        lines += ["", "Criteria that moved:"]
        for c in criteria:
            lines.append(f"  - {c.pillar} / {c.title}: {_score(c.before)} -> {_score(c.after)} ({c.status_before or '?'} -> {c.status_after})")
    if evidence:
        lines += ["", "Evidence that changed:"]
        lines += [f"  - {e.description}" + (f" <{e.url}>" if e.url else "") for e in evidence]
    shown = {e.url for e in evidence if e.url}
    links = [link for link in grouping.links(messages) if link not in shown]  # each link said once: an evidence line has its own
    if links:
        lines += ["", "Links:"] + [f"  {link}" for link in links]
    return lines


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _codes(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in recipients.items())


def _fault(where: str, detail: str, code: int | None, secrets: list[str | None]) -> SendResult:
    return failed(one_line(f"{where}: {scrub(detail, secrets)}", MESSAGE_LIMIT), retryable=True, status_code=code)
