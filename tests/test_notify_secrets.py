"""Secrets stay out of the database, the error texts and the logs, whatever the receivers answer."""

from __future__ import annotations

import json
import logging
import random
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from daemon.notify import (AppriseChannel, DeliveryReport, EmailChannel, LogChannel, SlackChannel, WebhookChannel,
                           deliver_due)
from daemon.store import Store
from tests.conftest import Reply
from tests.test_notify_support import T0, free_port, outbox_item

SECRETS = {
    "PW_T_HOOK_SECRET": "whsec_SG9va1NlY3JldEJ5dGVzRm9yVGhlVGVzdA==",
    "PW_T_SMTP_USER": "smtp-user-7781",
    "PW_T_SMTP_PASSWORD": "SmtpPassw0rdSecret",
}
URL_SECRETS = ["HookQueryToken123", "SlackPathToken456", "AppriseUserSecret", "ApprisePassSecret", "ApprisePathSecret789"]


class _Inbox:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        return "250 OK"


def _echo(status: int):
    # A careless receiver that quotes the request line back in its error body.
    return lambda seen: Reply(status, f"cannot handle {seen.path}", headers={"Content-Type": "text/plain"})


@pytest.fixture
def smtp_port():
    port, inbox = free_port(), _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, auth_require_tls=False,
                            authenticator=lambda *args: AuthResult(success=False, handled=False))
    controller.start()
    yield port
    controller.stop()


def test_no_secret_reaches_the_store_the_errors_or_the_logs(tmp_path, http_server, smtp_port, monkeypatch, caplog) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    base = http_server.url
    monkeypatch.setenv("PW_T_SLACK_URL", f"{base}/services/T1/B2/SlackPathToken456")
    monkeypatch.setenv("PW_T_APPRISE_URL",
                       base.replace("http://", "json://AppriseUserSecret:ApprisePassSecret@") + "/ApprisePathSecret789")
    channels = {
        "hook": WebhookChannel(id="hook", url=f"{base}/hook?token=HookQueryToken123", secret_env="PW_T_HOOK_SECRET"),
        "slack": SlackChannel(id="slack", url_env="PW_T_SLACK_URL"),
        "mail": EmailChannel(id="mail", host="127.0.0.1", port=smtp_port, starttls=False, username_env="PW_T_SMTP_USER",
                             password_env="PW_T_SMTP_PASSWORD", sender="pw@example.org", to=["team@example.org"]),
        "ntfy": AppriseChannel(id="ntfy", url_env="PW_T_APPRISE_URL"),
        "log": LogChannel(id="log", level="info"),
    }
    # Every receiver fails first (one with a 410, so a channel_state row is written too), then the rest recover.
    for path, status in (("/hook", 500), ("/services/T1/B2/SlackPathToken456", 410), ("/ApprisePathSecret789", 503)):
        http_server.route(path, _echo(status))
    with Store.open(tmp_path / "pw.db") as store:
        store.enqueue([outbox_item(channel, f"pw_{channel}") for channel in channels])
        with caplog.at_level(logging.DEBUG):
            first = deliver_due(store, channels, now=T0, rng=random.Random(1))
            for path in ("/hook", "/ApprisePathSecret789"):
                http_server.route(path, Reply(200))
            second = deliver_due(store, channels, now=T0 + timedelta(hours=1), rng=random.Random(1))
        assert first == DeliveryReport(delivered=1, retry=3, disabled=1)
        assert second.delivered == 2 and second.retry == 1  # the mail server still refuses the login

        rows = {table: list(store.db.query(f"SELECT * FROM {table}"))
                for table in ("outbox", "delivery_attempts", "channel_state")}
        errors = [a["error"] for a in rows["delivery_attempts"] if a["error"]]
        assert len(errors) >= 4 and any("HTTP 500" in e for e in errors) and any("535" in e for e in errors)
        assert store.disabled_channels() == {"slack": "http://127.0.0.1: HTTP 410: cannot handle ***"}

    assert any(r.name == "httpx" for r in caplog.records) and any(r.name == "apprise" for r in caplog.records)
    assert any(r.name == "pillarwatch.alerts" for r in caplog.records)
    haystack = json.dumps(rows, default=str) + caplog.text
    for secret in [*SECRETS.values(), SECRETS["PW_T_HOOK_SECRET"].removeprefix("whsec_"), *URL_SECRETS]:
        assert secret not in haystack, secret
