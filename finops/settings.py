"""Settings from the environment (prefix ``FINOPS_``, nested with ``__``) and ``finops.toml``.

Precedence, highest first: explicit arguments (``--home``), environment variables, the
TOML file named by ``FINOPS_CONFIG`` (default ``./finops.toml``), the defaults here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from finops.errors import ConfigError

ENV_PREFIX = "FINOPS_"
DEFAULT_HOME = Path("data/warehouse")


def config_path() -> Path:
    return Path(os.environ.get("FINOPS_CONFIG", "finops.toml"))


class SmtpSettings(BaseModel):
    host: str = "localhost"
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = True
    ssl: bool = False
    sender: str = "finops@localhost"
    timeout_seconds: float = Field(default=30.0, gt=0)


class SnowflakeSettings(BaseModel):
    account: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    credit_price: float | None = Field(default=None, gt=0)


class BigQuerySettings(BaseModel):
    project: str | None = None
    region: str = "region-us"
    price_per_tib: float = Field(default=6.25, gt=0)


class DatabricksSettings(BaseModel):
    host: str | None = None
    http_path: str | None = None
    token: SecretStr | None = None


class IngestSettings(BaseModel):
    # The run fails when more than this share of the input's absolute cost is set aside.
    max_rejected_cost_share: float = Field(default=0.01, ge=0, le=1)


class AppSettings(BaseModel):
    base_url: str = "http://localhost:8501"
    port: int = Field(default=8501, ge=1, le=65535)
    address: str = "127.0.0.1"
    # Roles and identity sources for the app (models/access.py); default <home>/access.toml.
    access: Path | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = DEFAULT_HOME
    allocation_config: Path | None = None
    anomaly_thresholds: Path | None = None
    forecast_budgets: Path | None = None
    # The [reports] table of finops.toml; reports/config.py validates it.
    reports: dict[str, Any] | None = None
    smtp: SmtpSettings = SmtpSettings()
    snowflake: SnowflakeSettings = SnowflakeSettings()
    bigquery: BigQuerySettings = BigQuerySettings()
    databricks: DatabricksSettings = DatabricksSettings()
    ingest: IngestSettings = IngestSettings()
    app: AppSettings = AppSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_path())
        return (init_settings, env_settings, toml)


def _where_tried(loc: tuple[int | str, ...]) -> str:
    keys = [str(part) for part in loc]
    env = ENV_PREFIX + "__".join(k.upper() for k in keys)
    file_key = f"[{'.'.join(keys[:-1])}] {keys[-1]}" if len(keys) > 1 else keys[0]
    return f"env var {env}, then key `{file_key}` in {config_path()}"


def load_settings(**overrides: Any) -> Settings:
    """Load settings, turning validation errors into a message naming where each was read."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                lines.append(f"- unknown setting {'.'.join(map(str, loc))} (tried {_where_tried(loc)})")
            else:
                lines.append(
                    f"- {'.'.join(map(str, loc))}: {err['msg']} (tried {_where_tried(loc)})"
                )
        raise ConfigError(
            "invalid settings:\n" + "\n".join(lines),
            hint="Fix the environment variable or the file key named above.",
        ) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigError(
            f"cannot read config file {config_path()}: {exc}",
            hint="Fix the TOML syntax, or point FINOPS_CONFIG at another file.",
        ) from None
