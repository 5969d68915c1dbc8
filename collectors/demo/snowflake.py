"""The shared Snowflake account: query history, warehouse metering, and its billing rows.

Queries come first; each warehouse-hour's metered credits follow from the queries that
ran in it (plus auto-suspend tails and a BI warehouse kept awake through office hours,
the idle cost a query-cost model has to spread). Billing rows are the metered credits
summed per warehouse and day times the contract price, in integer nano-credits, so
``sum(CREDITS_USED) * price`` equals the billed cost per day exactly. Column names are
those of SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY and WAREHOUSE_METERING_HISTORY.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from collectors.demo.catalog import WEEKLY, Profile
from collectors.demo.frames import account_fields, rows_frame
from collectors.demo.money import SCALE
from collectors.demo.org import SUB_ACCOUNTS, TEAM_BY_NAME, TENANTS
from collectors.demo.window import Period, Window, midnight
from finops.focus import TIMESTAMP

CREDIT_PRICE: Final = Decimal("3.00")  # Enterprise edition, capacity contract
LIST_CREDIT_PRICE: Final = Decimal("4.00")  # the on-demand price
STORAGE_PRICE: Final = 23.0  # per TB-month, capacity
STORAGE_TB: Final = 38.0
STORAGE_GROWTH: Final = 0.04  # per month
NANO: Final = 10**9
# Queries at the reference scale; the count follows the square root of the scale, so a
# 10M-row demo has a few hundred thousand, not millions.
QUERIES: Final = 40_000
MIN_QUERIES: Final = 2_000
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S%.3f%:z"
ACCOUNT: Final = SUB_ACCOUNTS["snowflake-prod"]
REGION: Final = ("AWS_US_EAST_1", "AWS US East (N. Virginia)")
HUMANS: Final = ("ANA.LOPEZ", "BEN.OKAFOR", "CHEN.WEI", "DANA.KIM", "ELI.MORGAN",
                 "FARAH.NASSER")


@dataclass(frozen=True)
class SnowWarehouse:
    name: str
    size: str
    credits_per_hour: int
    auto_suspend: int  # seconds of idle running after the last query
    share: float  # of all queries
    hours: tuple[float, ...]  # relative load per UTC hour
    profile: Profile  # weekly shape
    tenants: tuple[str, ...]
    team: str
    role: str
    user: str | None  # None: people
    exec_median_s: float
    exec_sigma: float
    untagged: float  # share of queries without a tenant in QUERY_TAG
    concurrency: float  # busy seconds per running second when queries overlap
    query_types: tuple[tuple[str, float], ...]
    schemas: tuple[str, ...]
    # UTC hours on weekdays the warehouse is kept running whether or not queries come.
    keep_awake: tuple[int, int] | None = None


def _hours(peaks: Mapping[int, float], base: float) -> tuple[float, ...]:
    return tuple(peaks.get(h, base) for h in range(24))


_ALL = tuple(t.name for t in TENANTS)
_OFFICE = _hours(dict.fromkeys(range(13, 23), 1.0) | {12: 0.5, 23: 0.4}, 0.05)
WAREHOUSES: Final = (
    SnowWarehouse("ETL_WH", "Large", 8, 300, 0.32, _hours(dict.fromkeys(range(0, 6), 1.0)
                                                         | {6: 0.5, 12: 0.4}, 0.06),
                  Profile.BATCH, _ALL, "data-platform", "TRANSFORMER", "DBT_CLOUD_SVC", 40.0, 1.1,
                  0.03, 0.85,
                  (("MERGE", 0.35), ("INSERT", 0.3), ("CREATE_TABLE_AS_SELECT", 0.15),
                   ("COPY", 0.1), ("DELETE", 0.05), ("SELECT", 0.05)),
                  ("RAW", "STAGING", "MARTS")),
    SnowWarehouse("BI_WH", "Medium", 4, 600, 0.43, _OFFICE, Profile.INTERACTIVE,
                  tuple(t.name for t in TENANTS if t.team != "ml"), "analytics", "REPORTER",
                  "LOOKER_SVC", 2.5, 1.0, 0.08, 0.45, (("SELECT", 1.0),), ("MARTS",),
                  keep_awake=(10, 20)),
    SnowWarehouse("ADHOC_WH", "Small", 2, 60, 0.18, _OFFICE, Profile.INTERACTIVE, _ALL,
                  "analytics", "ANALYST", None, 12.0, 1.4, 0.55, 0.6,
                  (("SELECT", 0.9), ("CREATE_TABLE_AS_SELECT", 0.05), ("SHOW", 0.05)),
                  ("MARTS", "STAGING")),
    SnowWarehouse("ML_WH", "X-Large", 16, 120, 0.07, _hours(dict.fromkeys(range(7, 11), 1.0), 0.1),
                  Profile.BATCH, tuple(t.name for t in TENANTS if t.team == "ml"), "ml",
                  "ML_ENGINEER", "FEAST_SVC", 150.0, 0.9, 0.05, 0.9,
                  (("SELECT", 0.6), ("CREATE_TABLE_AS_SELECT", 0.25), ("INSERT", 0.15)),
                  ("FEATURES",)),
)

TEMPLATES: Final = {
    "SELECT": (
        "SELECT event_date, COUNT(*) AS events, COUNT(DISTINCT user_id) AS users FROM "
        "{db}.{schema}.FCT_EVENTS WHERE event_date >= '{date}' GROUP BY 1 ORDER BY 1",
        "SELECT account_id, SUM(amount) AS revenue FROM {db}.{schema}.FCT_ORDERS WHERE "
        "order_date = '{date}' GROUP BY 1 ORDER BY 2 DESC LIMIT 100",
        "SELECT * FROM {db}.{schema}.DIM_CUSTOMERS WHERE updated_at >= '{date}'",
        "SELECT page, AVG(duration_ms) FROM {db}.{schema}.FCT_PAGEVIEWS WHERE event_date "
        "BETWEEN DATEADD(day, -7, '{date}') AND '{date}' GROUP BY page",
    ),
    "MERGE": (
        "MERGE INTO {db}.{schema}.FCT_EVENTS t USING {db}.RAW.EVENTS_STREAM s ON t.event_id = "
        "s.event_id WHEN NOT MATCHED THEN INSERT SELECT s.* /* run {date} */",
        "MERGE INTO {db}.{schema}.DIM_CUSTOMERS t USING {db}.STAGING.STG_CUSTOMERS s ON "
        "t.customer_id = s.customer_id WHEN MATCHED THEN UPDATE SET t.updated_at = '{date}'",
    ),
    "INSERT": (
        "INSERT INTO {db}.{schema}.FCT_ORDERS SELECT * FROM {db}.STAGING.STG_ORDERS WHERE "
        "order_date = '{date}'",
    ),
    "CREATE_TABLE_AS_SELECT": (
        "CREATE OR REPLACE TABLE {db}.{schema}.AGG_DAILY_USAGE AS SELECT event_date, "
        "account_id, COUNT(*) n FROM {db}.MARTS.FCT_EVENTS WHERE event_date <= '{date}' "
        "GROUP BY 1, 2",
    ),
    "COPY": (
        "COPY INTO {db}.RAW.EVENTS FROM @{db}.RAW.S3_LANDING/events/{date}/ "
        "FILE_FORMAT = (TYPE = PARQUET)",
    ),
    "DELETE": (
        "DELETE FROM {db}.{schema}.FCT_EVENTS WHERE event_date < DATEADD(day, -400, '{date}')",
    ),
    "SHOW": ("SHOW TABLES IN SCHEMA {db}.{schema}",),
}
QUERY_TYPES: Final = tuple(TEMPLATES)
SCHEMAS: Final = tuple(sorted({s for w in WAREHOUSES for s in w.schemas}))


@dataclass
class SnowflakeUsage:
    """Per warehouse and window day: metered nano-credits; per day: storage TB-days."""

    compute: npt.NDArray[np.int64]  # (warehouses, days)
    cloud: npt.NDArray[np.int64]
    storage_tb: npt.NDArray[np.float64]  # per day
    queries: int
    metering_rows: int


def query_count(factor: float) -> int:
    return max(MIN_QUERIES, round(QUERIES * float(np.sqrt(factor))))


def _hex_ids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(16 * n).hex()
    return [f"01{raw[i + 2:i + 8]}-{raw[i + 8:i + 12]}-{raw[i + 12:i + 16]}-{raw[i + 16:i + 20]}-"
            f"{raw[i + 20:i + 32]}" for i in range(0, 32 * n, 32)]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _query_tag(tenant: str, wh: SnowWarehouse, *, untagged: bool, odd: bool) -> str:
    if untagged:
        return ""
    value = tenant.upper() if odd else tenant
    extra: dict[str, str] = {
        "ETL_WH": {"app": "dbt"}, "BI_WH": {"app": "looker"}, "ML_WH": {"pipeline": "features"},
    }.get(wh.name, {})
    return json.dumps({"tenant": value, **extra}, separators=(",", ":"))


def generate_queries(window: Window, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """QUERY_HISTORY rows, sorted by START_TIME (all columns but the derived text ones
    are vectorised; texts and hashes are made once per distinct template, tenant, day)."""
    shares = np.array([w.share for w in WAREHOUSES])
    wh_idx = rng.choice(len(WAREHOUSES), size=n, p=shares / shares.sum())
    growth = np.power(1.03, window.months_elapsed)
    day = np.empty(n, dtype=np.int64)
    hour = np.empty(n, dtype=np.int64)
    tenant = np.empty(n, dtype=np.int64)
    qtype = np.empty(n, dtype=np.int64)
    exec_s = np.empty(n, dtype=np.float64)
    untag_p = np.empty(n, dtype=np.float64)
    weights = np.array([t.weight for t in TENANTS])
    for w, wh in enumerate(WAREHOUSES):
        m = np.flatnonzero(wh_idx == w)
        p_day = WEEKLY[wh.profile, window.weekday] * growth
        day[m] = rng.choice(window.n_days, size=m.size, p=p_day / p_day.sum())
        p_hour = np.array(wh.hours)
        hour[m] = rng.choice(24, size=m.size, p=p_hour / p_hour.sum())
        allowed = [i for i, t in enumerate(TENANTS) if t.name in wh.tenants]
        p_t = weights[allowed]
        tenant[m] = np.array(allowed)[rng.choice(len(allowed), size=m.size, p=p_t / p_t.sum())]
        names = [q for q, _ in wh.query_types]
        p_q = np.array([s for _, s in wh.query_types])
        qtype[m] = np.array([QUERY_TYPES.index(q) for q in names])[
            rng.choice(len(names), size=m.size, p=p_q / p_q.sum())]
        exec_s[m] = wh.exec_median_s * np.exp(rng.normal(0.0, wh.exec_sigma, m.size))
        untag_p[m] = wh.untagged
    second = rng.integers(0, 3600, n)
    start_ms = ((day * 24 + hour) * 3600 + second) * 1000 + rng.integers(0, 1000, n)
    compile_ms = np.rint(120 * np.exp(rng.normal(0.0, 0.8, n))).astype(np.int64)
    queued = rng.random(n) < np.where(wh_idx == 1, 0.05, 0.01)
    queued_ms = np.where(queued, np.rint(rng.exponential(4_000, n)), 0).astype(np.int64)
    failed = rng.random(n) < 0.025
    exec_ms = np.rint(np.where(failed, 0.3, 1.0) * exec_s * 1000).astype(np.int64) + 5
    total_ms = compile_ms + queued_ms + exec_ms
    size_credits = np.array([w.credits_per_hour for w in WAREHOUSES])[wh_idx]
    bytes_scanned = np.rint(exec_ms / 1000 * size_credits * 24e6
                            * np.exp(rng.normal(0.0, 0.7, n))).astype(np.int64)
    bytes_scanned = np.where(qtype == QUERY_TYPES.index("SHOW"), 0, bytes_scanned)
    rows_produced = np.rint(np.exp(rng.normal(6.0, 2.5, n))).astype(np.int64)
    # Cloud services: compiling and planning, in nano-credits so the meter sums exactly.
    cloud_nano = np.rint((compile_ms / 1000 * 0.004 + 0.0002) * NANO).astype(np.int64)
    untagged = rng.random(n) < untag_p
    odd = rng.random(n) < 0.02
    template = rng.integers(0, 1 << 30, n)
    schema_pick = rng.integers(0, 1 << 30, n)
    human = rng.integers(0, len(HUMANS), n)

    # Text columns: small vocabularies gathered by index; query texts and hashes made
    # once per distinct (type, template, schema, tenant, day).
    n_schemas = np.array([len(w.schemas) for w in WAREHOUSES])[wh_idx]
    schema_code = np.array([[SCHEMAS.index(w.schemas[i % len(w.schemas)]) for i in range(3)]
                            for w in WAREHOUSES])[wh_idx, schema_pick % n_schemas]
    n_templates = np.array([len(TEMPLATES[q]) for q in QUERY_TYPES])[qtype]
    # One int64 per combination (template < 8, schema < 8, tenant < 16, day < 4096).
    shape = (len(QUERY_TYPES), 8, 8, 16, 4096)
    packed = np.ravel_multi_index((qtype, template % n_templates, schema_code, tenant, day),
                                  shape)
    combos, combo_idx = np.unique(packed, return_inverse=True)
    dates = [window.day(d).isoformat() for d in range(window.n_days)]
    texts, qhash, phash = [], [], []
    params: dict[tuple[int, int, int, int], tuple[str, str]] = {}
    for q, tpl, sch, t, d in zip(*(c.tolist() for c in np.unravel_index(combos, shape)),
                                 strict=True):
        if (q, tpl, sch, t) not in params:
            fmt = TEMPLATES[QUERY_TYPES[q]][tpl]
            db = f"TENANT_{TENANTS[t].name.upper()}"
            partial = fmt.replace("{db}", db).replace("{schema}", SCHEMAS[sch])
            params[(q, tpl, sch, t)] = (partial, _md5(partial.replace("{date}", "?")))
        partial, param_hash = params[(q, tpl, sch, t)]
        text = partial.replace("{date}", dates[d])
        texts.append(text)
        qhash.append(_md5(text))
        phash.append(param_hash)
    combo_idx = combo_idx.reshape(-1)

    def vocab(name: str, values: list[str], idx: npt.NDArray[np.int64]) -> pl.Series:
        return pl.Series(name, values, dtype=pl.String).gather(idx)

    n_wh, n_t = len(WAREHOUSES), len(TENANTS)
    tags = [""] + [_query_tag(t.name, w, untagged=False, odd=bool(o))
                   for w in WAREHOUSES for t in TENANTS for o in (0, 1)]
    tag_idx = np.where(untagged, 0, 1 + (wh_idx * n_t + tenant) * 2 + odd)
    users = [w.user or "" for w in WAREHOUSES] + list(HUMANS)
    user_idx = np.where([WAREHOUSES[w].user is None for w in range(n_wh)], 1, 0)[wh_idx]
    origin = midnight(window.start)
    frame = pl.DataFrame([
        pl.Series("QUERY_ID", _hex_ids(rng, n), dtype=pl.String),
        vocab("QUERY_TEXT", texts, combo_idx),
        vocab("QUERY_HASH", qhash, combo_idx),
        vocab("QUERY_PARAMETERIZED_HASH", phash, combo_idx),
        vocab("DATABASE_NAME", [f"TENANT_{t.name.upper()}" for t in TENANTS], tenant),
        vocab("SCHEMA_NAME", list(SCHEMAS), schema_code),
        vocab("QUERY_TYPE", list(QUERY_TYPES), qtype),
        vocab("USER_NAME", users, np.where(user_idx == 1, n_wh + human, wh_idx)),
        vocab("ROLE_NAME", [w.role for w in WAREHOUSES], wh_idx),
        vocab("WAREHOUSE_NAME", [w.name for w in WAREHOUSES], wh_idx),
        vocab("WAREHOUSE_SIZE", [w.size for w in WAREHOUSES], wh_idx),
        vocab("QUERY_TAG", tags, tag_idx),
        vocab("EXECUTION_STATUS", ["SUCCESS", "FAIL"], failed.astype(np.int64)),
        pl.Series("_start_ms", start_ms),
        pl.Series("TOTAL_ELAPSED_TIME", total_ms),
        pl.Series("COMPILATION_TIME", compile_ms),
        pl.Series("QUEUED_OVERLOAD_TIME", queued_ms),
        pl.Series("EXECUTION_TIME", exec_ms),
        pl.Series("BYTES_SCANNED", bytes_scanned),
        pl.Series("ROWS_PRODUCED", np.where(failed, 0, rows_produced)),
        pl.Series("_cloud_nano", cloud_nano),
        pl.Series("_wh", wh_idx.astype(np.int32)),
        pl.Series("_hour", (day * 24 + hour).astype(np.int32)),
    ])
    start = pl.lit(origin, TIMESTAMP) + pl.duration(milliseconds=pl.col("_start_ms"))
    frame = frame.with_columns(
        pl.lit("STANDARD").alias("WAREHOUSE_TYPE"),
        start.alias("START_TIME"),
        (start + pl.duration(milliseconds=pl.col("TOTAL_ELAPSED_TIME"))).alias("END_TIME"),
    ).drop("_start_ms")
    return frame.sort("START_TIME", "QUERY_ID")


def meter(window: Window, queries: pl.DataFrame) -> tuple[pl.DataFrame, SnowflakeUsage]:
    """Hourly WAREHOUSE_METERING_HISTORY from the queries, and the daily totals."""
    hours = window.n_days * 24
    wh_idx = queries["_wh"].to_numpy()
    hour = queries["_hour"].to_numpy()
    exec_s = queries["EXECUTION_TIME"].to_numpy() / 1000.0
    cloud_q = queries["_cloud_nano"].to_numpy()
    weekday = np.repeat(window.weekday, 24)
    hour_of_day = np.tile(np.arange(24), window.n_days)
    compute = np.zeros((len(WAREHOUSES), hours), dtype=np.int64)
    cloud = np.zeros((len(WAREHOUSES), hours), dtype=np.int64)
    for w, wh in enumerate(WAREHOUSES):
        m = wh_idx == w
        busy = np.bincount(hour[m], weights=exec_s[m], minlength=hours)
        count = np.bincount(hour[m], minlength=hours)
        running = busy * wh.concurrency + np.minimum(count, 4) * wh.auto_suspend * 0.5
        # Snowflake bills at least a minute each time a warehouse resumes.
        running = np.where(count > 0, np.maximum(running, 60.0), 0.0)
        if wh.keep_awake is not None:
            lo, hi = wh.keep_awake
            awake = (weekday < 5) & (hour_of_day >= lo) & (hour_of_day <= hi)
            running = np.where(awake, np.maximum(running, 3_300.0), running)
        running = np.minimum(running, 3_600.0)
        compute[w] = np.rint(wh.credits_per_hour * running / 3_600.0 * NANO).astype(np.int64)
        cloud[w] = np.bincount(hour[m], weights=cloud_q[m], minlength=hours).astype(np.int64)
    w_idx, h_idx = np.nonzero((compute > 0) | (cloud > 0))
    origin = midnight(window.start)
    nano = pl.Decimal(38, 9)
    metering = pl.DataFrame({
        "START_TIME": pl.Series(np.datetime64(origin.replace(tzinfo=None), "us")
                                + h_idx.astype("timedelta64[h]")).dt.replace_time_zone("UTC"),
        "WAREHOUSE_ID": (w_idx + 1).astype(np.int64),
        "WAREHOUSE_NAME": [WAREHOUSES[w].name for w in w_idx.tolist()],
        "_compute": compute[w_idx, h_idx],
        "_cloud": cloud[w_idx, h_idx],
    }).with_columns(
        (pl.col("START_TIME") + pl.duration(hours=1)).alias("END_TIME"),
        _credits(pl.col("_compute") + pl.col("_cloud"), nano).alias("CREDITS_USED"),
        _credits(pl.col("_compute"), nano).alias("CREDITS_USED_COMPUTE"),
        _credits(pl.col("_cloud"), nano).alias("CREDITS_USED_CLOUD_SERVICES"),
    ).select("START_TIME", "END_TIME", "WAREHOUSE_ID", "WAREHOUSE_NAME", "CREDITS_USED",
             "CREDITS_USED_COMPUTE", "CREDITS_USED_CLOUD_SERVICES")
    daily_compute = compute.reshape(len(WAREHOUSES), window.n_days, 24).sum(axis=2)
    daily_cloud = cloud.reshape(len(WAREHOUSES), window.n_days, 24).sum(axis=2)
    storage = STORAGE_TB * np.power(1.0 + STORAGE_GROWTH, window.months_elapsed)
    usage = SnowflakeUsage(daily_compute, daily_cloud, storage, queries.height, metering.height)
    return metering, usage


def _credits(expr: pl.Expr, dtype: pl.Decimal) -> pl.Expr:
    return (expr.cast(pl.Decimal(38, 0)) * pl.lit(Decimal(1) / NANO, dtype)).cast(dtype)


def _billing_lines() -> tuple[pl.DataFrame, list[int]]:
    """One line per warehouse and meter, plus storage: their text columns, tags, prices.

    Also each line's unit price in cost units per nano-unit of quantity (whole numbers:
    that is what makes credits times price exact)."""
    acct = account_fields(ACCOUNT)
    rows: list[dict[str, Any]] = []
    per_nano: list[int] = []
    for wh in WAREHOUSES:
        team = TEAM_BY_NAME[wh.team]
        tags = {"team": wh.team, "env": "prod", "cost-center": team.cost_center}
        for service, meter_name in (("Snowflake Compute", "Warehouse Compute"),
                                    ("Snowflake Cloud Services", "Cloud Services")):
            rows.append({
                "ServiceName": service, "ServiceCategory": "Databases",
                "ServiceSubcategory": "Data Warehouses",
                "ResourceId": f"snowflake://{ACCOUNT.sub_id}/warehouse/{wh.name}",
                "ResourceName": wh.name, "ResourceType": "Warehouse",
                "SkuId": f"ENTERPRISE-{meter_name.upper().replace(' ', '-')}",
                "SkuMeter": meter_name,
                "SkuPriceDetails": json.dumps({"WarehouseSize": wh.size}, separators=(",", ":")),
                "ChargeDescription": f"{meter_name} credits: warehouse {wh.name} ({wh.size})",
                "ConsumedUnit": "Credits", "PricingUnit": "Credits",
                "ListUnitPrice": int(LIST_CREDIT_PRICE * SCALE),
                "ContractedUnitPrice": int(CREDIT_PRICE * SCALE), "Tags": tags,
            })
            per_nano.append(int(CREDIT_PRICE * SCALE) // NANO)
    rows.append({
        "ServiceName": "Snowflake Storage", "ServiceCategory": "Storage",
        "ServiceSubcategory": "Storage Platforms",
        "ResourceId": f"snowflake://{ACCOUNT.sub_id}", "ResourceName": ACCOUNT.name,
        "ResourceType": "Account", "SkuId": "CAPACITY-STORAGE", "SkuMeter": "Storage",
        "ChargeDescription": "Storage: average TB stored, capacity rate",
        "ConsumedUnit": "TB-Months", "PricingUnit": "TB-Months",
        "ListUnitPrice": int(STORAGE_PRICE * SCALE),
        "ContractedUnitPrice": int(STORAGE_PRICE * SCALE),
        "Tags": {"team": "data-platform", "env": "prod", "cost-center": "CC-4100"},
    })
    per_nano.append(int(STORAGE_PRICE * SCALE) // NANO)
    for row in rows:
        row.update(acct, ChargeCategory="Usage", ChargeFrequency="Usage-Based",
                   PricingCategory="Standard", RegionId=REGION[0], RegionName=REGION[1])
    return rows_frame(rows), per_nano


def billing_rows(window: Window, usage: SnowflakeUsage, period: Period) -> pl.DataFrame:
    """The Snowflake invoice lines of one period: per warehouse and day, compute and cloud
    services credits; per day, storage."""
    static, per_nano = _billing_lines()
    days = np.arange(period.first_day, period.last_day + 1)
    storage = np.rint(usage.storage_tb[days] / window.days_in_month[days] * NANO)
    # Quantity per line and day, in nano-units: credits, then TB-months of storage.
    qty = np.concatenate([
        np.stack([usage.compute[:, days], usage.cloud[:, days]], axis=1).reshape(-1, days.size),
        storage.astype(np.int64)[None, :],
    ])
    di_local, li = np.nonzero(qty.T > 0)
    nano = qty[li, di_local]
    cost = nano * np.array(per_nano, dtype=np.int64)[li]
    list_cost = np.where(li < len(WAREHOUSES) * 2, nano * (int(LIST_CREDIT_PRICE * SCALE) // NANO),
                         cost)
    di = days[di_local]
    quantity = nano / NANO
    return static[li].with_columns(
        ChargePeriodStart=window.midnights.gather(di),
        ChargePeriodEnd=window.midnights.gather(di + 1),
        ConsumedQuantity=pl.Series(quantity),
        PricingQuantity=pl.Series(quantity),
        ListCost=pl.Series(list_cost),
        ContractedCost=pl.Series(cost),
        BilledCost=pl.Series(cost),
        EffectiveCost=pl.Series(cost),
    )


def write_files(folder: Path, queries: pl.DataFrame, metering: pl.DataFrame) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    qpath = folder / "query_history.csv"
    mpath = folder / "warehouse_metering_history.csv"
    out = queries.with_columns(
        _credits(pl.col("_cloud_nano"), pl.Decimal(38, 9)).alias("CREDITS_USED_CLOUD_SERVICES"),
    ).select(
        "QUERY_ID", "QUERY_TEXT", "QUERY_HASH", "QUERY_PARAMETERIZED_HASH", "DATABASE_NAME",
        "SCHEMA_NAME", "QUERY_TYPE", "USER_NAME", "ROLE_NAME", "WAREHOUSE_NAME",
        "WAREHOUSE_SIZE", "WAREHOUSE_TYPE", "QUERY_TAG", "EXECUTION_STATUS", "START_TIME",
        "END_TIME", "TOTAL_ELAPSED_TIME", "COMPILATION_TIME", "QUEUED_OVERLOAD_TIME",
        "EXECUTION_TIME", "BYTES_SCANNED", "ROWS_PRODUCED", "CREDITS_USED_CLOUD_SERVICES",
    )
    out.write_csv(qpath, datetime_format=TIME_FORMAT)
    metering.write_csv(mpath, datetime_format=TIME_FORMAT)
    return qpath, mpath
