"""The app in a real browser: ``finops app`` on a loopback port, driven by headless Chromium.

Uses Debian's Chromium at /usr/bin/chromium (never a downloaded build); the test fails,
rather than skips, when it is missing. Screenshots of each page go to
``$FINOPS_TEST_ARTIFACTS`` (default: the test's tmp folder).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from tests.app.conftest import XSS, dollars, expected_total
from tests.app.orgdata import OWNER, build_org, write_access, write_model_outputs

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT = 60.0
WAIT_MS = 30_000
WIDTH = 1440
# Read at import: the autouse fixture in tests/conftest.py clears every FINOPS_* variable.
ARTIFACTS = os.environ.get("FINOPS_TEST_ARTIFACTS")

pytestmark = pytest.mark.browser


@dataclass
class Server:
    url: str
    home: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``finops app`` and the Streamlit server it started (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The Streamlit child may outlive its parent by a moment; it is in the same group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def serve(home: Path, log: Path) -> Iterator[Server]:
    """``finops app`` for ``home`` on a free loopback port, until the block ends."""
    port = _free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "finops.cli", "app", "--port", str(port), "--home", str(home)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    srv = Server(f"http://127.0.0.1:{port}", home, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, f"finops app exited with {proc.returncode}:\n{srv.output()}"
            try:
                with urllib.request.urlopen(f"{srv.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, f"the app did not answer in time:\n{srv.output()}"
            time.sleep(0.25)
        yield srv
    finally:
        _stop(proc)


@pytest.fixture
def server(warehouse: Path, tmp_path: Path) -> Iterator[Server]:
    write_model_outputs(warehouse)  # anomalies, forecasts, recommendations, query cost
    with serve(warehouse, tmp_path / "finops-app.log") as srv:
        yield srv


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(ARTIFACTS) if ARTIFACTS else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert CHROMIUM.is_file(), (f"{CHROMIUM} is missing: install Debian's chromium "
                                "(`make browser`); the browser tests never download one")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def settle(page: Page) -> None:
    """Wait until the script run is over (the 'Running…' status is gone)."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)


def assert_healthy(page: Page, server: Server, *, pipeline: bool = True) -> None:
    for test_id in ("stException", "stAlertContentError"):
        assert page.get_by_test_id(test_id).count() == 0, (
            f"{test_id} on the page:\n{page.get_by_test_id(test_id).all_inner_texts()}\n"
            f"server log:\n{server.output()}")
    # e.g. Streamlit's "Page not found" modal when a URL does not match a page
    assert page.get_by_role("dialog").count() == 0, page.get_by_role("dialog").all_inner_texts()
    # main.py ran (not the page alone): its navigation and user panel are in the sidebar
    sidebar = page.get_by_test_id("stSidebar")
    for name in ("Showback", "Trends and forecast", "Anomalies", "Unit economics", "Data health"):
        expect(sidebar.get_by_text(name, exact=True)).to_be_visible()
    if pipeline:
        expect(sidebar.get_by_text(str(server.home))).to_be_visible()


def full_page_screenshot(page: Page, path: Path) -> None:
    # Streamlit scrolls inside its main container, not the document: grow the viewport to it.
    height = page.evaluate(
        "() => Math.max(document.body.scrollHeight, ...Array.from(document.querySelectorAll("
        "'[data-testid=stMain], [data-testid=stAppViewContainer]'), e => e.scrollHeight))")
    page.set_viewport_size({"width": WIDTH, "height": int(height) + 40})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def test_pages_in_a_real_browser(server: Server, browser: Browser, artifacts: Path) -> None:
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
    dialogs: list[str] = []
    script_errors: list[str] = []

    def on_dialog(dialog: Dialog) -> None:  # an alert() would land here
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    # Showback, the default page at the root URL
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Showback", level=1)).to_be_visible(timeout=WAIT_MS)
    total = dollars(expected_total("2026-04", "effective"))
    values = page.get_by_test_id("stMetricValue")
    expect(values.filter(has_text=total)).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator(".js-plotly-plot")).to_have_count(1, timeout=WAIT_MS)
    settle(page)
    assert_healthy(page, server)
    # The HTML-looking tenant is drawn as literal text in the chart, and never ran.
    expect(page.locator(".js-plotly-plot text").filter(has_text=XSS)).to_have_count(1)
    assert page.locator("script").filter(has_text="alert(1)").count() == 0
    full_page_screenshot(page, artifacts / "app-showback.png")

    # Billed cost, through the real control
    page.set_viewport_size({"width": WIDTH, "height": 1000})
    page.get_by_test_id("stButtonGroup").get_by_role("radio", name="Billed", exact=True).click()
    expect(values.filter(has_text=dollars(expected_total("2026-04", "billed")))).to_have_count(
        1, timeout=WAIT_MS)
    settle(page)
    assert_healthy(page, server)

    # Data health, opened by its own URL (a bookmark), on a fresh page
    page.goto(server.url + "/data-health")
    expect(page.get_by_role("heading", name="Data health", level=1)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stMetricLabel").filter(has_text="Months with allocated cost")
           ).to_have_count(1, timeout=WAIT_MS)
    expect(page.get_by_role("heading", name="Reconciliation")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("heading", name="Tag coverage")).to_be_visible(timeout=WAIT_MS)
    settle(page)
    assert_healthy(page, server)
    full_page_screenshot(page, artifacts / "app-data-health.png")

    # The weekly report's link to a month's showback opens that month.
    page.goto(server.url + "/showback?period=2026-03&week=2026-W13")
    expect(values.filter(has_text=dollars(expected_total("2026-03", "effective")))).to_have_count(
        1, timeout=WAIT_MS)
    settle(page)
    assert_healthy(page, server)

    # Every other page by its URL (the weekly report links to them), with its main content.
    for path, heading, content in (
        ("forecast", "Trends and forecast", page.locator(".js-plotly-plot")),
        ("anomalies", "Anomalies", page.get_by_test_id("stDataFrame")),
        ("recommendations", "Recommendations", page.get_by_test_id("stDataFrame")),
        ("unit-economics", "Unit economics", page.locator(".js-plotly-plot")),
    ):
        page.set_viewport_size({"width": WIDTH, "height": 1000})
        page.goto(f"{server.url}/{path}")
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible(timeout=WAIT_MS)
        expect(content.first).to_be_visible(timeout=WAIT_MS)
        settle(page)
        assert_healthy(page, server)
        full_page_screenshot(page, artifacts / f"app-{path}.png")

    assert dialogs == [], f"the page opened browser dialogs: {dialogs}"
    assert script_errors == [], f"uncaught JavaScript errors: {script_errors}"


def test_sign_in_through_a_trusted_proxy(browser: Browser, tmp_path: Path, artifacts: Path) -> None:
    """Behind an authenticating proxy (on 127.0.0.1 here), the e-mail it sends in
    X-Forwarded-Email signs the user in; the owner of acme sees acme only."""
    home = build_org(tmp_path / "warehouse")
    write_access(home, 'identity = "proxy"\n[proxy]\nheader = "X-Forwarded-Email"\n'
                       'trusted = ["127.0.0.1", "::1"]\n')
    with serve(home, tmp_path / "finops-app.log") as server:
        owner = browser.new_context(viewport={"width": WIDTH, "height": 1000},
                                    extra_http_headers={"X-Forwarded-Email": OWNER})
        page = owner.new_page()
        page.goto(server.url + "/")
        expect(page.get_by_role("heading", name="Showback", level=1)).to_be_visible(timeout=WAIT_MS)
        values = page.get_by_test_id("stMetricValue")
        expect(values.filter(has_text="$1,455.55")).to_have_count(1, timeout=WAIT_MS)
        settle(page)
        assert_healthy(page, server, pipeline=False)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("Tenant owner", exact=False)).to_be_visible()
        text = page.locator("body").inner_text()
        for other in ("globex", "initech", "9,292.92", "26,607.04"):
            assert other not in text, f"{other} is shown to the owner of acme"
        full_page_screenshot(page, artifacts / "app-showback-tenant-owner.png")
        owner.close()

        # Without the proxy's header (someone reaching the port directly): nothing.
        stranger = browser.new_context(viewport={"width": WIDTH, "height": 1000})
        page = stranger.new_page()
        page.goto(server.url + "/")
        expect(page.get_by_test_id("stAlertContentError")).to_contain_text(
            "through the company sign-in", timeout=WAIT_MS)
        expect(page.get_by_test_id("stMetricValue")).to_have_count(0)
        stranger.close()
