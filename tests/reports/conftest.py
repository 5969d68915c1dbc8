from __future__ import annotations

import os
import shutil
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.reports import data
from tests.reports.smtp import Server, self_signed, server_context

# Read before the root conftest's autouse fixture clears every FINOPS_* variable.
ARTIFACTS = os.environ.get("FINOPS_TEST_ARTIFACTS")


@pytest.fixture(scope="session")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture warehouse, built once; tests that write get their own copy (``home``)."""
    return data.build(tmp_path_factory.mktemp("reports") / "warehouse", failed_source="azure-ea")


@pytest.fixture
def home(built_home: Path, tmp_path: Path) -> Path:
    target = tmp_path / "warehouse"
    shutil.copytree(built_home, target)
    return target


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return data.write_config(tmp_path / "reports.toml")


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(ARTIFACTS) if ARTIFACTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point FINOPS_SMTP__* at a test server (subprocesses inherit the environment)."""

    def point(server: Server, *, username: str | None = None, password: str | None = None,
              starttls: bool = False, ssl: bool = False) -> None:
        monkeypatch.setenv("FINOPS_SMTP__HOST", server.host)
        monkeypatch.setenv("FINOPS_SMTP__PORT", str(server.port))
        monkeypatch.setenv("FINOPS_SMTP__STARTTLS", str(starttls).lower())
        monkeypatch.setenv("FINOPS_SMTP__SSL", str(ssl).lower())
        monkeypatch.setenv("FINOPS_SMTP__SENDER", "finops-reports@example.org")
        monkeypatch.setenv("FINOPS_SMTP__TIMEOUT_SECONDS", "10")
        if username is not None:
            monkeypatch.setenv("FINOPS_SMTP__USERNAME", username)
        if password is not None:
            monkeypatch.setenv("FINOPS_SMTP__PASSWORD", password)

    return point


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate the client trusts
    (through SSL_CERT_FILE, which OpenSSL reads for the default trust store)."""
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    return server_context(cert, key)
