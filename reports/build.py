"""The weekly report's content: figures for one recipient's scope, no formatting.

:func:`load_inputs` reads the warehouse once per run; :func:`build_report` turns those
inputs into one :class:`WeeklyReport` per recipient, filtering every figure through the
recipient's :class:`~reports.scope.Scope` first. Untrusted text (tag values, resource
names, messages) is cleaned and capped here, so every renderer gets safe-length strings.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

import polars as pl

from finops.errors import BadInputError
from finops.state import State
from finops.warehouse import Warehouse
from reports import sources
from reports.config import Recipient, ReportsConfig
from reports.scope import Scope, scope_for

ZERO = Decimal(0)
TREND_WEEKS = 8
AVERAGE_WEEKS = 4
RUN_RATE_DAYS = 7
MAX_CAUSES = 4
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
SECTION_ORDER = {
    "finance": ("spend", "movers", "anomalies", "month", "recommendations"),
    "tenant_owner": ("spend", "movers", "anomalies", "month", "recommendations"),
    "platform": ("recommendations", "anomalies", "spend", "movers", "month"),
    "viewer": ("spend", "movers", "anomalies", "month"),
}
SECTION_TITLES = {
    "spend": "Spend this week", "movers": "What moved", "anomalies": "Anomalies",
    "month": "Month to date, forecast and budget", "recommendations": "Top recommendations",
}
DIMENSION_LABELS = {"service_account": "service × account", "total": "all spend",
                    "account": "account", "service": "service", "tenant": "tenant",
                    "provider": "provider"}
COST_LABELS = {"effective_cost": "effective (amortised) cost", "billed_cost": "billed cost"}
_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$", re.IGNORECASE)
# Bidirectional overrides and isolates can make text read differently from what it is.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


def clean(value: object, limit: int) -> str:
    """One line of printable text, at most ``limit`` characters (an ellipsis marks a cut)."""
    text = "" if value is None else str(value)
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" or c in _BIDI else c for c in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---- the week --------------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class IsoWeek:
    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        match = _WEEK.match(text.strip())
        if match:
            year, week = int(match[1]), int(match[2])
            try:
                dt.date.fromisocalendar(year, week, 1)
                return cls(year, week)
            except ValueError:
                pass
        raise BadInputError(f"--week {text!r} is not an ISO week",
                            hint="Write the week as YYYY-Www, for example 2026-W19.")

    @classmethod
    def containing(cls, day: dt.date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def last_complete(cls, today: dt.date) -> IsoWeek:
        return cls.containing(today - dt.timedelta(days=7))

    @property
    def monday(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> dt.date:
        return self.monday + dt.timedelta(days=6)

    def shift(self, weeks: int) -> IsoWeek:
        return IsoWeek.containing(self.monday + dt.timedelta(weeks=weeks))

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def span(self) -> str:
        a, b = self.monday, self.sunday
        if a.month == b.month:
            return f"{a.day}–{b.day} {b:%B %Y}"
        if a.year == b.year:
            return f"{a.day} {a:%b} – {b.day} {b:%b %Y}"
        return f"{a.day} {a:%b %Y} – {b.day} {b:%b %Y}"


# ---- what a report holds ---------------------------------------------------------------
def _pct(now: Decimal, before: Decimal | None) -> float | None:
    if before is None or before == 0:
        return None
    return float((now - before) / abs(before))


@dataclass(frozen=True)
class Headline:
    currency: str
    week: Decimal
    previous: Decimal | None
    average: Decimal | None
    average_weeks: int

    @property
    def change(self) -> Decimal | None:
        return None if self.previous is None else self.week - self.previous

    @property
    def change_pct(self) -> float | None:
        return _pct(self.week, self.previous)

    @property
    def vs_average(self) -> Decimal | None:
        return None if self.average is None else self.week - self.average

    @property
    def vs_average_pct(self) -> float | None:
        return _pct(self.week, self.average)


@dataclass(frozen=True)
class Mover:
    label: str
    currency: str
    current: Decimal
    previous: Decimal

    @property
    def change(self) -> Decimal:
        return self.current - self.previous

    @property
    def change_pct(self) -> float | None:
        return _pct(self.current, self.previous)


@dataclass(frozen=True)
class CauseItem:
    dimension: str
    value: str
    contribution: Decimal | None
    share: float | None


@dataclass(frozen=True)
class AnomalyItem:
    severity: str
    dimension: str
    value: str
    start: dt.date
    end: dt.date
    currency: str
    actual: Decimal | None
    expected: Decimal | None
    impact: Decimal | None
    causes: tuple[CauseItem, ...]

    @property
    def impact_pct(self) -> float | None:
        if self.actual is None or self.expected is None:
            return None
        return _pct(self.actual, self.expected)


@dataclass(frozen=True)
class MonthOutlook:
    currency: str
    month: str  # YYYY-MM
    through: dt.date  # month to date runs through this day
    mtd: Decimal
    forecast: Decimal | None
    method: str  # how the forecast was made, for the reader
    budget: Decimal | None

    @property
    def label(self) -> str:
        return dt.date.fromisoformat(self.month + "-01").strftime("%B %Y")

    @property
    def days_in_month(self) -> int:
        year, month = (int(p) for p in self.month.split("-"))
        return calendar.monthrange(year, month)[1]

    @property
    def budget_used_pct(self) -> float | None:
        return float(self.mtd / self.budget) if self.budget else None

    @property
    def forecast_vs_budget(self) -> Decimal | None:
        if self.forecast is None or self.budget is None:
            return None
        return self.forecast - self.budget

    @property
    def forecast_vs_budget_pct(self) -> float | None:
        if self.forecast is None or self.budget is None:
            return None
        return _pct(self.forecast, self.budget)


@dataclass(frozen=True)
class RecommendationItem:
    kind: str
    resource: str
    current: str
    recommended: str
    savings: Decimal
    currency: str
    confidence: str
    evidence: str


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    url: str


@dataclass
class WeeklyReport:
    week: IsoWeek
    email: str
    name: str | None
    role: str
    scope: Scope
    generated_at: dt.datetime
    currency: str  # the main currency: charts and the subject line use it
    headlines: list[Headline]
    trend: list[tuple[str, Decimal]]  # main currency, oldest week first
    trend_average: Decimal | None
    movers_tenant: list[Mover] | None  # None when the scope holds one tenant
    movers_service: list[Mover]
    anomalies: list[AnomalyItem] | None  # None: no anomaly data yet
    anomalies_more: int
    months: list[MonthOutlook]
    month_cumulative: list[tuple[dt.date, Decimal]]  # main currency
    recommendations: list[RecommendationItem] | None  # None: no data yet
    recommendations_total: Decimal
    recommendations_count: int
    caveats: list[str]
    sections: list[Section]
    app_url: str
    has_cost: bool
    cost_label: str  # which cost the figures are, for the reader
    charts: dict[str, bytes] = field(default_factory=dict)  # name -> PNG, filled by charts.py

    @property
    def scope_label(self) -> str:
        return self.scope.label

    @property
    def headline(self) -> Headline | None:
        return next((h for h in self.headlines if h.currency == self.currency), None)

    @property
    def month(self) -> MonthOutlook | None:
        return next((m for m in self.months if m.currency == self.currency), None)

    def section(self, key: str) -> Section:
        return next(s for s in self.sections if s.key == key)


# ---- inputs, read once per run ---------------------------------------------------------
@dataclass
class ReportInputs:
    week: IsoWeek
    daily: pl.DataFrame  # sources.DAILY_SCHEMA over the trend window and the month
    coverage: tuple[dt.date, dt.date] | None  # first and last day of the cube
    anomalies: list[sources.AnomalyRecord] | None
    recommendations: list[sources.RecommendationRecord] | None
    forecasts: pl.DataFrame | None
    freshness: list[sources.SourceFreshness]
    allocate_ended: str | None
    resource_owners: dict[str, frozenset[str]]
    generated_at: dt.datetime


def load_inputs(wh: Warehouse, state: State, week: IsoWeek, config: ReportsConfig, *,
                now: dt.datetime | None = None) -> ReportInputs:
    start = min(week.shift(-(TREND_WEEKS - 1)).monday, week.sunday.replace(day=1))
    recs = sources.recommendations(wh)
    needs_owner = recs is not None and any(r.tenant is None for r in recs)
    return ReportInputs(
        week=week,
        daily=sources.daily_costs(wh, start, week.sunday, config.cost),
        coverage=sources.cube_days(wh),
        anomalies=sources.anomalies(wh),
        recommendations=recs,
        forecasts=sources.forecasts(wh),
        freshness=sources.freshness(wh, state),
        allocate_ended=sources.last_run_end(state, "allocate"),
        resource_owners=(sources.resource_tenants(wh, [r.resource_id for r in recs or []])
                         if needs_owner else {}),
        generated_at=now or dt.datetime.now(dt.UTC),
    )


# ---- building one report ---------------------------------------------------------------
def _sum(df: pl.DataFrame) -> Decimal:
    value = df.get_column("cost").sum() if df.height else None
    return sources.to_decimal(value) or ZERO


def _in(df: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    return df.filter(pl.col("day").is_between(start, end))


def _covered(inputs: ReportInputs, week: IsoWeek) -> bool:
    return inputs.coverage is not None and inputs.coverage[0] <= week.monday


def _headlines(inputs: ReportInputs, daily: pl.DataFrame) -> list[Headline]:
    week = inputs.week
    out = []
    for currency in sorted(set(daily.get_column("currency").to_list())):
        cur = daily.filter(pl.col("currency") == currency)
        prev_week = week.shift(-1)
        previous = _sum(_in(cur, prev_week.monday, prev_week.sunday)) \
            if _covered(inputs, prev_week) else None
        before = [w for w in (week.shift(-n) for n in range(1, AVERAGE_WEEKS + 1))
                  if _covered(inputs, w)]
        average = (sum((_sum(_in(cur, w.monday, w.sunday)) for w in before), ZERO) / len(before)
                   if before else None)
        out.append(Headline(currency, _sum(_in(cur, week.monday, week.sunday)), previous,
                            average, len(before)))
    return sorted(out, key=lambda h: h.week, reverse=True)


def _movers(inputs: ReportInputs, daily: pl.DataFrame, column: str, top: int,
            limit: int) -> list[Mover]:
    week, prev = inputs.week, inputs.week.shift(-1)
    period = (
        _in(daily, prev.monday, week.sunday)
        .group_by(column, "currency")
        .agg(pl.col("cost").filter(pl.col("day") >= week.monday).sum().alias("current"),
             pl.col("cost").filter(pl.col("day") < week.monday).sum().alias("previous"))
    )
    movers = [
        Mover(clean(key, limit), str(currency), sources.to_decimal(cur) or ZERO,
              sources.to_decimal(before) or ZERO)
        for key, currency, cur, before in period.iter_rows()
    ]
    movers = [m for m in movers if m.change != 0]
    movers.sort(key=lambda m: (-abs(m.change), m.label))
    return movers[:top]


def _anomalies(inputs: ReportInputs, scope: Scope, config: ReportsConfig,
               currency: str) -> tuple[list[AnomalyItem] | None, int]:
    if inputs.anomalies is None:
        return None, 0
    week, limit = inputs.week, config.max_label_length
    items = []
    for a in inputs.anomalies:
        if a.start_date > week.sunday or a.end_date < week.monday:
            continue
        if not scope.everything and not (a.dimension == "tenant" and scope.allows(a.dimension_value)):
            # Any other series (a service, an account, the total) mixes tenants.
            continue
        causes = tuple(
            CauseItem(DIMENSION_LABELS.get(c.dimension, clean(c.dimension, 30)),
                      clean(c.value, limit), c.contribution, c.share)
            for c in a.root_causes
            if (scope.everything or c.dimension != "tenant" or scope.allows(c.value))
            and (c.dimension, c.value) != (a.dimension, a.dimension_value)  # itself: no news
        )
        causes = tuple(sorted(causes, key=lambda c: -abs(c.contribution or ZERO))[:MAX_CAUSES])
        items.append(AnomalyItem(
            severity=clean(a.severity or "unrated", 20),
            dimension=DIMENSION_LABELS.get(a.dimension, clean(a.dimension, 30)),
            value=clean(a.dimension_value, limit), start=a.start_date, end=a.end_date,
            currency=clean(a.currency or currency, 8), actual=a.actual_cost,
            expected=a.expected_cost, impact=a.impact, causes=causes,
        ))
    items.sort(key=lambda x: (SEVERITY_RANK.get(x.severity, 9), -abs(x.impact or ZERO), x.start))
    shown = items[: config.max_anomalies]
    return shown, len(items) - len(shown)


def _forecast_from_model(inputs: ReportInputs, scope: Scope, currency: str, month: str,
                         through: dt.date, mtd: Decimal, tenants_with_cost: set[str],
                         month_end: dt.date) -> Decimal | None:
    fc = inputs.forecasts
    if fc is None or fc.height == 0:
        return None
    fc = fc.filter(pl.col("currency").is_null() | (pl.col("currency") == currency),
                   pl.col("month") == month)
    if scope.everything:
        fc = fc.filter(pl.col("dimension").is_null()
                       | pl.col("dimension").str.to_lowercase().is_in(["total", "all", ""]))
    else:
        fc = fc.filter(pl.col("dimension") == "tenant", scope.filter("dimension_value"))
        if not tenants_with_cost <= set(fc.get_column("dimension_value").to_list()):
            return None  # a tenant of the scope has no forecast: the sum would be short
    monthly = fc.filter(pl.col("day").is_null())
    if monthly.height:
        return Decimal(str(round(monthly.get_column("forecast").sum(), 2)))
    rest = fc.filter(pl.col("day") > through, pl.col("day") <= month_end)
    needed = (month_end - through).days
    if needed <= 0 or rest.get_column("day").n_unique() < needed:
        return None
    return mtd + Decimal(str(round(rest.get_column("forecast").sum(), 2)))


def _month(inputs: ReportInputs, scope: Scope, daily: pl.DataFrame, config: ReportsConfig
           ) -> list[MonthOutlook]:
    week = inputs.week
    if inputs.coverage is None:
        return []
    through = min(week.sunday, inputs.coverage[1])
    first = week.sunday.replace(day=1)
    if through < first:
        return []
    month = f"{first:%Y-%m}"
    month_end = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    out = []
    for currency in sorted(set(daily.get_column("currency").to_list())):
        cur = _in(daily.filter(pl.col("currency") == currency), first, through)
        mtd = _sum(cur)
        tenants = set(cur.filter(pl.col("cost") != 0).get_column("tenant").to_list())
        remaining = (month_end - through).days
        if remaining <= 0:
            forecast, method = mtd, "month complete"
        else:
            model = _forecast_from_model(inputs, scope, currency, month, through, mtd, tenants,
                                         month_end)
            if model is not None:
                forecast, method = model, "the forecast model"
            else:
                # Usage over the last days (across the month's start if need be) goes on;
                # purchases, fees and credits happened once and do not.
                since = max(inputs.coverage[0], through - dt.timedelta(days=RUN_RATE_DAYS - 1))
                days = (through - since).days + 1
                usage = _in(daily.filter(pl.col("currency") == currency, pl.col("usage")),
                            since, through)
                forecast = mtd + _sum(usage) / days * remaining
                method = f"the usage run rate of the last {days} day{'s' if days > 1 else ''}"
        out.append(MonthOutlook(currency, month, through, mtd, forecast, method,
                                _budget(config, scope, currency)))
    out.sort(key=lambda m: m.mtd, reverse=True)
    return out


def _budget(config: ReportsConfig, scope: Scope, currency: str) -> Decimal | None:
    budgets = config.budgets
    if currency != budgets.currency:
        return None
    if scope.tenants is None:
        return budgets.total
    if not scope.tenants or not all(t in budgets.tenants for t in scope.tenants):
        return None
    return sum((budgets.tenants[t] for t in scope.tenants), ZERO)


def _cumulative(daily: pl.DataFrame, month: MonthOutlook | None) -> list[tuple[dt.date, Decimal]]:
    if month is None:
        return []
    first = dt.date.fromisoformat(month.month + "-01")
    per_day = (_in(daily.filter(pl.col("currency") == month.currency), first, month.through)
               .group_by("day").agg(pl.col("cost").sum()).sort("day"))
    totals = {d: sources.to_decimal(c) or ZERO for d, c in per_day.iter_rows()}
    out, running = [], ZERO
    for n in range((month.through - first).days + 1):
        day = first + dt.timedelta(days=n)
        running += totals.get(day, ZERO)
        out.append((day, running))
    return out


def _recommendations(inputs: ReportInputs, scope: Scope, config: ReportsConfig, currency: str
                     ) -> tuple[list[RecommendationItem] | None, Decimal, int]:
    if inputs.recommendations is None:
        return None, ZERO, 0
    visible = []
    for r in inputs.recommendations:
        owners = ({r.tenant} if r.tenant else inputs.resource_owners.get(r.resource_id, frozenset()))
        if scope.everything or scope.allows_all(owners):
            visible.append(r)
    visible.sort(key=lambda r: (-r.monthly_savings, r.recommendation_id))
    limit = config.max_label_length
    items = [
        RecommendationItem(
            kind=clean(r.kind, 40), resource=clean(r.resource_id, limit),
            current=clean(r.current, limit), recommended=clean(r.recommended, limit),
            savings=r.monthly_savings, currency=clean(r.currency or currency, 8),
            confidence=clean(r.confidence, 20), evidence=clean(r.evidence, limit * 2),
        )
        for r in visible[: config.top_recommendations]
    ]
    return items, sum((r.monthly_savings for r in visible), ZERO), len(visible)


def _day(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def _caveats(inputs: ReportInputs, scope: Scope, config: ReportsConfig, has_cost: bool) -> list[str]:
    week, limit = inputs.week, config.max_label_length
    out = []
    if not has_cost:
        out.append(f"No allocated cost in the warehouse for {week.label} yet: collect the "
                   "billing data and run `finops allocate`.")
    due = week.sunday - dt.timedelta(days=config.freshness_grace_days)
    latest_success = ""
    for f in inputs.freshness:
        name = clean(f.source, 40)
        if f.data_through is not None and f.data_through < due:
            late = (week.sunday - f.data_through).days
            out.append(f"Billing data from source “{name}” runs through {_day(f.data_through)}; "
                       f"the week ends {_day(week.sunday)}, so the last "
                       f"{late} day{'s' if late > 1 else ''} may be incomplete.")
        if f.last_failure is not None:
            detail = f": {clean(f.failure_message, 160)}" if f.failure_message and scope.everything else ""
            out.append(f"The latest collect of source “{name}” failed at "
                       f"{f.last_failure[:16].replace('T', ' ')} UTC{detail}.")
        if f.last_success and f.last_success > latest_success:
            latest_success = f.last_success
    if has_cost and inputs.allocate_ended and latest_success > inputs.allocate_ended:
        out.append("Billing data was collected after the last allocation run: the newest rows "
                   "are not in these figures until `finops allocate` runs.")
    return [clean(c, limit * 8) for c in out]


def link(base_url: str, path: str, **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}" + (f"?{query}" if query else "")


def build_report(inputs: ReportInputs, config: ReportsConfig, recipient: Recipient | None,
                 email: str, base_url: str) -> WeeklyReport:
    scope = scope_for(recipient)
    role = recipient.role if recipient else "finance"
    limit = config.max_label_length
    week = inputs.week
    daily = inputs.daily.filter(scope.filter("tenant"))
    headlines = _headlines(inputs, daily)
    this_week = _in(daily, week.monday, week.sunday)
    has_cost = this_week.height > 0
    currency = headlines[0].currency if headlines else config.budgets.currency

    main = daily.filter(pl.col("currency") == currency)
    trend_weeks = [week.shift(-n) for n in range(TREND_WEEKS - 1, -1, -1)]
    trend = [(f"W{w.week:02d}", _sum(_in(main, w.monday, w.sunday)))
             for w in trend_weeks if _covered(inputs, w) or w == week]
    headline = next((h for h in headlines if h.currency == currency), None)

    single = scope.tenants is not None and len(scope.tenants) == 1
    movers_tenant = None if single else _movers(inputs, daily, "tenant", config.top_movers, limit)
    movers_service = _movers(inputs, daily, "service", config.top_movers, limit)
    anomalies, more = _anomalies(inputs, scope, config, currency)
    months = _month(inputs, scope, daily, config)
    month = next((m for m in months if m.currency == currency), None)
    recs, recs_total, recs_count = _recommendations(inputs, scope, config, currency)

    tenant_param = "" if scope.tenants is None else ",".join(sorted(scope.tenants))
    period = f"{week.sunday:%Y-%m}"
    paths = config.links
    urls = {
        "spend": link(base_url, paths.spend, period=period, week=week.label, tenant=tenant_param),
        "movers": link(base_url, paths.movers, period=period, week=week.label, tenant=tenant_param),
        "anomalies": link(base_url, paths.anomalies, week=week.label, tenant=tenant_param),
        "month": link(base_url, paths.month, period=period, tenant=tenant_param),
        "recommendations": link(base_url, paths.recommendations, tenant=tenant_param),
        "freshness": link(base_url, paths.freshness),
    }
    sections = [Section(k, SECTION_TITLES[k], urls[k]) for k in SECTION_ORDER[role]]
    sections.append(Section("freshness", "Data freshness", urls["freshness"]))
    return WeeklyReport(
        week=week, email=email, name=clean(recipient.name, limit) if recipient and recipient.name else None,
        role=role, scope=scope, generated_at=inputs.generated_at, currency=currency,
        headlines=headlines, trend=trend,
        trend_average=headline.average if headline else None,
        movers_tenant=movers_tenant, movers_service=movers_service,
        anomalies=anomalies, anomalies_more=more, months=months,
        month_cumulative=_cumulative(daily, month),
        recommendations=recs, recommendations_total=recs_total, recommendations_count=recs_count,
        caveats=_caveats(inputs, scope, config, has_cost), sections=sections,
        app_url=link(base_url, ""), has_cost=has_cost,
        cost_label=COST_LABELS[config.cost],
    )
