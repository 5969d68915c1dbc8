"""``finops app``: serve the Streamlit app on 127.0.0.1, and :func:`serve` for ``finops demo``."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from finops.context import HomeOption
from finops.errors import BadInputError, ConfigError, StageError
from finops.progress import info
from finops.settings import load_settings

# Until authentication is configured (a later issue), the app is only reachable locally.
ADDRESS = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 10.0


def app_script() -> Path:
    """``app/main.py`` beside the installed ``finops`` package."""
    script = Path(__file__).resolve().parents[2] / "app" / "main.py"
    if not script.is_file():
        raise ConfigError(f"the app is not installed: {script} is missing",
                          hint="Reinstall the toolkit (`pip install -e .`) from a full checkout.")
    return script


def streamlit_command(home: Path, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(app_script()),
        "--server.address", ADDRESS,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--", "--home", str(home),
    ]


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server will: connections of a server just stopped (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ADDRESS, port))
        except OSError:
            raise BadInputError(f"port {port} on {ADDRESS} is already in use",
                                hint="Stop whatever serves it, or pass another --port.") from None


def serve(home: Path, port: int) -> None:
    """Run the app for the warehouse ``home`` on ``http://127.0.0.1:port`` until stopped.

    Blocks until the server exits. Ctrl-C or SIGTERM stops the server and returns; the
    server exiting on its own with an error raises :class:`StageError`.
    """
    if not 1 <= port <= 65535:
        raise BadInputError(f"--port {port} is not a TCP port", hint="Use 1 to 65535.")
    home = Path(home).expanduser().resolve()
    _check_port_free(port)
    command = streamlit_command(home, port)
    info(f"serving the app for {home} on http://{ADDRESS}:{port} (Ctrl-C stops it)")
    proc = subprocess.Popen(command)
    forwarding = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if forwarding else None
    if forwarding:
        signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    stopped = False
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # the server got the same SIGINT from the terminal
        stopped = True
        code = 0
    finally:
        if forwarding:
            signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if stopped or code in (0, -signal.SIGTERM, -signal.SIGINT):
        info("the app stopped")
        return
    raise StageError(f"the app server exited with code {code}",
                     hint="See the Streamlit output above for the reason.")


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @app.command("app")
    def app_cmd(
        port: Annotated[int | None, typer.Option(
            "--port", min=1, max=65535,
            help="Port on 127.0.0.1 (default: FINOPS_APP__PORT or 8501).", show_default=False,
        )] = None,
        home: HomeOption = None,
    ) -> None:
        """Serve the Streamlit app (showback, data health) on 127.0.0.1."""
        settings = load_settings(home=home)
        serve(settings.home, port if port is not None else settings.app.port)
