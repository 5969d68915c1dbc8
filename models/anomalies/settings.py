"""Anomaly detection settings: thresholds (global and per tenant) and model constants.

Read, highest precedence first, from a file given on the command line (``--thresholds
FILE``, TOML or YAML, keys at the top level or under ``[anomalies]``), the environment
(``FINOPS_ANOMALIES__MIN_IMPACT=250``, ``FINOPS_ANOMALIES__TENANTS='{"acme":
{"min_impact": 1000}}'``), then the defaults below.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from finops.errors import ConfigError


class Thresholds(BaseModel):
    """An event is reported only when its impact reaches both minimums."""

    model_config = ConfigDict(extra="forbid")

    min_impact: Decimal = Field(default=Decimal(50), ge=0,
                                description="minimum impact, in the billing currency")
    min_impact_pct: float = Field(default=0.10, ge=0,
                                  description="minimum impact as a share of expected cost")


class SeverityBands(BaseModel):
    """Severity from impact, as a share of a typical day's total spend (same currency)."""

    model_config = ConfigDict(extra="forbid")

    medium: float = Field(default=0.02, gt=0)
    high: float = Field(default=0.10, gt=0)
    critical: float = Field(default=0.50, gt=0)


class ModelParams(BaseModel):
    """The robust Holt-Winters filter run on every series (see ``detect.py``)."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(default=0.15, gt=0, lt=1, description="level smoothing")
    beta: float = Field(default=0.02, ge=0, lt=1, description="trend smoothing")
    gamma: float = Field(default=0.10, ge=0, lt=1, description="weekday-factor smoothing")
    phi: float = Field(default=0.95, gt=0, le=1, description="trend damping")
    fee_rate: float = Field(default=0.5, gt=0, le=1, description="month-start fee smoothing")
    scale_rate: float = Field(default=0.05, gt=0, lt=1, description="residual-scale smoothing")
    clip: float = Field(default=2.5, gt=0, description="Huber clip, in robust sigmas")
    rel_floor: float = Field(default=0.03, ge=0,
                             description="smallest sigma, as a share of the expected cost")
    abs_floor: float = Field(default=0.01, gt=0, description="smallest sigma, in money")


class AnomalySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FINOPS_ANOMALIES__", env_nested_delimiter="__", extra="forbid",
    )

    cost: Literal["effective", "billed"] = "effective"
    min_impact: Decimal = Field(default=Decimal(50), ge=0)
    min_impact_pct: float = Field(default=0.10, ge=0)
    tenants: dict[str, Thresholds] = Field(default_factory=dict)
    z_threshold: float = Field(default=6.0, gt=0, description="alert at this many robust sigmas")
    direction: Literal["up", "both"] = "up"
    min_history_days: int = Field(default=21, ge=7,
                                  description="no alerts before a series has this many days")
    incomplete_days: int = Field(default=2, ge=0,
                                 description="latest days of the export not judged yet")
    confirm_days: int = Field(default=5, ge=2,
                              description="consecutive outlying days that confirm a new level")
    planned_grace_days: int = Field(default=14, ge=0)
    repeat_factor: float = Field(default=1.5, ge=1)
    lookback_days: int = Field(default=30, ge=1, description="default --since, days back")
    severity: SeverityBands = SeverityBands()
    model: ModelParams = ModelParams()

    @property
    def global_thresholds(self) -> Thresholds:
        return Thresholds(min_impact=self.min_impact, min_impact_pct=self.min_impact_pct)

    def thresholds_for(self, tenant: str | None) -> Thresholds:
        if tenant is not None:
            for name, value in self.tenants.items():
                if name.strip().lower() == tenant.strip().lower():
                    return value
        return self.global_thresholds

    def day_floor(self) -> tuple[float, float]:
        """The smallest money and share a single day must move to count as anomalous.

        The most permissive of the global and per-tenant thresholds, so that a tenant with
        lower thresholds still gets its days flagged; events are checked per tenant later.
        """
        every = [self.global_thresholds, *self.tenants.values()]
        money = min(float(t.min_impact) for t in every) / self.confirm_days
        pct = min(t.min_impact_pct for t in every)
        return money, pct


def read_config_file(path: Path, section: str) -> dict[str, Any]:
    """A TOML or YAML file as a dict; its ``section`` table if it has one."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such file", hint="Give the path of a TOML or YAML file.")
    try:
        text = path.read_text(encoding="utf-8")
        is_yaml = path.suffix.lower() in {".yaml", ".yml"}
        data = (yaml.safe_load(text) or {}) if is_yaml else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: cannot be read: {first}",
                          hint="Fix the TOML or YAML syntax (.yaml/.yml files are read as "
                          "YAML, anything else as TOML).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings, got {type(data).__name__}")
    inner = data.get(section)
    return inner if isinstance(inner, dict) else data


def describe_errors(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"- {loc}: {msg}")
    return f"invalid settings in {where}:\n" + "\n".join(lines)


def load_anomaly_settings(path: Path | None = None) -> AnomalySettings:
    """Settings from ``path`` (if given) over the environment over the defaults."""
    data = read_config_file(path, "anomalies") if path is not None else {}
    try:
        return AnomalySettings(**data)
    except ValidationError as exc:
        where = str(path) if path else "FINOPS_ANOMALIES__* environment variables"
        raise ConfigError(describe_errors(exc, where),
                          hint="Fix the keys named above; see models/anomalies/settings.py "
                          "for every setting and its default.") from None
