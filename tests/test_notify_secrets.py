"""Secrets stay out of the database, the error texts and the logs, whatever the receivers answer."""

from __future__ import annotations

import json
import logging
import random
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from daemon.alerting.notify import (
    AppriseChannel,
    DeliveryReport,
    EmailChannel,
    LogChannel,
    SlackChannel,
    WebhookChannel,
    deliver_due,
)
from daemon.store import Store
from tests.support.alerts import T0, outbox_item
from tests.support.http_server import Reply
from tests.support.ports import free_port
from tests.support.smtp import Inbox

SECRETS = {
    "PW_T_HOOK_SECRET": "whsec_SG9va1NlY3JldEJ5dGVzRm9yVGhlVGVzdA==",
    "PW_T_SMTP_USER": "smtp-user-7781",
    "PW_T_SMTP_PASSWORD": "SmtpPassw0rdSecret",
}
URL_SECRETS = ["HookQueryToken123", "SlackPathToken456", "AppriseUserSecret", "ApprisePassSecret", "ApprisePathSecret789"]


def _echo(status: int):
    # A careless receiver that quotes the request line back in its error body.
    return lambda seen: Reply(status, f"cannot handle {seen.path}", headers={"Content-Type": "text/plain"})


@pytest.fixture
def smtp_port():
    port, inbox = free_port(), Inbox()
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
        assert store.disabled_channels() == {"slack": f"{base}/***: HTTP 410: cannot handle ***"}

    assert any(r.name == "httpx" for r in caplog.records) and any(r.name == "apprise" for r in caplog.records)
    assert any(r.name == "pillarwatch.alerts" for r in caplog.records)
    haystack = json.dumps(rows, default=str) + caplog.text
    for secret in [*SECRETS.values(), SECRETS["PW_T_HOOK_SECRET"].removeprefix("whsec_"), *URL_SECRETS]:
        assert secret not in haystack, secret


# --- redaction: only secrets go ----------------------------------------------------------

from collectors.secrets import redact_url, scrub, url_secrets  # noqa: E402


@pytest.mark.parametrize(
    ("url", "secret_url", "shown"),
    [
        # A plain webhook keeps its port and readable path; only the query's token goes.
        ("http://127.0.0.1:8080/parsing/request/body", False, "http://127.0.0.1:8080/parsing/request/body"),
        ("http://127.0.0.1:8080/hook?token=HookQueryToken123&team=ops", False, "http://127.0.0.1:8080/hook?token=***&team=ops"),
        ("https://bot:Passw0rd@alerts.example.org/in?api-key=k3y-value&sig=abcd", False, "https://alerts.example.org/in?api-key=***&sig=***"),
        ("https://alerts.example.org/hooks/a1B2c3D4e5F6g7H8i9J0k1L2", False, "https://alerts.example.org/hooks/***"),
        ("http://[::1]:9000/alerts", False, "http://[::1]:9000/alerts"),
        # A URL that is a secret as a whole: its path goes, its host and port stay.
        ("https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/SlackPathToken456xyzXYZ", True, "https://hooks.slack.com/***"),
        ("json://AppriseUserSecret:ApprisePassSecret@127.0.0.1:9000/ApprisePathSecret789", True, "json://127.0.0.1:9000/***"),
        ("tgram://123456789:AAHbotTokenValue/4242", True, "tgram://***/***"),
        ("not a url", False, "<invalid URL>"),
    ],
)
def test_redact_url(url: str, secret_url: bool, shown: str) -> None:
    assert redact_url(url, secret_path=secret_url) == shown


@pytest.mark.parametrize(
    ("url", "secret_url", "text", "scrubbed"),
    [
        ("http://127.0.0.1:8080/parsing/request/body", False, "error parsing request body", "error parsing request body"),
        ("http://127.0.0.1:8080/hook?token=HookQueryToken123", False, "bad token HookQueryToken123 for /hook",
         "bad token *** for /hook"),
        ("https://u:Passw0rd@example.org/x", False, "auth Passw0rd refused", "auth *** refused"),
        ("https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/SlackPathToken456", True,
         "POST /services/T0AAAAAAA/B0BBBBBBB/SlackPathToken456: invalid_token", "POST ***: invalid_token"),
        ("https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/SlackPathToken456", True,
         "no service for token SlackPathToken456", "no service for token ***"),
    ],
)
def test_scrub_hides_only_the_secrets_of_a_url(url: str, secret_url: bool, text: str, scrubbed: str) -> None:
    assert scrub(text, url_secrets(url, secret_path=secret_url)) == scrubbed
