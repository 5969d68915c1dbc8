"""SmtpSender against real loopback servers: STARTTLS+AUTH, implicit TLS, retries, secrets."""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage

import pytest
from pydantic import SecretStr

from finops.settings import SmtpSettings
from reports.deliver import DeliveryError, SmtpSender
from tests.reports.smtp import Handler, smtp_server

USER, PASSWORD = "bot", "correct-horse-battery-staple-42"


def message(to: str = "someone@example.com") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "finops@example.org"
    msg["To"] = to
    msg["Subject"] = "test"
    msg.set_content("hello")
    return msg


def settings(port: int, **kw: object) -> SmtpSettings:
    return SmtpSettings.model_validate({"host": "127.0.0.1", "port": port, "timeout_seconds": 10,
                                        "sender": "finops@example.org", **kw})


def test_starttls_and_auth(tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(credentials=(USER, PASSWORD), starttls=tls) as server:
        sender = SmtpSender(settings(server.port, username=USER, password=SecretStr(PASSWORD),
                                     starttls=True))
        assert sender.send(message()) == 1
        (got,) = server.received
        assert got.authenticated and got.tls and got.rcpt_tos == ["someone@example.com"]
        assert PASSWORD not in repr(sender.smtp) and PASSWORD not in sender.describe
    assert PASSWORD not in caplog.text


def test_implicit_tls(tls: ssl.SSLContext) -> None:
    with smtp_server(credentials=(USER, PASSWORD), implicit_tls=tls) as server:
        sender = SmtpSender(settings(server.port, username=USER, password=SecretStr(PASSWORD),
                                     ssl=True, starttls=False))
        sender.send(message())
        assert server.received[0].authenticated and server.received[0].tls


def test_untrusted_certificate_fails_at_once(tls: ssl.SSLContext,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent-bundle.pem")
    monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent-dir")
    slept: list[float] = []
    with smtp_server(credentials=(USER, PASSWORD), starttls=tls) as server:
        sender = SmtpSender(settings(server.port, username=USER, password=SecretStr(PASSWORD)),
                            sleep=slept.append)
        with pytest.raises(DeliveryError, match=r"TLS with 127\.0\.0\.1") as info:
            sender.send(message())
        assert not info.value.transient and not slept and not server.received


def test_transient_failures_are_retried_with_backoff() -> None:
    slept: list[float] = []
    with smtp_server(Handler(transient=2)) as server:
        sender = SmtpSender(settings(server.port, starttls=False), attempts=4, backoff_seconds=0.5,
                            sleep=slept.append)
        assert sender.send(message()) == 3
        assert slept == [0.5, 1.0]
        assert len(server.received) == 1


def test_transient_failures_give_up_after_the_attempts() -> None:
    slept: list[float] = []
    with smtp_server(Handler(transient=5)) as server:
        sender = SmtpSender(settings(server.port, starttls=False), attempts=2, backoff_seconds=0,
                            sleep=slept.append)
        with pytest.raises(DeliveryError, match=r"451.*gave up after 2 attempts") as info:
            sender.send(message())
        assert info.value.transient and info.value.attempts == 2 and not server.received


def test_permanent_refusal_is_not_retried() -> None:
    slept: list[float] = []
    with smtp_server(Handler(reject={"gone@example.com"})) as server:
        sender = SmtpSender(settings(server.port, starttls=False), sleep=slept.append)
        with pytest.raises(DeliveryError, match="550") as info:
            sender.send(message("gone@example.com"))
        assert not info.value.transient and not slept


def test_starttls_missing_is_an_error_not_a_downgrade() -> None:
    with smtp_server() as server:  # offers no STARTTLS
        sender = SmtpSender(settings(server.port, username=USER, password=SecretStr(PASSWORD),
                                     starttls=True), sleep=lambda _: None)
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            sender.send(message())
        assert not server.received


def test_scrub_removes_every_form_of_the_password() -> None:
    sender = SmtpSender(settings(25, username=USER, password=SecretStr(PASSWORD)))
    import base64

    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    text = sender.scrub(f"535 bad {PASSWORD} / {plain}")
    assert PASSWORD not in text and plain not in text and text.count("***") == 2
