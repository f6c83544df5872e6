"""E-mail over SMTP: a plain-text message, STARTTLS when asked, credentials from the environment.

The Message-ID comes from the idempotency key, so a copy sent again after a
lost reply threads with (and can be dropped as) the first one.
"""

from __future__ import annotations

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from collectors.secrets import one_line, read_secret, scrub
from daemon.alerting.notify._common import MESSAGE_LIMIT, SendResult, failed
from daemon.alerting.rules import AlertMessage
from daemon.config.alerts import EmailChannel
from daemon.scoring.snapshot import rfc3339


def send(channel: EmailChannel, message: AlertMessage, *, idempotency_key: str, now: datetime) -> SendResult:
    """Hand the message to the channel's SMTP server; every SMTP or network fault is retryable."""
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


def compose(channel: EmailChannel, message: AlertMessage, *, idempotency_key: str, now: datetime) -> EmailMessage:
    """The e-mail: ``[pillarwatch] project: title`` as Subject, then summary, criteria, evidence and links as plain text."""
    mail = EmailMessage()
    mail["Subject"] = one_line(" ".join(filter(None, (channel.subject_prefix, f"{message.project}: {message.title}"))), 200)
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail["Date"] = format_datetime(now)
    domain = channel.sender.rpartition("@")[2].strip("<> ") or "pillarwatch.invalid"
    mail["Message-ID"] = f"<{idempotency_key}@{domain}>"
    mail["X-Pillarwatch-Event"] = message.event
    mail["X-Pillarwatch-Fingerprint"] = message.fingerprint
    mail.set_content(body(message))
    return mail


def body(message: AlertMessage) -> str:
    lines = [message.summary.strip(), ""]
    lines.append(f"Project: {message.project}    Subject: {message.subject}    Severity: {message.severity}")
    lines.append(f"Event: {message.event}    From {message.baseline_display} to {message.value_display}")
    lines.append(f"Since: {rfc3339(message.started_at.replace(microsecond=0))}" + (f"    Snapshot: {message.snapshot_id}" if message.snapshot_id else ""))
    if message.criteria:
        lines += ["", "Criteria that moved:"]
        for c in message.criteria:
            lines.append(f"  - {c.pillar} / {c.title}: {_score(c.before)} -> {_score(c.after)} ({c.status_before or '?'} -> {c.status_after})")
    if message.evidence:
        lines += ["", "Evidence that changed:"]
        lines += [f"  - {e.description}" + (f" <{e.url}>" if e.url else "") for e in message.evidence]
    shown = {e.url for e in message.evidence if e.url}
    links = [link for link in message.links if link not in shown]  # each link said once: an evidence line has its own
    if links:
        lines += ["", "Links:"] + [f"  {link}" for link in links]
    return "\n".join(lines) + "\n"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _codes(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in recipients.items())


def _fault(where: str, detail: str, code: int | None, secrets: list[str | None]) -> SendResult:
    return failed(one_line(f"{where}: {scrub(detail, secrets)}", MESSAGE_LIMIT), retryable=True, status_code=code)
