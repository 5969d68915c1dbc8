"""Progress for long work: a live bar on a terminal, one line per step otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

console = Console(stderr=True, highlight=False, soft_wrap=True)


class Step(Protocol):
    def advance(self, description: str | None = None) -> None: ...


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task

    def advance(self, description: str | None = None) -> None:
        self.progress.update(self.task, advance=1, description=description)


class _Lines:
    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0

    def advance(self, description: str | None = None) -> None:
        self.done += 1
        print(f"{self.label}: {self.done}/{self.total} {description or ''}".rstrip(),
              file=sys.stderr, flush=True)


@contextmanager
def progress(label: str, total: int) -> Iterator[Step]:
    if console.is_terminal:
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=False,
        ) as bar:
            yield _Bar(bar, bar.add_task(label, total=total))
    else:
        yield _Lines(label, total)


def info(message: str) -> None:
    console.print(message, markup=False)
