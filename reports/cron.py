"""Cron expressions with a time zone: the latest fire time at or before an instant, and the next.

Five fields, ``minute hour day-of-month month day-of-week``, as in Vixie cron: ``*``, lists
(``1,15``), ranges (``1-5``), steps (``*/15``, ``8-18/2``), names (``MON``-``SUN``,
``JAN``-``DEC``, 0 or 7 for Sunday) and the macros ``@hourly @daily @weekly @monthly
@yearly``. When both day fields are restricted, a day matching either fires (Vixie's rule).

Times are wall-clock times in the job's zone. Across a daylight-saving change a job fires
once: a time skipped in spring fires an hour later, a time repeated in autumn fires at its
first occurrence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = {n: i + 1 for i, n in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
DAYS = {n: i for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
# How far to look for a fire time: a 29 February in some year, on a given weekday, is
# the rarest thing an expression can ask for.
SEARCH_DAYS = 366 * 8 + 2


class CronError(ValueError):
    pass


def _field(text: str, lo: int, hi: int, names: dict[str, int], what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
        except ValueError:
            raise CronError(f"{what}: step {step_text!r} is not a number") from None
        if step < 1:
            raise CronError(f"{what}: step must be at least 1")
        if body == "*":
            start, end = lo, hi
        else:
            first, _, last = body.partition("-")
            start = _value(first, lo, hi, names, what)
            end = _value(last, lo, hi, names, what) if last else (hi if step_text else start)
            if end < start:
                raise CronError(f"{what}: range {body!r} runs backwards")
        out.update(range(start, end + 1, step))
    return frozenset(out)


def _value(text: str, lo: int, hi: int, names: dict[str, int], what: str) -> int:
    upper = text.strip().upper()
    if upper in names:
        return names[upper]
    try:
        value = int(upper)
    except ValueError:
        raise CronError(f"{what}: {text!r} is neither a number nor a name") from None
    if not lo <= value <= hi:
        raise CronError(f"{what}: {value} is outside {lo}-{hi}")
    return value


@dataclass(frozen=True)
class Cron:
    """A parsed expression; ``previous`` and ``next_after`` take and return aware datetimes."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        expr = MACROS.get(text.strip().lower(), text.strip())
        fields = expr.split()
        if len(fields) != 5:
            raise CronError(f"{text!r}: expected 5 fields (minute hour day month weekday), "
                            f"got {len(fields)}")
        minute, hour, day, month, weekday = fields
        weekdays = _field(weekday, 0, 7, DAYS, "day of week")
        cron = cls(
            text=text.strip(),
            minutes=_field(minute, 0, 59, {}, "minute"),
            hours=_field(hour, 0, 23, {}, "hour"),
            days=_field(day, 1, 31, {}, "day of month"),
            months=_field(month, 1, 12, MONTHS, "month"),
            weekdays=frozenset(d % 7 for d in weekdays),
            days_restricted=day != "*",
            weekdays_restricted=weekday != "*",
        )
        probe = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        if cron.next_after(probe, ZoneInfo("UTC")) is None:
            raise CronError(f"{text!r} never fires")
        return cron

    def matches_date(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def _fires_on(self, day: dt.date, tz: ZoneInfo) -> list[dt.datetime]:
        out = []
        for hour in self.hours:
            for minute in self.minutes:
                local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
                out.append(local.astimezone(dt.UTC))
        return sorted(set(out))

    def previous(self, now: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
        """The latest fire time at or before ``now`` (in UTC), or None if none in 8 years."""
        today = now.astimezone(tz).date()
        for back in range(SEARCH_DAYS):
            day = today - dt.timedelta(days=back)
            if self.matches_date(day):
                fires = [f for f in self._fires_on(day, tz) if f <= now]
                if fires:
                    return fires[-1]
        return None

    def next_after(self, now: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
        """The earliest fire time strictly after ``now`` (in UTC)."""
        # A skipped spring time fires an hour later, so the day before may still hold one.
        today = now.astimezone(tz).date() - dt.timedelta(days=1)
        for ahead in range(SEARCH_DAYS):
            day = today + dt.timedelta(days=ahead)
            if self.matches_date(day):
                fires = [f for f in self._fires_on(day, tz) if f > now]
                if fires:
                    return fires[0]
        return None
