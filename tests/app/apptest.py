"""Driving the app in-process with Streamlit's AppTest, and reading what it rendered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Dataframe, Element, Metric

from tests.app.conftest import APP_MAIN

TIMEOUT = 60.0


def run_app(monkeypatch: pytest.MonkeyPatch, home: Path, page: str | None = None, *,
            errors_expected: bool = False) -> AppTest:
    """The app's main script run for ``home`` (through FINOPS_HOME), then on ``page``.

    Fails if the page raised, or showed an ``st.error`` unless ``errors_expected``.
    """
    monkeypatch.setenv("FINOPS_HOME", str(home))
    at = AppTest.from_file(str(APP_MAIN), default_timeout=TIMEOUT)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert_no_exception(at, errors_expected=errors_expected)
    return at


def assert_no_exception(at: AppTest, *, errors_expected: bool = False) -> None:
    assert not at.exception, "the page raised:\n" + "\n".join(
        f"{e.message}\n{''.join(e.stack_trace)}" for e in at.exception)
    if not errors_expected:
        assert not at.error, f"the page shows an error: {[e.value for e in at.error]}"


def metric(at: AppTest, label_start: str) -> Metric:
    found = [m for m in at.metric if m.label.startswith(label_start)]
    assert len(found) == 1, f"no single metric {label_start!r} in {[m.label for m in at.metric]}"
    return found[0]


def elements(at: AppTest) -> Iterator[Element]:
    for root in (at.main, at.sidebar):
        for node in root:
            if not isinstance(node, Block):
                yield node


def non_table_elements(at: AppTest) -> Iterator[Element]:
    """Every element that is not a data table: where text could be read as markup."""
    return (e for e in elements(at) if not isinstance(e, Dataframe))
