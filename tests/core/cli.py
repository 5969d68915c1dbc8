"""Running the real ``finops`` command in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def finops(*args: str | Path, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "finops.cli", *map(str, args)],
        capture_output=True, text=True, check=False, timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def tree_snapshot(home: Path) -> dict[str, bytes]:
    """Every data file under the warehouse with its bytes (state.db aside)."""
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.startswith("state.db")
    }
