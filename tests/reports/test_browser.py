"""The rendered e-mail in a real headless Chromium: it lays out, its charts load, no script runs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from finops.state import open_state
from finops.warehouse import Warehouse
from reports.build import IsoWeek, build_report, load_inputs
from reports.charts import render_charts
from reports.config import load_config
from reports.render import compose
from reports.weekly import write_preview
from tests.reports import data

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
def test_email_renders_in_chromium(built_home: Path, config_file: Path, tmp_path: Path,
                                   artifacts: Path) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium (make browser)"
    from playwright.sync_api import Dialog, sync_playwright

    config = load_config(config_file)
    state = open_state(built_home)
    try:
        inputs = load_inputs(Warehouse(built_home), state, IsoWeek.parse(data.WEEK), config,
                             now=dt.datetime(2026, 5, 11, 6, 0, tzinfo=dt.UTC))
    finally:
        state.close()
    pages = {}
    for who in ("cfo@example.com", "acme-owner@example.com"):
        report = build_report(inputs, config, config.recipient(who), who, "http://localhost:8501")
        render_charts(report)
        msg = compose(report, sender="finops@example.org", prefix="FinOps weekly report")
        paths = write_preview(report, msg.as_bytes(), tmp_path / "preview")
        pages[who] = paths[1]

    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            for who, html in pages.items():
                for width, label in ((720, "desktop"), (380, "phone")):
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    page.on("dialog", on_dialog)
                    page.goto(html.as_uri())
                    page.wait_for_load_state("load")
                    shot = artifacts / f"report-weekly-{who.split('@')[0]}-{label}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    assert shot.stat().st_size > 20_000
                    # The charts loaded: two images, each with pixels.
                    widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
                    assert widths == [1200, 1200], widths
                    # Nothing overflows sideways, even on a phone.
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    assert scroll <= width + 1, (who, label, scroll)
                    text = page.inner_text("body")
                    assert "Spend this week" in text and "Week 19" in text
                    if who == "cfo@example.com":
                        assert data.XSS in text  # shown as text ...
                    page.close()
        finally:
            browser.close()
    assert dialogs == []  # ... and never run
