"""From anomalous days to events: grouping, the series that names an event, root causes.

- Nodes are (series, day) pairs flagged by the filter. Two nodes are one event when they
  are the same series on consecutive days (missing days in between are skipped), or the
  same day on two series that share a cell (total and a service, a service and one of its
  accounts, a tenant and a service it uses...) when the more specific one explains the
  broader one's deviation (see ``group_flags``). Connected nodes form one event.
- The event is named after the most specific series flagged on its first day whose
  deviation that day is at least 80% of the largest one: a spike in one service×account
  is reported there (not at the total it also moved), a rise spread over many services at
  the total. Its actual and expected costs are that series' sums over start..end.
- Root causes split the impact over the cells of that series: each cell is expected to
  keep its share of the series over the 28 days before the start, so its contribution is
  ``actual_cell - share_cell × expected``; contributions add up to the impact. They are
  summed per service, account, service×account and tenant, and the values carrying at
  least 10% of the impact (at most 3 per dimension) are the root causes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import polars as pl

from models.anomalies.detect import FilterResult
from models.anomalies.series import SEP, SPECIFICITY, Panel
from models.anomalies.settings import AnomalySettings

BASELINE_DAYS = 28
NAME_SHARE = 0.8
LINK_SHARE = 0.5
FALLBACK_SHARE = 0.2
CAUSE_SHARE = 0.10
CAUSES_PER_DIMENSION = 3
CAUSE_DIMENSIONS = ("service", "account", "service_account", "tenant")
CENT = Decimal("0.01")


@dataclass
class RootCause:
    dimension: str
    value: str
    contribution: float
    share: float


@dataclass
class Event:
    anomaly_id: str
    currency: str
    sid: int
    dimension: str
    dimension_value: str
    start: int
    end: int
    members: list[int]
    actual: float
    expected: float
    detected: int | None  # first day index at which the event met its thresholds
    tenant: str | None
    root_causes: list[RootCause] = field(default_factory=list)
    severity: str = "low"
    reported: bool = False
    label: str | None = None  # feedback label, when there is one
    actual_exact: Decimal | None = None

    @property
    def impact(self) -> float:
        return self.actual - self.expected

    @property
    def impact_pct(self) -> float | None:
        return self.impact / self.expected if self.expected > 0 else None


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_flags(panel: Panel, flags: np.ndarray,
                deviation: np.ndarray) -> list[list[tuple[int, int]]]:
    """Connected (series, day) nodes, each list sorted by day then series.

    Each day, a flagged series is *anchored* to the flagged series that explains it best:
    among those sharing a cell with it and ranking above it (more specific, or as
    specific with a larger deviation), the first in rank order carrying at least half of
    its deviation, else the largest carrying at least a fifth. Anchored nodes join their
    anchor; a node with no anchor (the most specific view of an incident) also joins the
    same series' node of the previous day. So one incident seen at several levels is one
    event, and two incidents that only meet in the total or an account stay two.
    """
    sids, days = np.nonzero(flags)
    if sids.size == 0:
        return []
    index = {(int(s), int(t)): i for i, (s, t) in enumerate(zip(sids, days, strict=True))}
    uf = _UnionFind(len(index))
    missing = np.isnan(panel.values)
    rank = np.array([SPECIFICITY.get(lv, 0) for lv in panel.series["level"].to_list()])
    levels = list(panel.cell_series)
    mapping = np.stack([panel.cell_series[lv] for lv in levels])  # [levels, C]
    for day in np.unique(days).tolist():
        t = int(day)
        day_flags = flags[:, t]
        hit = day_flags[mapping]  # [levels, C]
        related: dict[int, set[int]] = {}
        for c in np.flatnonzero(hit.sum(axis=0) >= 2):
            group = [int(x) for x in mapping[hit[:, c], c]]
            for a in group:
                related.setdefault(a, set()).update(g for g in group if g != a)
        dev = np.abs(deviation[:, t])
        for s in np.flatnonzero(day_flags).tolist():
            order = (rank[s], dev[s], -s)
            above = sorted((o for o in related.get(s, ()) if (rank[o], dev[o], -o) > order),
                           key=lambda o: (rank[o], dev[o], -o), reverse=True)
            anchor = next((o for o in above if dev[o] >= LINK_SHARE * dev[s]), None)
            if anchor is None and above:
                biggest = max(above, key=lambda o: (dev[o], -o))
                if dev[biggest] >= FALLBACK_SHARE * dev[s]:
                    anchor = biggest
            if anchor is not None:
                uf.union(index[(s, t)], index[(anchor, t)])
                continue
            back = t - 1
            while back >= 0 and missing[s, back]:
                back -= 1
            j = index.get((s, back))
            if j is not None:
                uf.union(index[(s, t)], j)
    components: dict[int, list[tuple[int, int]]] = {}
    for node, i in index.items():
        components.setdefault(uf.find(i), []).append(node)
    return [sorted(c, key=lambda n: (n[1], n[0])) for c in components.values()]


def anomaly_id(currency: str, dimension: str, value: str, start: dt.date) -> str:
    digest = hashlib.sha1(f"{currency}|{dimension}|{value}|{start.isoformat()}".encode())
    return "an-" + digest.hexdigest()[:12]


def build_events(panel: Panel, result: FilterResult, settings: AnomalySettings,
                 *, through: int | None = None, causes: bool = True) -> list[Event]:
    """Every event in the flags up to day index ``through`` (default: all judged days)."""
    last = result.judged_through if through is None else min(through, result.judged_through)
    if last < 0:
        return []
    flags = result.flag[:, :last + 1]
    series = panel.series
    levels = series["level"].to_list()
    values_text = series["value"].to_list()
    currencies = series["currency"].to_list()
    totals = {cur: sid for sid, (lv, cur) in enumerate(zip(levels, currencies, strict=True))
              if lv == "total"}
    both = settings.direction == "both"
    events = []
    deviation = panel.values[:, :last + 1] - result.expected[:, :last + 1]
    for nodes in group_flags(panel, flags, np.nan_to_num(deviation)):
        start = nodes[0][1]
        end = max(t for _, t in nodes)
        members = sorted({s for s, _ in nodes})
        first_day = [s for s, t in nodes if t == start]
        devs = {s: float(panel.values[s, start] - result.expected[s, start]) for s in first_day}
        if both:
            devs = {s: abs(v) for s, v in devs.items()}
        top = max(devs.values())
        named = max((s for s in first_day if devs[s] >= NAME_SHARE * top),
                    key=lambda s: (SPECIFICITY.get(levels[s], 0), devs[s], -s))
        actual = float(np.nansum(panel.values[named, start:end + 1]))
        expected = float(np.nansum(result.expected[named, start:end + 1]))
        cur = currencies[named]
        ev = Event(
            anomaly_id=anomaly_id(cur, levels[named], values_text[named], panel.days[start]),
            currency=cur, sid=named, dimension=levels[named],
            dimension_value=values_text[named], start=start, end=end, members=members,
            actual=actual, expected=expected, detected=None, tenant=None,
        )
        if causes:
            ev.root_causes = root_causes(panel, ev)
        ev.tenant = _event_tenant(ev, levels[named], values_text[named])
        thresholds = settings.thresholds_for(ev.tenant)
        ev.detected = _first_reportable(panel, result, ev, float(thresholds.min_impact),
                                        thresholds.min_impact_pct, both)
        ev.reported = ev.detected is not None and _passes(
            ev.actual, ev.expected, float(thresholds.min_impact), thresholds.min_impact_pct, both)
        ev.severity = severity(panel, totals.get(cur), ev, settings)
        events.append(ev)
    events.sort(key=lambda e: (e.start, e.dimension, e.dimension_value))
    return events


def _passes(actual: float, expected: float, money: float, pct: float, both: bool) -> bool:
    impact = actual - expected
    size = abs(impact) if both else impact
    if size <= 0 or size < money:
        return False
    return expected <= 0 or size >= pct * expected


def _first_reportable(panel: Panel, result: FilterResult, ev: Event, money: float, pct: float,
                      both: bool) -> int | None:
    act = np.nancumsum(panel.values[ev.sid, ev.start:ev.end + 1])
    exp = np.nancumsum(result.expected[ev.sid, ev.start:ev.end + 1])
    for i, (a, e) in enumerate(zip(act, exp, strict=True)):
        if _passes(float(a), float(e), money, pct, both):
            return ev.start + i
    return None


def _event_tenant(ev: Event, level: str, value: str) -> str | None:
    if level == "tenant":
        return value
    tenants = [c for c in ev.root_causes if c.dimension == "tenant"]
    if tenants and tenants[0].share >= 0.5:
        return tenants[0].value
    return None


def root_causes(panel: Panel, ev: Event) -> list[RootCause]:
    cells = panel.series_cells(ev.sid)
    window = np.nansum(panel.cell_values[cells, ev.start:ev.end + 1], axis=1)
    lo = max(0, ev.start - BASELINE_DAYS)
    before = np.nansum(panel.cell_values[cells, lo:ev.start], axis=1)
    total_before = float(before.sum())
    share = before / total_before if total_before > 0 else np.zeros(len(cells))
    contrib = window - share * ev.expected
    impact = ev.impact
    keys = panel.cells[cells.tolist()]
    frame = keys.select(
        "service", "account", "tenant",
        pl.concat_str("service", pl.lit(SEP), "account").alias("service_account"),
    ).with_columns(pl.Series("contribution", contrib))
    out: list[RootCause] = []
    for dim in CAUSE_DIMENSIONS:
        sums = (frame.group_by(dim).agg(pl.col("contribution").sum())
                .sort("contribution", dim, descending=[True, False]))
        for picked, (value, amount) in enumerate(sums.iter_rows()):
            share_of = amount / impact if impact else 0.0
            if picked and (picked >= CAUSES_PER_DIMENSION or share_of < CAUSE_SHARE):
                break
            out.append(RootCause(dim, str(value), float(amount), float(share_of)))
    return out


def severity(panel: Panel, total_sid: int | None, ev: Event, settings: AnomalySettings) -> str:
    """Bands of impact over a typical day's total spend (median of the 28 days before)."""
    typical = 0.0
    if total_sid is not None:
        lo = max(0, ev.start - BASELINE_DAYS)
        before = panel.values[total_sid, lo:ev.start]
        if np.isfinite(before).any():
            typical = float(np.nanmedian(before))
        if typical <= 0:
            typical = float(np.nanmedian(panel.values[total_sid, ev.start:ev.end + 1]))
    ratio = abs(ev.impact) / typical if typical > 0 else float("inf")
    bands = settings.severity
    if ratio >= bands.critical:
        return "critical"
    if ratio >= bands.high:
        return "high"
    if ratio >= bands.medium:
        return "medium"
    return "low"


def exact_actual(panel: Panel, ev: Event) -> Decimal:
    """The event series' actual cost over start..end, summed exactly from the Decimal data."""
    cells = panel.series_cells(ev.sid)
    total = (
        panel.data.filter(pl.col("cell").is_in(cells.tolist())
                          & pl.col("t").is_between(ev.start, ev.end))
        .select(pl.col("cost").sum())
        .item()
    )
    return Decimal(0) if total is None else Decimal(total)
