"""A real SMTP server on loopback (aiosmtpd), optionally with TLS and AUTH, for the tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated: bool
    tls: bool

    @property
    def message(self) -> EmailMessage:
        msg = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Handler:
    reject: set[str] = field(default_factory=set)  # addresses answered with 550
    transient: int = 0  # answer this many DATA commands with 451 first
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower() in self.reject:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.transient > 0:
            self.transient -= 1
            return "451 4.3.0 temporarily unavailable, try again"
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      bytes(envelope.original_content or envelope.content),
                                      bool(session.authenticated),
                                      server.transport.get_extra_info("ssl_object") is not None))
        return "250 2.0.0 accepted"


@dataclass
class Server:
    host: str
    port: int
    handler: Handler

    @property
    def received(self) -> list[Received]:
        return self.handler.received


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost that is its own CA: (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "finops test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=False, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@contextmanager
def smtp_server(handler: Handler | None = None, *, credentials: tuple[str, str] | None = None,
                starttls: ssl.SSLContext | None = None, implicit_tls: ssl.SSLContext | None = None,
                ) -> Iterator[Server]:
    """Serve on 127.0.0.1 on a free port until the block ends.

    ``credentials`` makes AUTH required, and so TLS before it: give ``starttls`` (the
    client must upgrade) or ``implicit_tls`` (TLS from the first byte) with them.
    """
    handler = handler or Handler()
    kwargs: dict[str, Any] = {}
    if credentials is not None:
        user, password = credentials

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         auth_data: Any) -> AuthResult:
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            return AuthResult(success=ok, handled=False)

        assert starttls is not None or implicit_tls is not None, "AUTH needs TLS here"
        if implicit_tls is not None:
            # aiosmtpd only counts STARTTLS as TLS for AUTH; the whole session is TLS here.
            kwargs.update(authenticator=authenticate, auth_required=False, auth_require_tls=False)
        else:
            kwargs.update(authenticator=authenticate, auth_required=True, auth_require_tls=True)
    if starttls is not None:
        kwargs.update(tls_context=starttls, require_starttls=True)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=implicit_tls,
                            server_hostname="127.0.0.1", **kwargs)
    controller.start()
    try:
        yield Server("127.0.0.1", port, handler)
    finally:
        controller.stop()
