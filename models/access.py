"""Who may read what: identities, roles, and warehouse readers scoped to a viewer's tenants.

The app never reads the warehouse itself. It resolves the person at the keyboard to a
:class:`Principal` (role and tenants), then reads through :class:`ScopedWarehouse`, a
read-only :class:`~finops.warehouse.Warehouse` whose ``scan`` returns only the rows that
principal may see. Every model function (showback, explain, query cost, anomalies,
forecasts, recommendations) takes a warehouse, so handing it the scoped one scopes every
figure it computes, and no page can forget to. A dataset without a rule here reads as
empty for anyone scoped to some tenants: deny by default.

Roles (the same four as the weekly report):

=============  ==========================================  ================================
role           reads                                       acts
=============  ==========================================  ================================
finance        every tenant (or the ``tenants`` listed)    labels anomalies
platform       every tenant (or the ``tenants`` listed)    labels anomalies, decides on
                                                           recommendations
tenant_owner   only its tenants                            labels its anomalies
viewer         its ``tenants`` (``["*"]`` for all), no     nothing
               recommendations
=============  ==========================================  ================================

Who is who comes from the access config's ``users`` first, then from the allocation
config: the ``owners`` of a tenant, and of a team (for each of the team's tenants), are
that tenant's ``tenant_owner``. Anyone else who signs in is refused.

The access config is a TOML or YAML file (``FINOPS_APP__ACCESS``, else
``<home>/access.toml`` or ``access.yaml``); its keys may sit at the top level or under an
``[access]`` table::

    identity = "proxy"                 # auto (default), oidc, proxy or none

    [proxy]                            # an authenticating proxy such as oauth2-proxy
    header = "X-Forwarded-Email"
    trusted = ["10.0.4.17", "10.0.5.0/24"]   # the proxy's addresses: no one else is believed

    [[users]]
    email = "cfo@example.com"
    role = "finance"

    [[users]]
    email = "analyst@example.com"
    role = "viewer"
    tenants = ["acme", "globex"]

Identity sources (:func:`serving_mode`): Streamlit's OIDC login (``st.login``, the
``[auth]`` section of ``.streamlit/secrets.toml``), else the trusted proxy's header, else
none, which is only allowed on a loopback address: the local user is then a ``finance``
developer (:data:`DEV_IDENTITY`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from finops.errors import ConfigError
from finops.warehouse import PartitionWrite, Warehouse
from models.allocation.config import AllocationConfig
from models.anomalies.settings import describe_errors, read_config_file

Role = Literal["finance", "platform", "tenant_owner", "viewer"]
IdentityMode = Literal["auto", "oidc", "proxy", "none"]
Mode = Literal["oidc", "proxy", "dev"]
ROLES: Final[tuple[Role, ...]] = ("finance", "platform", "tenant_owner", "viewer")
ROLE_LABELS: Final[dict[str, str]] = {
    "finance": "Finance", "platform": "Platform", "tenant_owner": "Tenant owner", "viewer": "Viewer",
}
ALL: Final = "*"
ENV_FILE: Final = "FINOPS_APP__ACCESS"
DEFAULT_FILES: Final = ("access.toml", "access.yaml", "access.yml")
DEFAULT_HEADER: Final = "X-Forwarded-Email"
LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_EMAIL: Final = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")

# Datasets and the column naming whose rows they are.
CUBE: Final = "cube"
ALLOCATED: Final = "allocated"
ANOMALIES: Final = "anomalies"
FORECASTS: Final = "forecasts"
RECOMMENDATIONS: Final = "recommendations"
QUERY_COST: Final = "query_cost"
QUERY_SHARES: Final = "query_shares"
TENANT_COLUMNS: Final[dict[str, str]] = {
    CUBE: "x_Tenant", ALLOCATED: "x_Tenant", QUERY_COST: "tenant", QUERY_SHARES: "tenant",
}
# How many of the latest allocated months say whose a resource is.
OWNER_PERIODS: Final = 2


def normalise_email(value: str) -> str:
    """``Ana@Example.COM `` → ``ana@example.com``; refuses anything but one plain address."""
    text = value.strip()
    if len(text) > 254 or not _EMAIL.match(text):
        raise ValueError(f"{value!r} is not a plain e-mail address (name@domain)")
    return text.lower()


# ---- config ----------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class User(_Strict):
    """One person (or group address) and what they may see."""

    email: str
    role: Role
    tenants: tuple[str, ...] = ()  # finance and platform: empty means every tenant

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normalise_email(value)

    @model_validator(mode="after")
    def _scope(self) -> User:
        if not self.tenants and self.role in {"tenant_owner", "viewer"}:
            raise ValueError(f"{self.email}: role {self.role} needs `tenants` (tenant ids, or "
                             f"[\"*\"] for every tenant)")
        if self.role == "tenant_owner" and ALL in self.tenants:
            raise ValueError(f"{self.email}: a tenant_owner owns named tenants, not \"*\"")
        return self

    @property
    def all_tenants(self) -> bool:
        return ALL in self.tenants or (not self.tenants and self.role in {"finance", "platform"})


class ProxyConfig(_Strict):
    """An authenticating reverse proxy (oauth2-proxy, Pomerium, a load balancer's OIDC)."""

    header: str = Field(default=DEFAULT_HEADER, pattern=r"^[A-Za-z0-9-]{1,64}$")
    name_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    trusted: tuple[str, ...] = Field(min_length=1)

    @field_validator("trusted")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network (CIDR)") from None
        return value

    def trusts(self, peer: str | None) -> bool:
        """Whether a connection from ``peer`` comes from the proxy."""
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in ipaddress.ip_network(n, strict=False) for n in self.trusted)


class AccessConfig(_Strict):
    identity: IdentityMode = "auto"
    proxy: ProxyConfig | None = None
    users: tuple[User, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> AccessConfig:
        if self.identity == "proxy" and self.proxy is None:
            raise ValueError("identity = \"proxy\" needs a [proxy] table with `trusted` addresses")
        seen: set[str] = set()
        for user in self.users:
            if user.email in seen:
                raise ValueError(f"{user.email} is listed twice in users")
            seen.add(user.email)
        return self

    def user(self, email: str) -> User | None:
        return next((u for u in self.users if u.email == email), None)


def access_config_path(home: Path, explicit: Path | None = None) -> Path | None:
    """The access config file: ``explicit``, else ``FINOPS_APP__ACCESS``, else the first of
    ``access.toml``/``access.yaml`` in the warehouse folder, else none."""
    if explicit is not None:
        return explicit
    named = os.environ.get(ENV_FILE, "").strip()
    if named:
        return Path(named).expanduser()
    return next((home / n for n in DEFAULT_FILES if (home / n).is_file()), None)


def load_access_config(path: Path | None) -> AccessConfig:
    """The config in ``path`` (TOML, or YAML for .yaml/.yml); the defaults when ``None``."""
    if path is None:
        return AccessConfig()
    data = read_config_file(path, "access")
    try:
        return AccessConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            describe_errors(exc, str(path)),
            hint="See the access config format in models/access.py (roles: finance, platform, "
                 "tenant_owner, viewer).",
        ) from None


# ---- identity and principal ----------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """Who is at the keyboard, as an identity source vouches."""

    email: str
    name: str | None
    source: Mode


DEV_IDENTITY: Final = Identity("local-dev@localhost", "Local developer", "dev")


@dataclass(frozen=True)
class View:
    """What can be read: a role and its tenants (``None``: every tenant, the unallocated
    share included). Principals with the same view see the same data, so the app caches
    on it."""

    role: Role
    tenants: tuple[str, ...] | None  # sorted

    @property
    def everything(self) -> bool:
        return self.tenants is None

    def allows(self, tenant: str | None) -> bool:
        return self.tenants is None or (tenant is not None and tenant in self.tenants)

    @property
    def sees_recommendations(self) -> bool:
        return self.role != "viewer"

    @property
    def sees_pipeline(self) -> bool:
        """Run totals, rows set aside and raw billing rows: organisation-wide figures."""
        return self.tenants is None


@dataclass(frozen=True)
class Principal:
    """A signed-in person with a role and the tenants they may read (``None``: all)."""

    email: str
    name: str | None
    role: Role
    tenants: frozenset[str] | None
    source: Mode
    owned: frozenset[str] = field(default_factory=frozenset)  # tenants they own, for display

    @property
    def view(self) -> View:
        return View(self.role, None if self.tenants is None else tuple(sorted(self.tenants)))

    @property
    def everything(self) -> bool:
        return self.tenants is None

    def allows(self, tenant: str | None) -> bool:
        return self.view.allows(tenant)

    @property
    def can_decide_recommendations(self) -> bool:
        return self.role == "platform"

    @property
    def can_label_anomalies(self) -> bool:
        return self.role in {"finance", "platform", "tenant_owner"}

    @property
    def label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def scope_label(self) -> str:
        return "all tenants" if self.tenants is None else ", ".join(sorted(self.tenants)) or "no tenants"


def owned_tenants(email: str, allocation: AllocationConfig) -> frozenset[str]:
    """Tenants whose owners, or whose team's owners, include ``email``."""
    wanted = email.strip().lower()
    teams = {t.id for t in allocation.teams if wanted in {o.strip().lower() for o in t.owners}}
    team_of = allocation.tenant_team()
    return frozenset(
        tenant for tenant, owners in allocation.owners_by_tenant().items()
        if wanted in {o.strip().lower() for o in owners} or team_of.get(tenant) in teams
    )


def resolve_principal(identity: Identity, config: AccessConfig,
                      allocation: AllocationConfig) -> Principal | None:
    """The principal for ``identity``: a configured user, else a tenant or team owner from
    the allocation config, else ``None`` (no access). The local developer is finance."""
    if identity.source == "dev":
        return Principal(identity.email, identity.name, "finance", None, "dev")
    try:
        email = normalise_email(identity.email)
    except ValueError:
        return None
    owned = owned_tenants(email, allocation)
    user = config.user(email)
    if user is not None:
        tenants = None if user.all_tenants else frozenset(t for t in user.tenants if t != ALL)
        return Principal(email, identity.name, user.role, tenants, identity.source, owned)
    if owned:
        return Principal(email, identity.name, "tenant_owner", owned, identity.source, owned)
    return None


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to ``address`` is reachable from this machine only."""
    if not address:
        return False  # unset or empty: every interface
    text = address.strip().strip("[]").lower()
    if text in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def serving_mode(config: AccessConfig, *, oidc_configured: bool, address: str | None) -> Mode:
    """How people are identified, or a :class:`ConfigError` when the app must not serve.

    ``auto`` picks OIDC when Streamlit's ``[auth]`` secrets exist, else the proxy when one
    is configured, else none; none (dev mode) is allowed only on a loopback address.
    """
    mode = config.identity
    if mode == "auto":
        mode = "oidc" if oidc_configured else "proxy" if config.proxy is not None else "none"
    if mode == "oidc":
        return "oidc"
    if mode == "proxy":
        return "proxy"
    if not is_loopback(address):
        where = address or "every interface"
        raise ConfigError(
            f"refusing to serve the app on {where} without authentication",
            hint="Configure sign-in (an [auth] section in .streamlit/secrets.toml for OIDC, or "
                 "a [proxy] table in the access config, FINOPS_APP__ACCESS), or bind it to "
                 "127.0.0.1 for local use.",
        )
    return "dev"


def identity_from_proxy(headers: Mapping[str, str], peer: str | None,
                        proxy: ProxyConfig) -> Identity | None:
    """The e-mail the proxy vouches for, if the connection comes from the proxy; else None.

    A header arriving from anywhere else is ignored: anyone can send one.
    """
    if not proxy.trusts(peer):
        return None
    value = _header(headers, proxy.header)
    if not value:
        return None
    try:
        email = normalise_email(value)
    except ValueError:
        return None
    name = _header(headers, proxy.name_header) if proxy.name_header else None
    return Identity(email, name.strip()[:100] if name else None, "proxy")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    found = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return str(found) if found is not None else None


# ---- scoped reading ----------------------------------------------------------------------
def resource_owners(wh: Warehouse, resource_ids: Sequence[str], *,
                    periods: int = OWNER_PERIODS) -> pl.DataFrame:
    """``resource_id, tenants, accounts`` (sorted lists) of each resource's cost in the
    latest ``periods`` allocated months; resources with no allocated cost are absent."""
    schema = {"resource_id": pl.String(), "tenants": pl.List(pl.String()),
              "accounts": pl.List(pl.String())}
    months = sorted({k.get("billing_period", "") for k in wh.partitions(ALLOCATED)} - {""})
    ids = sorted({str(r) for r in resource_ids if r is not None})
    if not months or not ids:
        return pl.DataFrame(schema=schema)
    return (
        wh.scan(ALLOCATED, where={"billing_period": months[-periods:]})
        .filter(pl.col("ResourceId").is_in(ids))
        .group_by(pl.col("ResourceId").alias("resource_id"))
        .agg(pl.col("x_Tenant").drop_nulls().unique().sort().alias("tenants"),
             pl.col("SubAccountId").drop_nulls().unique().sort().alias("accounts"))
        .sort("resource_id")
        .collect(engine="streaming")
        .cast(schema)  # type: ignore[arg-type]
    )


class ReadOnlyError(PermissionError):
    pass


class ScopedWarehouse(Warehouse):
    """A read-only warehouse holding only the rows ``view`` may read.

    Per dataset: ``cube`` and ``allocated`` by ``x_Tenant``; ``query_cost`` and
    ``query_shares`` by ``tenant``; ``anomalies`` and ``forecasts`` only the series of a
    tenant in scope (other series mix tenants), with root causes naming other tenants
    removed; ``recommendations`` only for resources whose allocated cost went to tenants
    in scope alone, and none for viewers. Any other dataset is empty when the principal
    is scoped to some tenants.
    """

    def __init__(self, home: Path, view: View) -> None:
        super().__init__(home)
        self.view = view
        self._base = Warehouse(home)
        self._owners: pl.DataFrame | None = None

    def scan(self, dataset: str, *, where: Mapping[str, str | Sequence[str]] | None = None,
             schema: Mapping[str, pl.DataType] | None = None,
             row_index: str | None = None) -> pl.LazyFrame:
        lf = super().scan(dataset, where=where, schema=schema, row_index=row_index)
        if dataset == RECOMMENDATIONS and not self.view.sees_recommendations:
            return lf.clear()
        tenants = self.view.tenants
        if tenants is None:
            return lf
        if dataset in TENANT_COLUMNS:
            return lf.filter(pl.col(TENANT_COLUMNS[dataset]).is_in(tenants))
        if dataset == ANOMALIES:
            return scope_anomalies(lf, tenants)
        if dataset == FORECASTS:
            return lf.filter((pl.col("dimension") == "tenant")
                             & pl.col("dimension_value").is_in(tenants))
        if dataset == RECOMMENDATIONS:
            allowed = self.visible_resources(lf)
            return lf.filter(pl.col("resource_id").is_in(allowed))
        return lf.clear()  # deny by default: this dataset says nothing of whose rows are

    def visible_resources(self, recommendations: pl.LazyFrame) -> list[str]:
        """Resources of ``recommendations`` whose cost went only to tenants in scope."""
        if self._owners is None:
            ids = recommendations.select(pl.col("resource_id").cast(pl.String)).collect()
            self._owners = resource_owners(self._base, ids["resource_id"].to_list())
        tenants = self.view.tenants or ()
        return [
            row["resource_id"] for row in self._owners.iter_rows(named=True)
            if row["tenants"] and all(t in tenants for t in row["tenants"])
        ]

    # ---- read-only ----------------------------------------------------------------------
    def replace_partition(self, dataset: str, keys: Mapping[str, str],
                          data: pl.LazyFrame | pl.DataFrame, *, run_id: str,
                          **options: Any) -> PartitionWrite:
        raise ReadOnlyError(f"a scoped warehouse cannot write {dataset}")

    def delete_partition(self, dataset: str, keys: Mapping[str, str]) -> None:
        raise ReadOnlyError(f"a scoped warehouse cannot delete from {dataset}")

    def staging_dir(self, run_id: str) -> Path:
        raise ReadOnlyError("a scoped warehouse cannot stage writes")


def anomaly_tenant_filter(tenants: Sequence[str], *, currency: bool = True) -> pl.Expr:
    """Rows of an anomaly frame on the series of one of ``tenants``. With several billing
    currencies the value reads ``acme (USD)``: it is compared with its currency, never cut."""
    value = pl.col("dimension_value")
    named = value.is_in(list(tenants))
    if currency:
        for tenant in tenants:
            named = named | (value == pl.lit(f"{tenant} (") + pl.col("currency") + pl.lit(")"))
    return (pl.col("dimension") == "tenant") & named.fill_null(False)


def scope_anomalies(lf: pl.LazyFrame, tenants: Sequence[str]) -> pl.LazyFrame:
    """Anomalies on the tenants' own series, root causes naming other tenants removed."""
    names = lf.collect_schema().names()
    lf = lf.filter(anomaly_tenant_filter(tenants, currency="currency" in names))
    if "root_causes" in names:
        cause = pl.element().struct.field
        lf = lf.with_columns(pl.col("root_causes").list.eval(
            pl.element().filter((cause("dimension") != "tenant") | cause("value").is_in(list(tenants)))
        ))
    return lf


def scoped_warehouse(home: Path, view: View) -> ScopedWarehouse:
    """The warehouse at ``home`` as ``view`` may read it."""
    return ScopedWarehouse(home, view)
