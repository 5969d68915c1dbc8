"""Who the demo company is: tenants, teams, billing accounts, sub-accounts and regions.

Brightwave Data runs a multi-tenant data platform on AWS, Google Cloud and Azure, with
a shared Snowflake account. Every tenant belongs to one team. Identifiers are fixed
(not seeded) so that screenshots, docs and runs with different seeds name the same
things; the seed only changes the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Provider = Literal["aws", "gcp", "azure", "snowflake"]
PROVIDERS: Final[tuple[Provider, ...]] = ("aws", "gcp", "azure", "snowflake")
SOURCES: Final[dict[Provider, str]] = {
    "aws": "demo-aws",
    "gcp": "demo-gcp",
    "azure": "demo-azure",
    "snowflake": "demo-snowflake",
}


@dataclass(frozen=True)
class Team:
    name: str
    cost_center: str


@dataclass(frozen=True)
class Tenant:
    name: str
    team: str
    # Relative size: scales how many resources and how much usage the tenant has.
    weight: float


TEAMS: Final = (
    Team("data-platform", "CC-4100"),
    Team("ml", "CC-4200"),
    Team("analytics", "CC-4300"),
    Team("web", "CC-4400"),
)
SHARED_COST_CENTER: Final = "CC-4000"
TEAM_BY_NAME: Final = {t.name: t for t in TEAMS}

TENANTS: Final = (
    Tenant("acme", "data-platform", 1.6),
    Tenant("globex", "data-platform", 1.2),
    Tenant("hooli", "ml", 1.3),
    Tenant("stark", "ml", 1.0),
    Tenant("initech", "analytics", 1.2),
    Tenant("umbrella", "analytics", 1.1),
    Tenant("wayne", "web", 1.0),
    Tenant("wonka", "web", 0.6),
)
TENANT_BY_NAME: Final = {t.name: t for t in TENANTS}
TENANT_INDEX: Final = {t.name: i for i, t in enumerate(TENANTS)}


@dataclass(frozen=True)
class ProviderInfo:
    provider_name: str
    publisher_name: str
    invoice_issuer: str


PROVIDER_INFO: Final[dict[Provider, ProviderInfo]] = {
    "aws": ProviderInfo("AWS", "Amazon Web Services, Inc.", "Amazon Web Services, Inc."),
    "gcp": ProviderInfo("Google Cloud", "Google Cloud", "Google Cloud"),
    "azure": ProviderInfo("Microsoft", "Microsoft", "Microsoft"),
    "snowflake": ProviderInfo("Snowflake", "Snowflake Inc.", "Snowflake Inc."),
}


@dataclass(frozen=True)
class BillingAccount:
    provider: Provider
    account_id: str
    name: str
    account_type: str
    currency: str
    # Prices in this account's currency relative to the USD list (Azure bills EUR
    # accounts from a EUR price list).
    price_factor: float
    invoice_prefix: str


@dataclass(frozen=True)
class TagKeys:
    """The tag keys an account's infrastructure code writes, with how often each is used.

    Real organisations end up with several spellings: Terraform modules written by
    different teams, AWS cost-allocation tags showing as ``user:...``, Azure portal users
    capitalising keys.
    """

    tenant: tuple[tuple[str, float], ...]
    team: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class SubAccount:
    key: str
    billing: BillingAccount
    sub_id: str
    name: str
    sub_type: str
    env: str
    tags: TagKeys


@dataclass(frozen=True)
class Region:
    provider: Provider
    region_id: str
    name: str
    zones: tuple[str, ...]


AWS_PAYER: Final = BillingAccount(
    "aws", "918273645501", "Brightwave Data Inc.", "Management Account", "USD", 1.0, "")
GCP_BILLING: Final = BillingAccount(
    "gcp", "01A7C3-5B9E2D-4F8A61", "Brightwave Data - Main", "Billing Account", "USD", 1.0, "")
AZURE_US: Final = BillingAccount(
    "azure", "72419385", "Brightwave Data Inc. (EA)", "Billing Account", "USD", 1.0, "G0")
AZURE_EU: Final = BillingAccount(
    "azure", "81530264", "Brightwave Data GmbH", "Billing Account", "EUR", 0.93, "E0")
SNOWFLAKE_ORG: Final = BillingAccount(
    "snowflake", "5108842", "BRIGHTWAVE", "Organization", "USD", 1.0, "SF")

_plain = TagKeys((("tenant", 1.0),), (("team", 1.0),))
_aws_dp = TagKeys((("tenant", 0.8), ("Tenant", 0.2)), (("team", 0.7), ("Team", 0.3)))
_aws_ml = TagKeys((("user:tenant", 0.9), ("tenant", 0.1)), (("user:team", 0.9), ("owner", 0.1)))
_aws_an = TagKeys((("Tenant", 0.7), ("tenant", 0.3)), (("Team", 0.6), ("owner", 0.4)))
_aws_web = TagKeys((("tenant", 1.0),), (("owner", 0.7), ("team", 0.3)))
_azure_us = TagKeys((("Tenant", 0.8), ("tenant", 0.2)), (("Team", 0.8), ("owner", 0.2)))
_azure_eu = TagKeys((("tenant", 0.6), ("Tenant", 0.4)), (("owner", 0.6), ("Team", 0.4)))


def _aws(key: str, sub_id: str, env: str, tags: TagKeys = _plain) -> SubAccount:
    return SubAccount(key, AWS_PAYER, sub_id, f"bw-{key}", "Member Account", env, tags)


def _gcp(key: str, env: str) -> SubAccount:
    return SubAccount(key, GCP_BILLING, f"bw-{key}", f"bw-{key}", "Project", env, _plain)


def _azure(key: str, billing: BillingAccount, guid: str, env: str, tags: TagKeys) -> SubAccount:
    return SubAccount(key, billing, guid, f"bw-{key}", "Subscription", env, tags)


SUB_ACCOUNTS: Final = {
    s.key: s
    for s in (
        SubAccount("management", AWS_PAYER, AWS_PAYER.account_id, "bw-management",
                   "Management Account", "prod", _plain),
        _aws("network-hub", "204918273611", "prod"),
        _aws("shared-services", "204918273622", "prod"),
        _aws("data-platform-prod", "204918273633", "prod", _aws_dp),
        _aws("ml-prod", "204918273644", "prod", _aws_ml),
        _aws("analytics-prod", "204918273655", "prod", _aws_an),
        _aws("web-prod", "204918273666", "prod", _aws_web),
        _aws("staging", "204918273677", "staging", _aws_dp),
        _aws("sandbox", "204918273688", "dev"),
        _gcp("ml-training", "prod"),
        _gcp("analytics-warehouse", "prod"),
        _gcp("platform-shared", "prod"),
        _gcp("sandbox-gcp", "dev"),
        _azure("prod-eastus", AZURE_US, "6f1d2c3b-8a4e-4b7f-9c21-5d3e7a9b1c40", "prod", _azure_us),
        _azure("connectivity", AZURE_US, "0b9e8d7c-2f1a-4e3d-8c5b-7a6f4e3d2c11", "prod", _azure_us),
        _azure("dev-eastus", AZURE_US, "c4a3b2e1-9d8f-4a7b-b6c5-3e2d1f0a9b88", "dev", _azure_us),
        _azure("prod-westeurope", AZURE_EU, "9e7d5c3b-1a2f-4c6e-8b0d-2f4a6c8e0b27", "prod",
               _azure_eu),
        _azure("shared-westeurope", AZURE_EU, "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c19", "prod",
               _azure_eu),
        SubAccount("snowflake-prod", SNOWFLAKE_ORG, "XY41873", "BRIGHTWAVE_PROD", "Account",
                   "prod", _plain),
    )
}

REGIONS: Final = {
    r.region_id: r
    for r in (
        Region("aws", "us-east-1", "US East (N. Virginia)", ("us-east-1a", "us-east-1b",
                                                               "us-east-1c")),
        Region("aws", "eu-west-1", "Europe (Ireland)", ("eu-west-1a", "eu-west-1b")),
        Region("gcp", "us-central1", "Iowa", ("us-central1-a", "us-central1-b", "us-central1-c")),
        Region("gcp", "europe-west4", "Netherlands", ("europe-west4-a", "europe-west4-b")),
        Region("azure", "eastus", "East US", ()),
        Region("azure", "westeurope", "West Europe", ()),
    )
}
