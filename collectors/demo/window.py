"""The demo's time window: whole calendar months up to a month-to-date last month.

Days are addressed by their index from the window's first day; everything that varies
over time (seasonality, growth, anomalies, lifecycles) is an array over that index.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import polars as pl

from finops.focus import TIMESTAMP

UTC = dt.UTC
# Mean month length, so "x % per month" growth compounds smoothly day by day.
DAYS_PER_MONTH = 30.4375


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class Period:
    """One billing period (calendar month) and the window days it holds."""

    index: int
    label: str  # YYYY-MM, the partition value
    start: dt.date  # first day of the month
    end: dt.date  # first day of the next month (FOCUS periods end exclusively)
    first_day: int  # window index of the first day with data
    last_day: int  # window index of the last day with data (inclusive)
    closed: bool  # the month is over, so its invoice exists

    @property
    def n_days(self) -> int:
        return self.last_day - self.first_day + 1

    @property
    def days_in_month(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True)
class Window:
    start: dt.date
    end: dt.date  # last day with data, inclusive

    @classmethod
    def ending(cls, end: dt.date, months: int) -> Window:
        if months < 1:
            raise ValueError(f"months must be at least 1, not {months}")
        return cls(add_months(month_start(end), -(months - 1)), end)

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    def index(self, day: dt.date) -> int:
        return (day - self.start).days

    @cached_property
    def periods(self) -> tuple[Period, ...]:
        out = []
        first = self.start
        n = 0
        while first <= self.end:
            nxt = add_months(first, 1)
            last = min(nxt - dt.timedelta(days=1), self.end)
            out.append(
                Period(n, f"{first:%Y-%m}", first, nxt, self.index(first), self.index(last),
                       closed=last == nxt - dt.timedelta(days=1))
            )
            first, n = nxt, n + 1
        return tuple(out)

    @cached_property
    def weekday(self) -> npt.NDArray[np.int8]:
        """Monday = 0, per window day."""
        return ((np.arange(self.n_days) + self.start.weekday()) % 7).astype(np.int8)

    @cached_property
    def months_elapsed(self) -> npt.NDArray[np.float64]:
        return np.arange(self.n_days, dtype=np.float64) / DAYS_PER_MONTH

    @cached_property
    def days_in_month(self) -> npt.NDArray[np.float64]:
        out = np.empty(self.n_days, dtype=np.float64)
        for p in self.periods:
            out[p.first_day : p.last_day + 1] = p.days_in_month
        return out

    @cached_property
    def period_of_day(self) -> npt.NDArray[np.int16]:
        out = np.empty(self.n_days, dtype=np.int16)
        for p in self.periods:
            out[p.first_day : p.last_day + 1] = p.index
        return out

    @cached_property
    def midnights(self) -> pl.Series:
        """Midnight UTC of every window day plus the day after the last: index d is the
        start of day d and the end of day d - 1."""
        return pl.Series(
            "midnight",
            [midnight(self.day(i)) for i in range(self.n_days + 1)],
            dtype=TIMESTAMP,
        )
