"""Who owns a warehouse query: ordered tenant rules, and the policies of the query-cost model.

Rules are data. Each rule looks at one field of a query and either names a tenant or
passes; the first rule that names one wins, and its ``id`` is recorded in
``tenant_rule`` so anyone can ask "why is this query mine". A query no rule places is
``unallocated``.

Fields a rule can look at:

- ``query_tag``: Snowflake's QUERY_TAG, parsed as a JSON object or ``key=value`` pairs
  (separated by ``;``, ``,`` or ``&``; ``key:value`` works too);
- ``labels``: BigQuery job labels; ``custom_tags``: Databricks custom tags;
  ``tags``: any of those three, whatever the source;
- ``role``, ``user``, ``database``, ``warehouse``, ``account``: plain text fields.

A rule on a tag field takes ``key`` (the tag key, tried in the order given) or
``pattern``; a rule on a text field takes ``values`` (exact, case-insensitive mapping to
a tenant) or ``pattern`` (a regular expression: its group ``tenant``, else its first
group, else the rule's ``tenant``, names the tenant). Tenant names are trimmed and
lower-cased, as tag values are for billing rows.

The config is the ``query_cost`` section of the allocation config file (YAML or TOML,
``FINOPS_ALLOCATION_CONFIG``)::

    query_cost:
      idle_policy: tenant_share      # tenant_share | owner | idle
      warehouse_owners: {LOADING_WH: platform}
      rules:
        - {id: tag-tenant, field: query_tag, key: [tenant]}
        - {id: bq-labels, field: labels, key: [tenant, team]}
        - {id: role-prefix, field: role, pattern: "^(?P<tenant>[a-z]+)_(reader|writer)$"}
        - {id: analysts, field: user, values: {ALICE: acme, BOB: globex}}
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from finops.errors import ConfigError
from finops.lookup import mapped
from finops.parse import tags_json
from models.tags import normalise_value

UNALLOCATED: Final = "unallocated"
IDLE: Final = "idle"
TAGS_TYPE: Final = pl.Map(pl.String, pl.String)

TagField = Literal["query_tag", "labels", "custom_tags", "tags"]
TextField = Literal["role", "user", "database", "warehouse", "account"]
# Which source's tags each tag field reads.
TAG_FIELD_SOURCE: Final[dict[str, str | None]] = {
    "query_tag": "snowflake", "labels": "bigquery", "custom_tags": "databricks", "tags": None,
}
# The column of the normalised ``queries`` dataset each text field reads.
TEXT_FIELD_COLUMN: Final[dict[str, str]] = {
    "role": "role_name", "user": "user_name", "database": "database_name",
    "warehouse": "warehouse", "account": "account",
}
DEFAULT_TENANT_KEYS: Final = ("tenant", "Tenant", "TENANT")


class IdlePolicy(StrEnum):
    """What happens to metered time no query used."""

    tenant_share = "tenant_share"  # split by each tenant's execution time that warehouse-day
    owner = "owner"  # charged to the warehouse's declared owner
    idle = "idle"  # kept as the tenant ``idle``


class TenantRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=80)
    field: TagField | TextField
    key: tuple[str, ...] | None = None
    pattern: str | None = None
    values: dict[str, str] | None = None
    tenant: str | None = None

    @field_validator("key", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"pattern {value!r} is not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_matcher(self) -> TenantRule:
        given = [n for n in ("key", "pattern", "values") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"rule {self.id!r}: give exactly one of key, pattern or values")
        if self.key is not None and self.field not in TAG_FIELD_SOURCE:
            raise ValueError(f"rule {self.id!r}: key applies to tag fields "
                             f"({', '.join(TAG_FIELD_SOURCE)}), not {self.field}")
        if self.values is not None and self.field in TAG_FIELD_SOURCE:
            raise ValueError(f"rule {self.id!r}: values applies to text fields, use key for tags")
        if self.pattern is not None and self.tenant is None:
            groups = re.compile(self.pattern).groups
            if groups == 0:
                raise ValueError(f"rule {self.id!r}: a pattern without a group needs `tenant`")
        return self


DEFAULT_RULES: Final = (
    TenantRule(id="query_tag:tenant", field="query_tag", key=DEFAULT_TENANT_KEYS),
    TenantRule(id="labels:tenant", field="labels", key=DEFAULT_TENANT_KEYS),
    TenantRule(id="custom_tags:tenant", field="custom_tags", key=DEFAULT_TENANT_KEYS),
)


class QueryCostConfig(BaseModel):
    """The query-cost model's declared policies (the ``query_cost`` config section)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[TenantRule, ...] = DEFAULT_RULES
    idle_policy: IdlePolicy = IdlePolicy.tenant_share
    warehouse_owners: dict[str, str] = Field(default_factory=dict)
    # Snowflake: used for days the rate sheet does not price (FINOPS_SNOWFLAKE__CREDIT_PRICE).
    credit_price: Decimal | None = Field(default=None, gt=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # Share of daily compute credits within which cloud services are free.
    cloud_services_allowance: Decimal = Field(default=Decimal("0.1"), ge=0, le=1)
    # BigQuery on-demand price per TiB billed and editions price per slot-hour.
    bigquery_price_per_tib: Decimal = Field(default=Decimal("6.25"), gt=0)
    bigquery_slot_hour_prices: dict[str, Decimal] = Field(
        default_factory=lambda: {"STANDARD": Decimal("0.04"), "ENTERPRISE": Decimal("0.06"),
                                 "ENTERPRISE_PLUS": Decimal("0.10")})
    bigquery_default_edition: str = "ENTERPRISE"

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: tuple[TenantRule, ...]) -> tuple[TenantRule, ...]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return rules


def load_config(path: Path | None, *, credit_price: float | Decimal | None = None) -> QueryCostConfig:
    """The ``query_cost`` section of ``path`` (YAML or TOML), or the defaults.

    ``credit_price`` (the FINOPS_SNOWFLAKE__CREDIT_PRICE setting) fills ``credit_price``
    when the file does not set it.
    """
    section: dict[str, Any] = {}
    if path is not None:
        if not path.exists():
            raise ConfigError(f"{path}: allocation config not found",
                              hint="Fix FINOPS_ALLOCATION_CONFIG or create the file.")
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot be read: {str(exc).splitlines()[0]}",
                              hint="Fix the file's syntax.") from None
        if isinstance(data, Mapping) and isinstance(data.get("query_cost"), Mapping):
            section = dict(data["query_cost"])
    if credit_price is not None and section.get("credit_price") is None:
        section["credit_price"] = Decimal(str(credit_price))
    try:
        return QueryCostConfig.model_validate(section)
    except ValidationError as exc:
        lines = [f"- query_cost.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{path}: invalid query_cost section:\n" + "\n".join(lines),
                          hint="See models/query_rules.py for the format of rules and policies."
                          ) from None


# ---- parsing tags ----------------------------------------------------------------------
_PAIR = r"[^;,&=:\s{}]+\s*[=:]\s*[^;,&]*"


def parse_query_tag(expr: pl.Expr) -> pl.Expr:
    """Snowflake QUERY_TAG text to a tag map: a JSON object, or ``key=value`` pairs."""
    text = expr.str.strip_chars()
    is_json = text.str.starts_with("{")
    pairs = text.str.extract_all(_PAIR).list.eval(
        pl.struct(
            pl.element().str.extract(r"^([^=:]+?)\s*[=:]", 1).str.strip_chars().alias("key"),
            pl.element().str.extract(r"[=:]\s*(.*?)\s*$", 1).alias("value"),
        )
    )
    kv = pl.when(pairs.list.len() > 0).then(pairs).otherwise(None).cast(TAGS_TYPE)
    return (
        pl.when(text.is_null() | (text.str.len_bytes() == 0)).then(pl.lit(None, TAGS_TYPE))
        .when(is_json).then(tags_json(pl.when(is_json).then(text)))
        .otherwise(kv)
    )


def parse_labels(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Labels or custom tags as exported: a list of {key, value}, a map, a struct, or text.

    Text may be a JSON object, a JSON list of ``{"key": .., "value": ..}`` or ``k=v`` pairs.
    """
    if isinstance(dtype, pl.Map):
        return expr.cast(TAGS_TYPE)
    if isinstance(dtype, pl.List):
        return expr.cast(TAGS_TYPE, strict=False)
    if isinstance(dtype, pl.Struct):
        return tags_json(expr.struct.json_encode())
    text = expr.cast(pl.String).str.strip_chars()
    as_list = text.str.replace_all(r'"key"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"value"\s*:\s*', r'"$1":')
    # [{"key":"a","value":"b"},...] -> {"a":"b",...}: drop the per-pair braces.
    flattened = (as_list.str.strip_chars("[]").str.replace_all(r"\}\s*,\s*\{", ",")
                 .str.strip_chars())
    return (
        pl.when(text.str.starts_with("["))
        .then(pl.when(flattened.str.len_bytes() == 0).then(pl.lit(None, TAGS_TYPE))
              .otherwise(tags_json(pl.when(text.str.starts_with("[")).then(flattened))))
        .otherwise(parse_query_tag(text))
    )


# ---- applying rules --------------------------------------------------------------------
def _rule_match(rule: TenantRule, columns: Sequence[str]) -> pl.Expr:
    """The tenant this rule names for each row, or null (before normalisation)."""
    if rule.field in TAG_FIELD_SOURCE:
        origin = TAG_FIELD_SOURCE[rule.field]
        applies = pl.lit(True) if origin is None else pl.col("source") == origin
        if rule.key is not None:
            # The first key with a non-empty value; normalised once (it is the hot path).
            values = [pl.col("tags").map.get(k) for k in rule.key]
            found = normalise_value(pl.coalesce(
                [pl.when(v.str.len_bytes() > 0).then(v) for v in values]) if len(values) > 1
                else values[0])
        else:
            raw = "query_tag" if rule.field == "query_tag" and "query_tag" in columns else None
            subject = (pl.col(raw) if raw else
                       pl.col("tags").map.entries().list.eval(
                           pl.concat_str(pl.element().struct.field("key"), pl.lit("="),
                                         pl.element().struct.field("value"))
                       ).list.join(";"))
            found = _pattern(rule, subject)
        return pl.when(applies).then(found)
    column = TEXT_FIELD_COLUMN[rule.field]
    if column not in columns:
        return pl.lit(None, pl.String)
    subject = pl.col(column)
    if rule.values is not None:
        mapping = {k.strip().lower(): v for k, v in rule.values.items()}
        return mapped(subject.str.strip_chars().str.to_lowercase(), mapping)
    return _pattern(rule, subject)


def _pattern(rule: TenantRule, subject: pl.Expr) -> pl.Expr:
    assert rule.pattern is not None
    compiled = re.compile(rule.pattern)
    if rule.tenant is not None:
        return pl.when(subject.str.contains(rule.pattern)).then(pl.lit(rule.tenant))
    group: int = compiled.groupindex.get("tenant", 1)
    return subject.str.extract(rule.pattern, group)


def _matches(columns: Sequence[str], rules: Sequence[TenantRule]) -> list[pl.Expr]:
    # Key rules normalise inside (once for all their keys); the others here.
    return [_rule_match(r, columns) if r.key is not None else normalise_value(_rule_match(r, columns))
            for r in rules]


def rule_ids(rules: Sequence[TenantRule]) -> list[str]:
    """``tenant_rule`` values by rule index; the last one is ``unallocated``."""
    return [*(r.id for r in rules), UNALLOCATED]


def tenant_columns(columns: Sequence[str], rules: Sequence[TenantRule], *,
                   rule_index: bool = False) -> list[pl.Expr]:
    """``tenant`` and ``tenant_rule`` for rows of the ``queries`` dataset (with ``source``).

    With ``rule_index``, ``tenant_rule_i`` (UInt8, an index into :func:`rule_ids`) replaces
    ``tenant_rule``: cheaper on large frames.
    """
    matches = _matches(columns, rules)
    tenant = pl.coalesce([*matches, pl.lit(UNALLOCATED)]).alias("tenant")
    if rule_index:
        index = pl.coalesce([*(pl.when(m.is_not_null()).then(pl.lit(i, pl.UInt8))
                               for i, m in enumerate(matches)), pl.lit(len(rules), pl.UInt8)])
        return [tenant, index.alias("tenant_rule_i")]
    rule_id = pl.coalesce(
        [*(pl.when(m.is_not_null()).then(pl.lit(r.id)) for m, r in zip(matches, rules, strict=True)),
         pl.lit(UNALLOCATED)]
    ).alias("tenant_rule")
    return [tenant, rule_id]


def apply_rules(lf: pl.LazyFrame, rules: Sequence[TenantRule], *, rule_index: bool = False
                ) -> pl.LazyFrame:
    return lf.with_columns(tenant_columns(lf.collect_schema().names(), rules, rule_index=rule_index))


def rule_inputs(columns: Sequence[str], rules: Sequence[TenantRule]) -> list[str]:
    """The columns the rules read: ``source``, ``query_tag`` and the text fields used."""
    inputs = ["source", "query_tag"]
    for rule in rules:
        column = TEXT_FIELD_COLUMN.get(rule.field)
        if column is not None and column in columns and column not in inputs:
            inputs.append(column)
    return inputs


def resolve_tenants(lf: pl.LazyFrame, rules: Sequence[TenantRule], *, rule_index: bool = False
                    ) -> pl.LazyFrame:
    """``lf`` with ``tenant`` and ``tenant_rule`` (or ``tenant_rule_i``), the rules evaluated
    once per distinct combination of their inputs.

    Tags are parsed from the raw ``query_tag`` text (Snowflake QUERY_TAG, BigQuery labels,
    Databricks custom tags, as collected): millions of queries share a few thousand tag
    texts, so parsing and matching those once is far cheaper than per row. Row order is kept.
    """
    if "query_tag" not in lf.collect_schema().names():
        lf = lf.with_columns(pl.lit(None, pl.String).alias("query_tag"))
    inputs = rule_inputs(lf.collect_schema().names(), rules)
    combos = lf.select(inputs).unique().collect(engine="streaming")
    parsed = combos.lazy().with_columns(parse_labels(pl.col("query_tag"), pl.String()).alias("tags"))
    resolved = apply_rules(parsed, rules, rule_index=rule_index).drop("tags").collect()
    return lf.join(resolved.lazy(), on=inputs, how="left", nulls_equal=True, maintain_order="left")


def resolve_tenant_codes(lf: pl.LazyFrame, rules: Sequence[TenantRule]
                         ) -> tuple[pl.LazyFrame, list[str]]:
    """Like :func:`resolve_tenants` with small integer columns for big frames:
    ``tenant_i`` (UInt32, an index into the returned tenant names) and ``tenant_rule_i``."""
    if "query_tag" not in lf.collect_schema().names():
        lf = lf.with_columns(pl.lit(None, pl.String).alias("query_tag"))
    inputs = rule_inputs(lf.collect_schema().names(), rules)
    combos = lf.select(inputs).unique().collect(engine="streaming")
    parsed = combos.lazy().with_columns(parse_labels(pl.col("query_tag"), pl.String()).alias("tags"))
    resolved = apply_rules(parsed, rules, rule_index=True).drop("tags").collect()
    names = sorted(resolved["tenant"].unique().to_list())
    codes = {name: i for i, name in enumerate(names)}
    resolved = resolved.with_columns(
        pl.col("tenant").replace_strict(codes, return_dtype=pl.UInt32).alias("tenant_i")
    ).drop("tenant")
    out = lf.join(resolved.lazy(), on=inputs, how="left", nulls_equal=True, maintain_order="left")
    return out, names
