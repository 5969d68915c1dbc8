"""Rendering: every untrusted string escaped and capped; the MIME structure."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl

from finops.state import open_state
from finops.warehouse import Warehouse
from reports.build import IsoWeek, build_report, load_inputs
from reports.charts import render_charts
from reports.config import ReportsConfig, load_config
from reports.render import compose, render_html, render_text
from tests.reports import data

LONG = "i-" + "verylongresourcename" * 20
HOSTILE_RESOURCE = '"><script>alert("r")</script>'


def _finance_report(home: Path, config: ReportsConfig) -> tuple[str, str]:
    state = open_state(home)
    try:
        inputs = load_inputs(Warehouse(home), state, IsoWeek.parse(data.WEEK), config,
                             now=dt.datetime(2026, 5, 11, tzinfo=dt.UTC))
    finally:
        state.close()
    report = build_report(inputs, config, None, "cfo@example.com", "http://localhost:8501")
    return render_html(report, {}), render_text(report)


def test_hostile_strings_are_escaped_and_capped(home: Path, config_file: Path) -> None:
    wh = Warehouse(home)
    recs = data.RECOMMENDATIONS.with_columns(
        pl.when(pl.col("recommendation_id") == "r2").then(pl.lit(LONG))
        .when(pl.col("recommendation_id") == "r1").then(pl.lit(HOSTILE_RESOURCE))
        .otherwise(pl.col("resource_id")).alias("resource_id"))
    wh.replace_partition("recommendations", {"as_of": "2026-05-11"}, recs, run_id="t")
    config = load_config(config_file)
    html, text = _finance_report(home, config)

    # The tenant tag value <img src=x onerror=alert(1)> is text, never markup.
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert data.XSS in text  # plain text shows it as it is: it cannot run there
    # Long names are cut to max_label_length, with an ellipsis.
    limit = config.max_label_length
    assert LONG not in html and LONG not in text
    assert LONG[: limit - 1] + "…" in html
    # Every <img> in the HTML is a chart.
    assert html.count("<img ") == html.count('alt="Weekly spend') + html.count('alt="Cumulative')


def test_mime_structure_and_content_ids(built_home: Path, config_file: Path) -> None:
    config = load_config(config_file)
    state = open_state(built_home)
    try:
        inputs = load_inputs(Warehouse(built_home), state, IsoWeek.parse(data.WEEK), config)
    finally:
        state.close()
    report = build_report(inputs, config, config.recipient("acme-owner@example.com"),
                          "acme-owner@example.com", "http://localhost:8501")
    render_charts(report)
    msg = compose(report, sender="FinOps <finops@example.org>", prefix="Weekly")
    assert msg.get_content_type() == "multipart/alternative"
    plain, related = list(msg.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, *images = list(related.iter_parts())
    html = str(html_part.get_content())
    assert len(images) == 2
    for image in images:
        assert image.get_content_type() == "image/png"
        assert image.get_content_disposition() == "inline"
        cid = str(image["Content-ID"])
        assert cid.startswith("<") and f"cid:{cid[1:-1]}" in html
    assert msg["To"] == "acme-owner@example.com"
    assert str(msg["Subject"]).startswith("Weekly 2026-W19 · $1,081.75")
    assert str(msg["Subject"]).endswith("· acme")
    assert msg["Message-ID"] and msg["Date"]
    # Money in the subject and body is the tenant's own, to the cent.
    acme = data.expected(["acme"], data.MONDAY, data.SUNDAY)
    assert f"${data.money(acme)}" in html
    assert acme == Decimal("1081.75")
