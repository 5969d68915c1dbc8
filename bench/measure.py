"""Measuring a command as a user runs it: wall time and the peak RSS of its process."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Measured:
    wall_seconds: float
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


def run_child(args: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``args`` in a fresh child process; peak RSS is that child's own high-water mark."""
    wrapper = (
        "import resource, subprocess, sys;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
        "sys.exit(p.returncode)"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False)
    wall = time.perf_counter() - start
    *rest, last = proc.stderr.rstrip("\n").split("\n")
    return Measured(wall, int(last) / 1024, proc.returncode, proc.stdout, "\n".join(rest))


def finops_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "finops.cli", *args]


def self_peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
