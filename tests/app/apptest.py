"""Driving the app in-process with Streamlit's AppTest, and reading what it rendered."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Dataframe, Element, Metric

from tests.app.conftest import APP_MAIN

TIMEOUT = 60.0


def run_app(monkeypatch: pytest.MonkeyPatch, home: Path, page: str | None = None, *,
            errors_expected: bool = False, user: str | None = None) -> AppTest:
    """The app's main script run for ``home`` (through FINOPS_HOME), then on ``page``.

    ``user``: sign in through OIDC as this e-mail (Streamlit's ``st.user``, as AppTest
    seeds it; the warehouse's access config must say ``identity = "oidc"``).
    Fails if the page raised, or showed an ``st.error`` unless ``errors_expected``.
    """
    monkeypatch.setenv("FINOPS_HOME", str(home))
    at = AppTest.from_file(str(APP_MAIN), default_timeout=TIMEOUT)
    if user is not None:
        at.user = {"is_logged_in": True, "email": user, "name": user.split("@")[0]}
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


def every_element(at: AppTest) -> Iterator[Element]:
    """Every element of the main area and the sidebar, tables included."""
    for root in (at.main, at.sidebar):
        for node in root:
            if not isinstance(node, Block):
                yield node


def element_text(element: Element) -> str:
    """What an element carries, as text: a table's cells as CSV, anything else its message
    (labels, values, options, help, chart specs)."""
    if isinstance(element, Dataframe):
        return str(element.value.to_csv(index=False))
    return str(element.proto)


@dataclass
class Download:
    file_name: str | None
    mimetype: str | None
    data: bytes

    def text(self) -> str:
        """CSV as is; an Excel workbook's shared strings and sheet cells unzipped."""
        if not self.data.startswith(b"PK"):
            return self.data.decode("utf-8", errors="replace")
        with zipfile.ZipFile(io.BytesIO(self.data)) as book:
            return "\n".join(book.read(n).decode("utf-8", errors="replace")
                             for n in book.namelist() if n.endswith(".xml"))


def capture_downloads(monkeypatch: pytest.MonkeyPatch) -> list[Download]:
    """Every file the app hands to a download button (deferred ones generated at once)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    found: list[Download] = []
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def capture_add(self: MediaFileManager, path_or_data: bytes | str, mimetype: str,
                    coordinates: str, file_name: str | None = None,
                    is_for_static_download: bool = False) -> str:
        if is_for_static_download and isinstance(path_or_data, bytes):
            found.append(Download(file_name, mimetype, path_or_data))
        return add(self, path_or_data, mimetype, coordinates, file_name, is_for_static_download)

    def capture_deferred(self: MediaFileManager, data_callable: Any, mimetype: str | None,
                         coordinates: str, file_name: str | None = None, *,
                         element_id: str = "") -> str:
        payload = data_callable()
        found.append(Download(file_name, mimetype,
                              payload.encode() if isinstance(payload, str) else bytes(payload)))
        return add_deferred(self, data_callable, mimetype, coordinates, file_name,
                            element_id=element_id)

    monkeypatch.setattr(MediaFileManager, "add", capture_add)
    monkeypatch.setattr(MediaFileManager, "add_deferred", capture_deferred)
    return found
