"""The errors a user can hit, each with what was wrong, where, and what to do.

Expected errors are subclasses of :class:`FinopsError`; the CLI prints them without a
traceback and exits with their ``exit_code``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FinopsError(Exception):
    """Base of every error the toolkit expects a user may cause."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  → {self.hint}"


class BadInputError(FinopsError):
    """An input file or argument that cannot be used as it is (exit code 2)."""

    exit_code = 2

    @classmethod
    def missing_columns(
        cls, source: str, missing: Iterable[str], present: Iterable[str], *, what: str
    ) -> BadInputError:
        present_list = list(present)
        parts = []
        for name in sorted(missing):
            near = difflib.get_close_matches(name, present_list, n=2, cutoff=0.75)
            parts.append(f"{name} (did you mean {' or '.join(near)}?)" if near else name)
        return cls(
            f"{source}: missing required column(s): {', '.join(parts)}",
            hint=f"Export the file again with these columns, or check that it is a {what}.",
        )


class ConfigError(FinopsError):
    """A setting or config file that is missing or invalid (exit code 2)."""

    exit_code = 2


class StageError(FinopsError):
    """A pipeline stage that ran and failed (exit code 1)."""

    exit_code = 1


def near_names(name: str, candidates: Iterable[str]) -> str:
    """A "did you mean" suffix naming the closest candidates, or an empty string."""
    near = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
