from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TZ", "UTC")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SAMPLES = SHARED / "data" / "samples"


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No test may read the developer's finops.toml or FINOPS_* environment.
    for name in list(os.environ):
        if name.startswith("FINOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FINOPS_CONFIG", str(tmp_path / "no-such-finops.toml"))


@pytest.fixture
def samples() -> Path:
    assert SAMPLES.is_dir(), f"the shared samples are missing at {SAMPLES}"
    return SAMPLES
