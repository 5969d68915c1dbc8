"""The reports configuration: recipients and their scope, budgets, links, delivery, jobs.

Where it is read from, first found wins:

1. the file given with ``--config PATH`` (TOML, or YAML for ``.yaml``/``.yml``);
2. the file named by the environment variable ``FINOPS_REPORTS_CONFIG``;
3. the ``[reports]`` table of ``finops.toml`` (the file named by ``FINOPS_CONFIG``);
4. nothing: no recipients, no jobs (``--to`` still works).

In a file, the settings may sit at the top level or under a ``[reports]`` table, so one
``finops.toml`` can hold everything.
"""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from finops.errors import ConfigError
from finops.settings import config_path
from reports.cron import Cron, CronError

ENV_FILE = "FINOPS_REPORTS_CONFIG"
SECTION = "reports"
ALL = "*"

Role = Literal["finance", "platform", "tenant_owner", "viewer"]
Step = Literal["collect", "stages", "report"]
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def normalise_email(value: str) -> str:
    """``Local@Example.COM`` -> ``Local@example.com``; refuses anything but one plain address."""
    text = value.strip()
    if not _EMAIL.match(text) or len(text) > 254:
        raise ValueError(f"{value!r} is not a plain e-mail address (name@domain)")
    local, domain = text.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


class Recipient(_Strict):
    """One person or list. ``tenants = ["*"]`` means every tenant."""

    email: str
    name: str | None = Field(default=None, max_length=100)
    role: Role = "viewer"
    tenants: tuple[str, ...] = ()

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalise_email(value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "\r\n\0"):
            raise ValueError("a name cannot hold line breaks")
        return value

    @model_validator(mode="after")
    def _scope(self) -> Recipient:
        if not self.tenants and self.role in {"tenant_owner", "viewer"}:
            raise ValueError(f"{self.email}: role {self.role} needs `tenants` (a list of tenant "
                             f"names, or [\"*\"] for all)")
        return self

    @property
    def all_tenants(self) -> bool:
        return ALL in self.tenants or (not self.tenants and self.role in {"finance", "platform"})


class Budgets(_Strict):
    """Monthly budgets in one currency: the whole organisation and per tenant."""

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    total: Decimal | None = Field(default=None, ge=0)
    tenants: dict[str, Decimal] = Field(default_factory=dict)


class Links(_Strict):
    """App page of each section, as paths under ``settings.app.base_url``."""

    spend: str = "showback"
    movers: str = "showback"
    anomalies: str = "anomalies"
    month: str = "forecast"
    recommendations: str = "recommendations"
    freshness: str = "data-health"


class Delivery(_Strict):
    attempts: int = Field(default=4, ge=1, le=10)
    backoff_seconds: float = Field(default=2.0, ge=0, le=600)
    subject_prefix: str = Field(default="FinOps weekly report", max_length=80)

    @field_validator("subject_prefix")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(c in value for c in "\r\n\0"):
            raise ValueError("the subject prefix cannot hold line breaks")
        return value


class Job(_Strict):
    """A scheduled job: its steps run in order when the cron expression fires."""

    name: str
    cron: str
    timezone: str = "UTC"
    steps: tuple[Step, ...] = ("collect", "stages", "report")
    # Each a command line (a list of arguments, no shell); a leading "finops" runs this
    # toolkit's CLI with the scheduler's warehouse.
    collect: tuple[tuple[str, ...], ...] = ()
    send: bool = True  # the report step sends; False writes previews to out_dir instead
    out_dir: Path | None = None
    catch_up: bool = True  # after downtime, run the latest missed fire time once
    timeout_minutes: float = Field(default=120, gt=0)

    @field_validator("name")
    @classmethod
    def _job_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"job name {value!r} must match {_NAME.pattern}")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        try:
            Cron.parse(value)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                             "Europe/Berlin)") from None
        return value

    @field_validator("collect")
    @classmethod
    def _argv(cls, value: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        if any(not argv for argv in value):
            raise ValueError("a collect command cannot be empty")
        return value

    @model_validator(mode="after")
    def _steps(self) -> Job:
        if "collect" in self.steps and not self.collect:
            raise ValueError(f"job {self.name}: step collect needs `collect` commands "
                             "(or leave collect out of `steps`)")
        if "report" in self.steps and not self.send and self.out_dir is None:
            raise ValueError(f"job {self.name}: send = false needs out_dir")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def schedule(self) -> Cron:
        return Cron.parse(self.cron)


class ReportsConfig(_Strict):
    cost: Literal["effective_cost", "billed_cost"] = "effective_cost"
    top_movers: int = Field(default=5, ge=1, le=50)
    top_recommendations: int = Field(default=5, ge=1, le=50)
    max_anomalies: int = Field(default=10, ge=1, le=100)
    # A source whose billing stops more than this many days before the week's end is late.
    freshness_grace_days: int = Field(default=0, ge=0, le=31)
    max_label_length: int = Field(default=60, ge=8, le=200)
    recipients: tuple[Recipient, ...] = ()
    budgets: Budgets = Budgets()
    links: Links = Links()
    delivery: Delivery = Delivery()
    jobs: tuple[Job, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> ReportsConfig:
        for what, keys in (("recipient", [r.email.lower() for r in self.recipients]),
                           ("job", [j.name for j in self.jobs])):
            dupes = sorted({k for k in keys if keys.count(k) > 1})
            if dupes:
                raise ValueError(f"{what} listed twice: {', '.join(dupes)}")
        return self

    def recipient(self, email: str) -> Recipient | None:
        wanted = normalise_email(email).lower()
        return next((r for r in self.recipients if r.email.lower() == wanted), None)

    def job(self, name: str) -> Job | None:
        return next((j for j in self.jobs if j.name == name), None)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"reports config {path}: no such file",
                          hint=f"Give an existing TOML or YAML file (--config or {ENV_FILE}).")
    try:
        text = path.read_text(encoding="utf-8")
        data = (yaml.safe_load(text) or {}) if path.suffix.lower() in {".yaml", ".yml"} \
            else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"reports config {path}: cannot be read: {first}",
                          hint="Fix the TOML or YAML syntax.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"reports config {path}: expected a table, got {type(data).__name__}")
    inner = data.get(SECTION)
    return inner if isinstance(inner, dict) else data


def find_config(path: Path | None = None) -> tuple[dict[str, Any], str]:
    """The raw reports table and a description of where it came from."""
    if path is not None:
        return _read(path), str(path)
    env = os.environ.get(ENV_FILE)
    if env:
        return _read(Path(env)), f"{env} (from {ENV_FILE})"
    main = config_path()
    if main.is_file():
        try:
            data = tomllib.loads(main.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}  # load_settings reports a broken finops.toml with a better message
        table = data.get(SECTION)
        if isinstance(table, dict):
            return table, f"[{SECTION}] in {main}"
    return {}, "defaults (no reports config found)"


def load_config(path: Path | None = None) -> ReportsConfig:
    data, where = find_config(path)
    try:
        return ReportsConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            lines.append(f"- {loc}: {msg}")
        raise ConfigError(f"invalid reports config in {where}:\n" + "\n".join(lines),
                          hint="Fix the keys named above; the README's Weekly report section "
                          "shows every key.") from None
