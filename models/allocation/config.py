"""The allocation config: tenants and teams, tag normalisation, virtual tags, shared pools
and commitment policy, validated by pydantic. Rules are data, each with a stable id.

Errors name the file, the line (YAML) and the near-miss names, e.g. ``allocation.yaml,
line 12: rules[3].match.servce: unknown key. Did you mean 'service'?``.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from finops.errors import ConfigError
from models.tags import KEY_ALIASES

ID = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$", max_length=128)]
Values = str | list[str]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Team(Strict):
    id: ID
    name: str | None = None
    cost_center: str | None = None
    business_unit: str | None = None
    owners: list[str] = []


UNALLOCATED = "unallocated"  # the owner of cost no tag, rule or pool placed


class Tenant(Strict):
    id: ID
    name: str | None = None
    team: str | None = None
    cost_center: str | None = None
    owners: list[str] = []


class TagConfig(Strict):
    # Keys that mean each dimension, first present wins; extends the built-in aliases.
    keys: dict[Literal["tenant", "team", "cost_center"], list[str]] = {}
    # Per dimension: spelling → canonical value (compared after trimming and lower-casing).
    values: dict[Literal["tenant", "team", "cost_center"], dict[str, str]] = {}
    case: Literal["lower", "preserve"] = "lower"
    # Tags a whole account / project / subscription carries, inherited by its rows
    # where the row's own tags say nothing.
    accounts: dict[str, dict[str, str]] = {}

    def aliases(self, dimension: str) -> tuple[str, ...]:
        extra = self.keys.get(dimension, [])  # type: ignore[call-overload]
        return tuple(dict.fromkeys([*extra, *KEY_ALIASES[dimension]]))


class Match(Strict):
    """Conditions on a billing row; all given must hold. Strings are exact (case-
    insensitive) or, with ``*``/``?``, shell-style patterns; lists mean any of them."""

    provider: Values | None = None
    billing_account: Values | None = None
    account: Values | None = None
    account_name: Values | None = None
    service: Values | None = None
    service_category: Values | None = None
    region: Values | None = None
    resource: Values | None = None  # ResourceId
    resource_name: Values | None = None
    charge_category: Values | None = None
    sku: Values | None = None
    tags: dict[str, Values] = {}
    untagged: bool | None = None  # no tenant from tags

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not any(v not in (None, {}) for v in self.__dict__.values()):
            raise ValueError("a match needs at least one condition")
        return self


class Assign(Strict):
    tenant: str | None = None
    team: str | None = None
    cost_center: str | None = None

    @model_validator(mode="after")
    def _something(self) -> Assign:
        if not (self.tenant or self.team or self.cost_center):
            raise ValueError("set needs tenant, team or cost_center")
        return self


class Rule(Strict):
    id: ID
    description: str | None = None
    match: Match
    set: Assign


class Pool(Strict):
    id: ID
    description: str | None = None
    match: Match
    method: Literal["even", "proportional", "metric", "fixed"]
    # proportional: to each tenant's direct cost (tag and rule) in the same split group.
    # metric: to a usage metric: "query_history" (the warehouse issue's shares) or a CSV
    # with columns day, tenant, value (optionally currency).
    metric: str | None = None
    weights: dict[str, float] = {}
    # Only these tenants share the pool (default: every tenant with cost that day).
    tenants: list[str] = []
    # Split per day and currency by default; credits may prefer the billing period.
    granularity: Literal["day", "period"] = "day"

    @model_validator(mode="after")
    def _method_args(self) -> Pool:
        if self.method == "fixed":
            if not self.weights:
                raise ValueError("method fixed needs weights: {tenant: share}")
            total = sum(self.weights.values())
            if abs(total - 1) > 1e-9 and abs(total - 100) > 1e-6:
                raise ValueError(f"fixed weights must sum to 1 (or 100), not {total:g}")
            if any(w < 0 for w in self.weights.values()):
                raise ValueError("fixed weights must not be negative")
        if self.method == "metric" and not self.metric:
            raise ValueError("method metric needs metric: query_history or a CSV path")
        return self


class Commitments(Strict):
    # Unused commitment cost (CommitmentDiscountStatus = Unused): who bears it.
    unused: Literal["proportional", "even", "unallocated"] = "proportional"
    # Untagged credits and refunds follow the charges they correct: proportional to the
    # tenants' cost on the same account and service in the billing period.
    credits_follow_charges: bool = True
    # Untagged tax, likewise, follows the taxed charges (same account and service).
    taxes_follow_charges: bool = True


class AllocationConfig(Strict):
    version: Literal[1] = 1
    teams: list[Team] = []
    tenants: list[Tenant] = []
    tags: TagConfig = TagConfig()
    rules: list[Rule] = []
    pools: list[Pool] = []
    commitments: Commitments = Commitments()
    # The query-cost model's section (tenant rules for queries, idle policy, prices);
    # models/query_rules.py validates it.
    query_cost: dict[str, Any] | None = None

    @field_validator("rules", "pools")
    @classmethod
    def _unique_ids(cls, items: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for item in items:
            if item.id in seen:
                raise ValueError(f"id {item.id!r} is used twice; ids must be unique and stable")
            seen.add(item.id)
        return items

    @model_validator(mode="after")
    def _known_names(self) -> AllocationConfig:
        teams = {t.id for t in self.teams}
        tenants = {t.id for t in self.tenants}
        if UNALLOCATED in tenants:
            raise ValueError(f"tenant id {UNALLOCATED!r} is reserved for cost nobody owns; "
                             "give the tenant another id")
        for tenant in self.tenants:
            if teams and tenant.team and tenant.team not in teams:
                raise ValueError(f"tenant {tenant.id!r}: unknown team {tenant.team!r}"
                                 + _near(tenant.team, teams))
        if tenants:
            for pool in self.pools:
                for name in [*pool.tenants, *pool.weights]:
                    if name not in tenants:
                        raise ValueError(f"pool {pool.id!r}: unknown tenant {name!r}" + _near(name, tenants))
            for rule in self.rules:
                if rule.set.tenant and rule.set.tenant not in tenants:
                    raise ValueError(f"rule {rule.id!r}: unknown tenant {rule.set.tenant!r}"
                                     + _near(rule.set.tenant, tenants))
        return self

    def tenant_team(self) -> dict[str, str]:
        return {t.id: t.team for t in self.tenants if t.team}

    def team_cost_center(self) -> dict[str, str]:
        return {t.id: t.cost_center for t in self.teams if t.cost_center}

    def tenant_cost_center(self) -> dict[str, str]:
        by_team = self.team_cost_center()
        out = {}
        for t in self.tenants:
            cc = t.cost_center or (by_team.get(t.team) if t.team else None)
            if cc:
                out[t.id] = cc
        return out

    def owners_by_tenant(self) -> dict[str, list[str]]:
        return {t.id: t.owners for t in self.tenants}


def _near(name: str, candidates: set[str] | list[str]) -> str:
    near = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f". Did you mean {', '.join(repr(n) for n in near)}?" if near else ""


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key, value in node.value:
                if key.value == part:
                    found = (key, value)
                    break
            if found is None:
                return line
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _model_fields(loc: tuple[int | str, ...]) -> list[str]:
    """The valid keys at the parent of ``loc``, for "did you mean"."""
    model: Any = AllocationConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return list(getattr(model, "model_fields", {}))


def load_config(path: Path) -> AllocationConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the allocation config: {exc.strerror}",
                          hint="Check the path in --config or FINOPS_ALLOCATION_CONFIG.") from None
    root: yaml.Node | None = None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            root = yaml.compose(text)
            data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}",
                          hint="Fix the syntax at the place named.") from None
    try:
        return AllocationConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
            line = _line_of(root, loc) if root is not None else None
            at = f"{path}, line {line}" if line else str(path)
            msg = err["msg"]
            if err["type"] == "extra_forbidden" and loc:
                msg = "unknown key" + _near(str(loc[-1]), _model_fields(loc))
            lines.append(f"{at}: {where or '(top)'}: {msg}")
        raise ConfigError("invalid allocation config:\n" + "\n".join(lines),
                          hint="Fix the keys named above; see README 'Allocation rules'.") from None


def glob_to_regex(pattern: str) -> str:
    """A shell-style pattern (``*``, ``?``) as an anchored, case-insensitive regex."""
    out = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return f"(?i)^{out}$"
