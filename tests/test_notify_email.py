"""The e-mail channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from daemon.alerting.notify import EmailChannel, email
from tests.support.alerts import T0, message
from tests.support.ports import free_port
from tests.support.smtp import Inbox

PASSWORD = "hunter2-very-secret"


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"alerts", PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticate, auth_require_tls=False)
    controller.start()
    yield inbox, port
    controller.stop()


def _channel(port: int, **extra: object) -> EmailChannel:
    return EmailChannel.model_validate({"id": "mail", "host": "127.0.0.1", "port": port, "starttls": False,
                                        "sender": "pillarwatch@example.org", "to": ["team@example.org", "lead@example.org"], **extra})


def test_a_message_arrives_with_subject_body_and_recipients(smtp_server) -> None:
    inbox, port = smtp_server
    result = email.send(_channel(port), message(), idempotency_key="pw_mail1", now=T0)
    assert result.ok and result.error is None
    [(sender, recipients, mail)] = inbox.received
    assert sender == "pillarwatch@example.org" and recipients == ["team@example.org", "lead@example.org"]
    assert mail["Subject"] == "[pillarwatch] shop: Durability fell from 91% to 74%"
    assert mail["To"] == "team@example.org, lead@example.org"
    assert mail["Message-ID"] == "<pw_mail1@example.org>"
    assert mail["X-Pillarwatch-Event"] == "firing"
    body = mail.get_content().replace("\r\n", "\n")  # SMTP carries CRLF line ends
    assert body.startswith("Durability fell from 91% to 74%.\nA drop of 17 points since 2026-03-01T08:00:00Z.\n")
    assert "Project: shop    Subject: pillar:durability    Severity: warning" in body
    assert "  - durability / Survives a restart: 1 -> 0 (pass -> fail)" in body
    assert "  - workflow durability.yml: success → failure, run 4812 <https://ci.example.org/runs/4812>" in body
    assert "  - tests/test_restart.py deleted in 3f2a1c9" in body
    assert body.count("https://ci.example.org/runs/4812") == 1 and "Links:" not in body  # said once, on its evidence


def test_login_uses_credentials_from_the_environment(smtp_server, monkeypatch) -> None:
    inbox, port = smtp_server
    channel = _channel(port, username_env="PW_SMTP_USER", password_env="PW_SMTP_PASSWORD")
    monkeypatch.setenv("PW_SMTP_USER", "alerts")
    monkeypatch.setenv("PW_SMTP_PASSWORD", PASSWORD)
    assert email.send(channel, message(), idempotency_key="pw_mail2", now=T0).ok
    assert len(inbox.received) == 1

    monkeypatch.setenv("PW_SMTP_PASSWORD", "wrong-" + PASSWORD)
    refused = email.send(channel, message(), idempotency_key="pw_mail3", now=T0)
    assert not refused.ok and refused.retryable and refused.status_code == 535
    assert refused.error.startswith(f"smtp://127.0.0.1:{port}: SMTPAuthenticationError 535")
    assert PASSWORD not in refused.error and len(inbox.received) == 1

    monkeypatch.delenv("PW_SMTP_PASSWORD")
    missing = email.send(channel, message(), idempotency_key="pw_mail4", now=T0)
    assert (missing.ok, missing.retryable, missing.error) == (
        False, True, "email mail: environment variable PW_SMTP_PASSWORD is not set")


def test_a_refused_connection_is_retryable() -> None:
    port = free_port()
    result = email.send(_channel(port), message(), idempotency_key="pw_mail5", now=T0)
    assert not result.ok and result.retryable
    assert result.error.startswith(f"smtp://127.0.0.1:{port}: ConnectionRefusedError")


def test_starttls_against_a_server_without_it_is_retryable(smtp_server) -> None:
    inbox, port = smtp_server
    result = email.send(_channel(port, starttls=True), message(), idempotency_key="pw_mail6", now=T0)
    assert not result.ok and result.retryable and "SMTPNotSupportedError" in result.error
    assert inbox.received == []


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_starttls_with_a_verified_certificate(tmp_path: Path, monkeypatch) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True,
                            authenticator=_authenticate)
    controller.start()
    try:
        # Without trusting the certificate the handshake fails, and that is retryable.
        untrusted = email.send(_channel(port, starttls=True), message(), idempotency_key="pw_tls0", now=T0)
        assert not untrusted.ok and untrusted.retryable and "SSLCertVerificationError" in untrusted.error
        # The client trusts the test's certificate through OpenSSL's own variable, nothing patched.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        monkeypatch.setenv("PW_SMTP_USER", "alerts")
        monkeypatch.setenv("PW_SMTP_PASSWORD", PASSWORD)
        channel = _channel(port, starttls=True, username_env="PW_SMTP_USER", password_env="PW_SMTP_PASSWORD")
        result = email.send(channel, message(), idempotency_key="pw_tls1", now=T0)
        assert result.ok, result.error
        [(_, _, mail)] = inbox.received
        assert mail["Message-ID"] == "<pw_tls1@example.org>"
    finally:
        controller.stop()


def test_some_recipients_refused_still_counts_as_delivered(smtp_server) -> None:
    inbox, port = smtp_server

    async def handle_RCPT(server, session, envelope, address, rcpt_options) -> str:
        if address.startswith("lead@"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    inbox.handle_RCPT = handle_RCPT  # type: ignore[attr-defined]
    result = email.send(_channel(port), message(), idempotency_key="pw_mail7", now=T0)
    assert result.ok and result.error == f"smtp://127.0.0.1:{port}: refused lead@example.org (550)"
    [(_, recipients, _)] = inbox.received
    assert recipients == ["team@example.org"]


def test_the_subject_names_the_project_after_its_prefix() -> None:
    mail = email.compose(_channel(25, subject_prefix="[arch]"), message(project="billing"), idempotency_key="k", now=T0)
    assert mail["Subject"] == "[arch] billing: Durability fell from 91% to 74%"
    bare = email.compose(_channel(25, subject_prefix=""), message(), idempotency_key="k", now=T0)
    assert bare["Subject"] == "shop: Durability fell from 91% to 74%"


def test_links_no_evidence_line_carries_are_listed() -> None:
    text = email.body(message(links=["https://ci.example.org/runs/4812", "https://ci.example.org/pipelines/7"]))
    assert text.endswith("Links:\n  https://ci.example.org/pipelines/7\n")
