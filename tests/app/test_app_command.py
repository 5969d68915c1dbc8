"""``finops app``: the command it runs, where the app finds its warehouse, a busy port."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from app.context import home_argument, resolve_home
from finops.commands.app import ADDRESS, app_script, serve, streamlit_command
from finops.errors import BadInputError
from tests.app.conftest import APP_MAIN
from tests.core.cli import finops


def test_home_argument_after_double_dash() -> None:
    assert home_argument(["--home", "/w/a"]) == Path("/w/a")
    assert home_argument(["--home=/w/b"]) == Path("/w/b")
    assert home_argument(["-x", "--home", "/w/a", "--home", "/w/c"]) == Path("/w/c")
    assert home_argument([]) is None
    assert home_argument(["--home"]) is None


def test_command_line_wins_over_env_then_settings(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("FINOPS_HOME", str(tmp_path / "from-env"))
    assert resolve_home([]) == tmp_path / "from-env"
    assert resolve_home(["--home", str(tmp_path / "from-cli")]) == tmp_path / "from-cli"
    monkeypatch.delenv("FINOPS_HOME")
    monkeypatch.chdir(tmp_path)
    assert resolve_home([]) == tmp_path / "data" / "warehouse"  # the default, made absolute


def test_streamlit_command_binds_loopback_only(tmp_path: Path) -> None:
    command = streamlit_command(tmp_path, 8765)
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(command[4]) == app_script() == APP_MAIN
    options = command[5:command.index("--")]
    assert dict(zip(options[::2], options[1::2], strict=True)) == {
        "--server.address": "127.0.0.1", "--server.port": "8765", "--server.headless": "true",
        "--browser.gatherUsageStats": "false"}
    assert command[command.index("--"):] == ["--", "--home", str(tmp_path)]


def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind((ADDRESS, 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(BadInputError, match=f"port {port} on 127.0.0.1 is already in use"):
            serve(tmp_path, port)
        proc = finops("app", "--port", str(port), "--home", tmp_path)
    assert proc.returncode == 2
    assert "already in use" in proc.stderr and "Traceback" not in proc.stderr


def test_app_command_is_registered() -> None:
    proc = finops("app", "--help", check=True)
    assert "--port" in proc.stdout and "--home" in proc.stdout


def test_no_legacy_pages_folder() -> None:
    # A `pages/` folder beside app/main.py makes Streamlit run a page opened by its URL as a
    # v1 multipage app, without main.py (no navigation, no page setup): keep it out.
    assert not (APP_MAIN.parent / "pages").exists()
