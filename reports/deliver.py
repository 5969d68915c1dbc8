"""Sending over SMTP: STARTTLS or implicit TLS, authentication, retries with backoff.

Settings come from ``settings.smtp`` (``FINOPS_SMTP__HOST``, ``__PORT``, ``__USERNAME``,
``__PASSWORD``, ``__STARTTLS``, ``__SSL``, ``__SENDER``). Certificates are verified against
the system's trust store (``SSL_CERT_FILE`` names another bundle). The password is only
handed to ``smtplib.SMTP.login``; every error text is scrubbed of it before it is logged,
shown or stored, and credentials are never sent over an unencrypted connection except to
a loopback address.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage

from finops.settings import SmtpSettings

log = logging.getLogger("finops.reports")


class DeliveryError(Exception):
    """A message that could not be delivered; ``transient`` when retrying may help."""

    def __init__(self, message: str, *, transient: bool, attempts: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.attempts = attempts


def _is_loopback(host: str) -> bool:
    if host in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpSender:
    def __init__(self, smtp: SmtpSettings, *, attempts: int = 4, backoff_seconds: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.smtp = smtp
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    @property
    def describe(self) -> str:
        s = self.smtp
        mode = "implicit TLS" if s.ssl else "STARTTLS" if s.starttls else "no TLS"
        auth = f", auth as {s.username}" if s.username else ""
        return f"{s.host}:{s.port} ({mode}{auth})"

    # ---- secrets out of every message ------------------------------------------------
    def scrub(self, text: str) -> str:
        secret = self.smtp.password.get_secret_value() if self.smtp.password else ""
        if not secret:
            return text
        user = self.smtp.username or ""
        forms = {
            secret,
            base64.b64encode(secret.encode()).decode(),
            base64.b64encode(f"\0{user}\0{secret}".encode()).decode(),
        }
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text

    # ---- sending ---------------------------------------------------------------------
    def send(self, msg: EmailMessage) -> int:
        """Send ``msg``; returns the attempts it took. Raises DeliveryError when it gives up."""
        to = str(msg["To"])
        for attempt in range(1, self.attempts + 1):
            try:
                self._send_once(msg)
                return attempt
            except DeliveryError as exc:
                exc.message = self.scrub(exc.message)
                if not exc.transient or attempt == self.attempts:
                    if exc.transient:
                        exc.message = f"{exc.message} (gave up after {attempt} attempts)"
                    raise DeliveryError(exc.message, transient=exc.transient,
                                        attempts=attempt) from None
                wait = self.backoff_seconds * 2 ** (attempt - 1)
                log.warning("sending to %s failed (%s); attempt %d of %d, retrying in %.1fs",
                            to, exc.message, attempt, self.attempts, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")

    def _send_once(self, msg: EmailMessage) -> None:
        try:
            self._transmit(msg)
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"the SMTP server refused the login for {self.smtp.username!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)} (check FINOPS_SMTP__USERNAME and "
                "FINOPS_SMTP__PASSWORD)", transient=False) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{rcpt}: {code} {_text(text)}"
                               for rcpt, (code, text) in exc.recipients.items())
            raise DeliveryError(f"recipient refused: {detail}",
                                transient=all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"the SMTP server does not support this: {exc}",
                                transient=False) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"the SMTP server answered {exc.smtp_code} "
                                f"{_text(exc.smtp_error)}",
                                transient=400 <= exc.smtp_code < 500) from None
        except ssl.SSLError as exc:
            raise DeliveryError(
                f"TLS with {self.smtp.host}:{self.smtp.port} failed: {exc.reason or exc} (for a "
                "private CA, point SSL_CERT_FILE at its bundle)", transient=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnections, refused or timed-out connections, name resolution: may pass.
            raise DeliveryError(f"cannot talk to {self.smtp.host}:{self.smtp.port}: "
                                f"{type(exc).__name__}: {exc}", transient=True) from None

    def _transmit(self, msg: EmailMessage) -> None:
        s = self.smtp
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if s.ssl:
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds, context=context)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
        with client:
            client.ehlo_or_helo_if_needed()
            encrypted = s.ssl
            if not s.ssl and s.starttls:
                if not client.has_extn("starttls"):
                    raise DeliveryError(
                        f"{s.host}:{s.port} does not offer STARTTLS (use the server's TLS port "
                        "with FINOPS_SMTP__SSL=true, or FINOPS_SMTP__STARTTLS=false on a trusted "
                        "network)", transient=False)
                client.starttls(context=context)
                client.ehlo()
                encrypted = True
            if s.username:
                if not encrypted and not _is_loopback(s.host):
                    raise DeliveryError(
                        f"refusing to send the SMTP password to {s.host} without TLS: enable "
                        "FINOPS_SMTP__STARTTLS or FINOPS_SMTP__SSL", transient=False)
                password = s.password.get_secret_value() if s.password else ""
                client.login(s.username, password)
            client.send_message(msg)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

