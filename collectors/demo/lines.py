"""Expanding deployments into billing lines: one line is one meter of one resource.

A line holds everything about its daily rows that does not change from day to day: the
FOCUS text columns and tags (``Lines.static``, one row per line, gathered per row when
rows are built) and the numbers the daily quantity and cost are computed from. Python
loops here run once per resource, never per row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from collectors.demo.anomalies import PlacedAnomaly
from collectors.demo.catalog import KINDS, NOISE, Kind, Meter, Profile, sku_id, sku_price_id
from collectors.demo.commitments import COMMITMENT_INDEX
from collectors.demo.frames import TAG_ENTRIES, account_fields
from collectors.demo.infrastructure import BUSY, IDLE, MIXED, NORMAL, OVER, Deployment
from collectors.demo.money import to_units
from collectors.demo.org import (
    PROVIDERS,
    REGIONS,
    SHARED_COST_CENTER,
    SUB_ACCOUNTS,
    TEAM_BY_NAME,
    TENANT_BY_NAME,
    TENANT_INDEX,
    SubAccount,
)
from collectors.demo.window import Window
from finops.focus import TAGS

CURRENCIES: Final = ("USD", "EUR")
ACCOUNT_KEYS: Final = tuple(SUB_ACCOUNTS)
KIND_KEYS: Final = tuple(KINDS)
# Azure EA prices below the public list: ContractedCost < ListCost on these.
NEGOTIATED: Final = {"vm": 0.92, "sqldb": 0.92, "disk": 0.95}
FORGOTTEN_TENANT_TAG: Final = 0.05  # tenant resources somebody forgot to tag
# ... among the kinds people create by hand; pipelines, buckets, managed services and
# autoscaled nodes get their tags from the code that deploys them.
HAND_MADE: Final = frozenset({"ec2", "ebs", "lambda", "pd", "disk", "gce", "vm"})
ODD_VALUE: Final = 0.04  # tag values with odd case or stray spaces
UTIL_MIX: Final = ((NORMAL, 0.6), (OVER, 0.25), (IDLE, 0.1), (BUSY, 0.05))
# Resources created or deleted inside the window keep at least this many days.
MIN_LIFE: Final = 7

STATIC_TEXT: Final = (
    "ProviderName", "PublisherName", "InvoiceIssuerName", "BillingAccountId",
    "BillingAccountName", "BillingAccountType", "BillingCurrency", "PricingCurrency",
    "SubAccountId", "SubAccountName", "SubAccountType", "RegionId", "RegionName",
    "AvailabilityZone", "ServiceName", "ServiceCategory", "ServiceSubcategory", "ResourceId",
    "ResourceName", "ResourceType", "SkuId", "SkuPriceId", "SkuMeter", "SkuPriceDetails",
    "ChargeDescription", "ConsumedUnit", "PricingUnit", "ChargeCategory", "ChargeFrequency",
)

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]


@dataclass
class Lines:
    static: pl.DataFrame  # STATIC_TEXT, Tags, ListUnitPrice and ContractedUnitPrice (units)
    provider: npt.NDArray[np.int8]  # index into PROVIDERS
    account: npt.NDArray[np.int16]  # index into ACCOUNT_KEYS
    currency: npt.NDArray[np.int8]  # index into CURRENCIES
    kind: npt.NDArray[np.int16]  # index into KIND_KEYS
    profile: npt.NDArray[np.int8]
    qty: F64  # consumed units per day at the reference level
    per_month: npt.NDArray[np.bool_]
    block: F64
    price: F64  # list price per pricing unit, billing currency
    contracted_price: F64
    credit: npt.NDArray[np.bool_]
    growth: F64
    noise: F64
    start: I32  # first active window day
    end: I32  # last active window day
    tenant: npt.NDArray[np.int8]  # index into TENANTS, -1 none
    commitment: npt.NDArray[np.int8]  # index into COMMITMENTS, -1 none
    anomaly: npt.NDArray[np.int16]  # bit j: moved by placed anomaly j

    def __len__(self) -> int:
        return len(self.qty)


@dataclass
class Expansion:
    lines: Lines
    resources: pl.DataFrame  # right-sizing candidates, see RESOURCE_SCHEMA
    anomaly_resources: dict[str, list[str]]


RESOURCE_SCHEMA: Final = {
    "resource_id": pl.String, "provider": pl.String, "region": pl.String,
    "resource_type": pl.String, "instance_type": pl.String, "hourly_cost": pl.Float64,
    "currency": pl.String, "start": pl.Int32, "end": pl.Int32, "util": pl.String,
    "tenant": pl.String, "attached": pl.Boolean, "vcpu": pl.Int32, "memory_gib": pl.Float64,
    "size_gb": pl.Float64, "account_id": pl.String, "name": pl.String, "launched": pl.Int32,
}
VOLUME_KINDS: Final = frozenset({"ebs", "pd", "disk"})


def _weight(d: Deployment) -> float:
    return TENANT_BY_NAME[d.tenant].weight if d.tenant else 1.0


def resource_count(d: Deployment, factor: float) -> tuple[int, float]:
    """How many resources a deployment has at this scale, and the usage multiplier that
    stands in for a fraction of one resource."""
    n = d.count * _weight(d) * factor
    if n < 1:
        return 1, n
    return round(n), 1.0


def _bounds(d: Deployment, window: Window) -> tuple[int, int]:
    last = window.n_days - 1
    if d.active is not None:
        return last - d.active[0], last - d.active[1]
    start = int(d.starts_at * window.n_days) if d.starts_at is not None else 0
    end = int(d.retire_at * window.n_days) if d.retire_at is not None else last
    return start, min(end, last)


def _meters(kind: Kind, variant: str, d: Deployment) -> tuple[Meter, ...]:
    # Usage under a commitment earns no sustained-use credit.
    return tuple(m for m in kind.variants[variant] if not (m.credit and d.commitment))


def estimate_rows(deps: Sequence[Deployment], window: Window, factor: float) -> float:
    """Expected usage rows at a scale factor, without drawing anything."""
    total = 0.0
    for d in deps:
        n, _ = resource_count(d, factor)
        start, end = _bounds(d, window)
        start = max(start, 0)
        if end < start:
            continue
        kind = KINDS[d.kind]
        meters = np.mean([len(_meters(kind, v, d)) for v in d.variants])
        days = (end - start + 1) * (1 - d.late / 2) * (1 - d.retire / 2)
        total += n * float(meters) * days
    return total


def _lifecycle(d: Deployment, window: Window, n: int, rng: np.random.Generator
               ) -> tuple[I32, I32]:
    start0, end0 = _bounds(d, window)
    start = np.full(n, start0, dtype=np.int32)
    end = np.full(n, end0, dtype=np.int32)
    if d.starts_at is not None or d.retire_at is not None:
        # A migration takes a few days, not one instant.
        jitter = rng.integers(0, 4, n).astype(np.int32)
        if d.starts_at is not None:
            start += jitter
        if d.retire_at is not None:
            end -= jitter
    span = end0 - start0
    if span > 3 * MIN_LIFE:
        late = rng.random(n) < d.late
        start = np.where(late, rng.integers(start0 + MIN_LIFE, end0 - MIN_LIFE, n), start)
        retire = rng.random(n) < d.retire
        end = np.where(retire, np.minimum(end0, start + MIN_LIFE
                                          + rng.integers(0, max(1, span), n)), end)
    return start.astype(np.int32), end.astype(np.int32)


def _odd(value: str, rng: np.random.Generator) -> str:
    choice = int(rng.integers(0, 3))
    return (value.upper(), value.title(), value + " ")[choice]


def _pick(options: tuple[tuple[str, float], ...], u: float) -> str:
    acc = 0.0
    for key, share in options:
        acc += share
        if u < acc:
            return key
    return options[-1][0]


def _tags(d: Deployment, sub: SubAccount, name: str, env: str, rng: np.random.Generator,
          kind: Kind) -> dict[str, str]:
    gcp = kind.provider == "gcp"
    tags: dict[str, str] = {}
    if env == "dev" and not d.tag_team and not d.tag_tenant:
        if rng.random() < 0.5:
            tags["env"] = env
        if kind.key in {"ec2", "ebs"}:
            tags["Name"] = name
        return tags

    def odd(value: str) -> str:
        # Google Cloud labels must be lower case: the odd spellings live elsewhere.
        return _odd(value, rng) if not gcp and rng.random() < ODD_VALUE else value

    forgot = (kind.key in HAND_MADE and d.profile is None
              and rng.random() < FORGOTTEN_TENANT_TAG)
    if d.tenant and d.tag_tenant and not forgot:
        key = "tenant" if gcp else _pick(sub.tags.tenant, float(rng.random()))
        tags[key] = odd(d.tenant)
    team = d.team or (TENANT_BY_NAME[d.tenant].team if d.tenant else None)
    if team and d.tag_team:
        key = "team" if gcp else _pick(sub.tags.team, float(rng.random()))
        tags[key] = odd(team)
    tags["env"] = env
    tags["cost-center"] = TEAM_BY_NAME[team].cost_center if team else SHARED_COST_CENTER
    tags.update(d.extra_tags)
    if kind.key in {"ec2", "ebs"}:
        tags["Name"] = name
    if not gcp and rng.random() < 0.7:
        tags["managed-by"] = "terraform"
    return tags


def _names(d: Deployment, kind: Kind, n: int, env: str) -> list[str]:
    base = f"{d.tenant}-{d.role}" if d.tenant else d.role
    width = 3 if n > 99 else 2
    suffix = [f"-{i + 1:0{width}d}" if n > 1 else "" for i in range(n)]
    if kind.key in {"s3", "gcs"}:
        return [f"bw-{base}-{env}{s}" for s in suffix]
    if kind.key == "storage":
        return [re.sub(r"[^a-z0-9]", "", f"st{base}{env}{s}")[:24] for s in suffix]
    if kind.key in {"bigquery"}:
        return [f"{base}{s}".replace("-", "_") for s in suffix]
    return [f"{base}{s}" for s in suffix]


class _Builder:
    def __init__(self) -> None:
        self.text: dict[str, list[str | None]] = {c: [] for c in STATIC_TEXT}
        # Tags once per resource, long form: a column of dicts per line would cost ten
        # times the memory at large scales.
        self.tag_owner: list[int] = []
        self.tag_key: list[str] = []
        self.tag_value: list[str] = []
        self.n_tagged = 0  # resources seen so far (tagged or not)
        self.line_owner: list[int] = []
        self.num: dict[str, list[Any]] = {k: [] for k in (
            "provider", "account", "currency", "kind", "profile", "qty", "per_month", "block",
            "price", "contracted_price", "credit", "growth", "noise", "start", "end", "tenant",
            "commitment", "anomaly")}
        self.resources: dict[str, list[Any]] = {k: [] for k in RESOURCE_SCHEMA}
        self.anomaly_resources: dict[str, list[str]] = {}
        self._sku: dict[tuple[str, str, str], tuple[str, str]] = {}

    def sku(self, kind: Kind, variant: str, meter: Meter) -> tuple[str, str]:
        key = (kind.key, variant, meter.meter)
        if key not in self._sku:
            sid = sku_id(kind.provider, f"{kind.service}:{variant}:{meter.meter}")
            self._sku[key] = (sid, sku_price_id(kind.provider, sid, meter.description))
        return self._sku[key]

    def add_tags(self, tags: dict[str, str]) -> int:
        owner = self.n_tagged
        self.n_tagged += 1
        for key, value in tags.items():
            self.tag_owner.append(owner)
            self.tag_key.append(key)
            self.tag_value.append(value)
        return owner

    def _tags(self) -> pl.Series:
        long = pl.DataFrame({"owner": self.tag_owner, "key": self.tag_key,
                             "value": self.tag_value},
                            schema={"owner": pl.Int64, "key": pl.String, "value": pl.String})
        per_owner = long.group_by("owner", maintain_order=True).agg(
            pl.struct("key", "value").alias("Tags"))
        every = pl.DataFrame({"owner": range(self.n_tagged)}, schema={"owner": pl.Int64})
        tags = every.join(per_owner, on="owner", how="left", maintain_order="left")["Tags"]
        # A resource without tags has an empty map, not a missing one.
        tags = tags.fill_null(pl.lit([], dtype=TAG_ENTRIES)).cast(TAGS)
        return tags.gather(self.line_owner).alias("Tags")

    def lines(self) -> Lines:
        static = pl.DataFrame(
            {c: pl.Series(c, v, dtype=pl.String) for c, v in self.text.items()}
        ).with_columns(
            self._tags(),
            pl.Series("ListUnitPrice", [None if c else p for c, p in zip(
                self.num["credit"], to_units(np.array(self.num["price"])).tolist(), strict=True)],
                dtype=pl.Int64),
            pl.Series("ContractedUnitPrice", [None if c else p for c, p in zip(
                self.num["credit"], to_units(np.array(self.num["contracted_price"])).tolist(),
                strict=True)], dtype=pl.Int64),
        )
        n = self.num
        return Lines(
            static=static,
            provider=np.array(n["provider"], dtype=np.int8),
            account=np.array(n["account"], dtype=np.int16),
            currency=np.array(n["currency"], dtype=np.int8),
            kind=np.array(n["kind"], dtype=np.int16),
            profile=np.array(n["profile"], dtype=np.int8),
            qty=np.array(n["qty"], dtype=np.float64),
            per_month=np.array(n["per_month"], dtype=bool),
            block=np.array(n["block"], dtype=np.float64),
            price=np.array(n["price"], dtype=np.float64),
            contracted_price=np.array(n["contracted_price"], dtype=np.float64),
            credit=np.array(n["credit"], dtype=bool),
            growth=np.array(n["growth"], dtype=np.float64),
            noise=np.array(n["noise"], dtype=np.float64),
            start=np.array(n["start"], dtype=np.int32),
            end=np.array(n["end"], dtype=np.int32),
            tenant=np.array(n["tenant"], dtype=np.int8),
            commitment=np.array(n["commitment"], dtype=np.int8),
            anomaly=np.array(n["anomaly"], dtype=np.int16),
        )


def _price(price: float, factor: float) -> float:
    return price if factor == 1.0 else float(f"{price * factor:.6g}")


def _resource_id(kind: Kind, name: str, sub: SubAccount, region: str, zone: str | None,
                 env: str, owner: str, rng: np.random.Generator) -> str | None:
    if kind.id_style is None:
        return None
    h = rng.bytes(16).hex()
    return kind.id_style.format(
        region=region, acct=sub.sub_id, project=sub.sub_id, sub=sub.sub_id,
        rg=f"rg-{owner}-{env}", zone=zone or "", name=name, hex8=h[:8], hex16=h[:16],
        hex17=h[:17], hex32=h, upper13=h[:13].upper(), digits=str(int(h[:15], 16))[:18],
    )


def expand(deps: Sequence[Deployment], window: Window, factor: float,
           placed: Sequence[PlacedAnomaly], rng: np.random.Generator) -> Expansion:
    b = _Builder()
    for d in deps:
        _expand_one(b, d, window, factor, placed, rng)
    resources = pl.DataFrame(b.resources, schema=RESOURCE_SCHEMA)
    return Expansion(b.lines(), resources, b.anomaly_resources)


def _expand_one(b: _Builder, d: Deployment, window: Window, factor: float,
                placed: Sequence[PlacedAnomaly], rng: np.random.Generator) -> None:
    kind = KINDS[d.kind]
    sub = SUB_ACCOUNTS[d.account]
    region = REGIONS[d.region]
    n, fraction = resource_count(d, factor)
    env = d.env or sub.env
    acct = account_fields(sub)
    currency = CURRENCIES.index(sub.billing.currency)
    price_factor = sub.billing.price_factor
    start, end = _lifecycle(d, window, n, rng)
    variants = rng.integers(0, len(d.variants), n)
    sizes = d.size * fraction * np.exp(rng.normal(0.0, d.spread, n) - d.spread**2 / 2)
    utils = [d.util if d.util != MIXED else _pick(UTIL_MIX, float(u)) for u in rng.random(n)]
    names = _names(d, kind, n, env)
    owner = d.tenant or d.role
    tenant_idx = TENANT_INDEX[d.tenant] if d.tenant else -1
    for i in range(n):
        if end[i] < max(start[i], 0):
            continue
        s, e = max(int(start[i]), 0), int(end[i])
        variant = d.variants[int(variants[i])]
        zone = region.zones[int(rng.integers(0, len(region.zones)))] if region.zones else None
        zone_col = zone if kind.key in {"ec2", "ebs", "rds", "gce", "pd"} else None
        name = names[i]
        rid = _resource_id(kind, name, sub, region.region_id, zone, env, owner, rng)
        owner_of_tags = b.add_tags(_tags(d, sub, name, env, rng, kind))
        details = kind.details.get(variant)
        if d.anomaly and rid:
            b.anomaly_resources.setdefault(d.anomaly, []).append(rid)
        if kind.inventory_type and rid:
            _add_resource(b, kind, variant, rid, name, sub, region.region_id, float(sizes[i]),
                          s, e, utils[i], d, price_factor)
        for meter in _meters(kind, variant, d):
            sid, spid = b.sku(kind, variant, meter)
            profile = meter.profile
            # An autoscaled node runs fewer hours at weekends; its sustained-use credit too.
            if d.profile is not None and profile == Profile.ALWAYS_ON:
                profile = d.profile
            fixed_hours = profile in (Profile.ALWAYS_ON, Profile.FLEET)
            bits = 0
            for j, p in enumerate(placed):
                spec = p.spec
                if spec.kind == "runaway":
                    hit = d.anomaly == spec.id
                else:
                    hit = (spec.provider == kind.provider and kind.key in spec.kinds
                           and spec.tenant in (None, d.tenant)
                           and (not spec.meters or meter.meter in spec.meters))
                bits |= (1 << j) if hit else 0
            # Coverage needs a steady daily amount (see commitments.py); anomalies are not.
            covered = (d.commitment is not None and profile == Profile.ALWAYS_ON
                       and not meter.credit and bits == 0)
            price = _price(meter.price, price_factor)
            cprice = price if meter.credit else float(
                f"{price * NEGOTIATED.get(kind.key, 1.0):.8g}")
            for col, value in (
                *acct.items(),
                ("RegionId", region.region_id), ("RegionName", region.name),
                ("AvailabilityZone", zone_col), ("ServiceName", kind.service),
                ("ServiceCategory", kind.category), ("ServiceSubcategory", kind.subcategory),
                ("ResourceId", rid), ("ResourceName", name if rid else None),
                ("ResourceType", kind.resource_type if rid else None),
                ("SkuId", sid), ("SkuPriceId", spid), ("SkuMeter", meter.meter),
                ("SkuPriceDetails", json.dumps(details, separators=(",", ":"))
                 if details and not meter.credit else None),
                ("ChargeDescription", meter.description),
                ("ConsumedUnit", None if meter.credit else meter.consumed_unit),
                ("PricingUnit", None if meter.credit else meter.pricing_unit),
                ("ChargeCategory", "Credit" if meter.credit else "Usage"),
                ("ChargeFrequency", "Usage-Based"),
            ):
                b.text[col].append(value)
            b.line_owner.append(owner_of_tags)
            num = b.num
            num["provider"].append(PROVIDERS.index(kind.provider))
            num["account"].append(ACCOUNT_KEYS.index(sub.key))
            num["currency"].append(currency)
            num["kind"].append(KIND_KEYS.index(kind.key))
            num["profile"].append(int(profile))
            sized = not fixed_hours and meter.sized
            num["qty"].append(meter.qty * float(sizes[i]) if sized else meter.qty)
            num["per_month"].append(meter.per_month)
            num["block"].append(meter.block)
            num["price"].append(price)
            num["contracted_price"].append(cprice)
            num["credit"].append(meter.credit)
            num["growth"].append(0.0 if fixed_hours else d.growth)
            num["noise"].append(float(NOISE[profile]))
            num["start"].append(s)
            num["end"].append(e)
            num["tenant"].append(tenant_idx)
            num["commitment"].append(COMMITMENT_INDEX[d.commitment] if covered and d.commitment
                                     else -1)
            num["anomaly"].append(bits)


def _add_resource(b: _Builder, kind: Kind, variant: str, rid: str, name: str, sub: SubAccount,
                  region: str, size: float, start: int, end: int, util: str, d: Deployment,
                  price_factor: float) -> None:
    details = kind.details.get(variant, {})
    volume = kind.key in VOLUME_KINDS
    # Created before the window: some time in the last two years, stable per resource.
    before = -1 - int(hashlib.sha256(rid.encode()).hexdigest()[:8], 16) % 720
    launched = start if start > 0 else before
    r = b.resources
    r["size_gb"].append(kind.size_gb(variant, size))
    r["account_id"].append(sub.sub_id)
    r["name"].append(name)
    r["launched"].append(launched)
    hourly = kind.hourly_list_price(variant, size)
    gib = 0.0 if volume else float(details.get("MemoryGiB", 0))
    r["resource_id"].append(rid)
    r["provider"].append(kind.provider)
    r["region"].append(region)
    r["resource_type"].append(kind.inventory_type)
    r["instance_type"].append(variant)
    r["hourly_cost"].append(round(hourly * price_factor, 6))
    r["currency"].append(sub.billing.currency)
    r["start"].append(start)
    r["end"].append(end)
    r["util"].append(util)
    r["tenant"].append(d.tenant)
    r["attached"].append(d.attached if volume or kind.key == "alb" else None)
    r["vcpu"].append(int(details.get("vCPU", 0)))
    r["memory_gib"].append(gib)
