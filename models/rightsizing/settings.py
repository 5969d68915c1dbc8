"""Right-sizing settings: the need, the idle rules, what counts as a material change.

Read, highest precedence first, from the command line (``--percentile``, ``--headroom``,
``--lookback-days``, ``--cross-family``), a file (``--config FILE``, TOML or YAML, keys at
the top level or under ``[rightsizing]``), the environment (``FINOPS_RIGHTSIZING__HEADROOM=0.3``,
``FINOPS_RIGHTSIZING__COMMITMENT_DISCOUNT='{"AWS": 0.3}'``), then the defaults below.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from finops.errors import ConfigError

HOURS_PER_MONTH = Decimal(730)


class RightsizingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FINOPS_RIGHTSIZING__", env_nested_delimiter="__", extra="forbid",
    )

    # ---- the need ---------------------------------------------------------------------
    cpu_percentile: float = Field(default=99.0, ge=50, le=100,
                                  description="CPU need = this percentile of the samples (99, 95, 90)")
    percentile_confidence: float = Field(
        default=0.95, ge=0, lt=1,
        description="the CPU need is the upper confidence bound of the percentile at this "
        "confidence (0: the plain sample percentile)")
    headroom: float = Field(default=0.20, ge=0, le=4, description="added to the CPU and memory need")
    lookback_days: int = Field(default=14, ge=2, le=400)
    min_hours: int = Field(default=30, ge=1, description="no recommendation with fewer hours of data")
    cross_family: bool = Field(default=False, description="allow moving to another instance family")
    include_upsize: bool = Field(default=False,
                                 description="also report types too small for their need")
    min_monthly_savings: Decimal = Field(default=Decimal("1.00"), ge=0)

    # ---- idle -------------------------------------------------------------------------
    idle_cpu_p95: float = Field(default=3.0, ge=0, le=100)
    idle_network_bytes_per_day: float = Field(default=5_000_000, ge=0,
                                              description="in + out, every day of the lookback")
    idle_min_span: float = Field(default=0.9, gt=0, le=1,
                                 description="share of the lookback the data must span")
    snapshot_max_age_days: int = Field(default=180, ge=1)

    # ---- lifecycle ----------------------------------------------------------------------
    material_change: float = Field(
        default=0.20, ge=0,
        description="a dismissed recommendation comes back when its monthly savings move by more "
        "than this share, or its current or recommended value changes")

    # ---- commitments ------------------------------------------------------------------
    commitment_discount: dict[str, float] = Field(
        default_factory=lambda: {"AWS": 0.28, "Google Cloud": 0.37, "Microsoft": 0.30},
        description="discount of a 1-year no-upfront commitment when the bill shows none")
    commitment_term_months: int = Field(default=12, ge=1)

    # ---- warehouses -------------------------------------------------------------------
    credit_price: Decimal = Field(default=Decimal("3.00"), gt=0,
                                  description="Snowflake $ per credit when none is known")
    target_auto_suspend_s: int = Field(default=60, ge=60)
    default_auto_suspend_s: int = Field(default=600, ge=0,
                                        description="assumed when neither given nor inferable")
    max_queued_share: float = Field(default=0.01, ge=0, le=1)
    max_warehouse_load: float = Field(default=0.5, gt=0,
                                      description="average running queries below which a "
                                      "warehouse is oversized")
    bq_on_demand_per_tib: Decimal = Field(default=Decimal("6.25"), gt=0)
    bq_slot_hour_price: Decimal = Field(default=Decimal("0.06"), gt=0,
                                        description="Enterprise edition, pay as you go")
    bq_autoscale_overhead: float = Field(default=1.5, ge=1,
                                         description="billed slot-hours per used slot-hour")

    @property
    def hours_per_month(self) -> Decimal:
        return HOURS_PER_MONTH


def _read(path: Path) -> dict[str, Any]:
    from models.anomalies.settings import read_config_file

    return read_config_file(path, "rightsizing")


def load_rightsizing_settings(path: Path | None = None, **overrides: Any) -> RightsizingSettings:
    """Settings from ``overrides`` (non-None) over ``path`` over the environment over defaults."""
    data = _read(path) if path is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return RightsizingSettings(**data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"- {loc}: {msg}")
        where = str(path) if path else "the command line or FINOPS_RIGHTSIZING__* variables"
        raise ConfigError(f"invalid right-sizing settings in {where}:\n" + "\n".join(lines),
                          hint="See models/rightsizing/settings.py for every setting and its "
                          "default.") from None
