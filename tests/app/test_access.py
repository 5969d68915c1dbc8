"""models/access: the access config, who is who, identity sources and scoped reading.

The scoped warehouse is checked on every dataset the app reads (cube, allocated,
anomalies, forecasts, recommendations, query cost), on a warehouse holding all of them.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from finops.errors import ConfigError
from finops.warehouse import Warehouse
from models.access import (
    DEV_IDENTITY,
    AccessConfig,
    Identity,
    ProxyConfig,
    ReadOnlyError,
    View,
    identity_from_proxy,
    is_loopback,
    load_access_config,
    resolve_principal,
    resource_owners,
    scoped_warehouse,
    serving_mode,
)
from models.allocation import load_config
from tests.app.orgdata import ALLOCATION_YAML, OTHER_OWNER, OWNER, build_org

ACME = View("tenant_owner", ("acme",))
EVERYTHING = View("finance", None)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_org(tmp_path_factory.mktemp("org") / "warehouse")


@pytest.fixture
def allocation(tmp_path: Path) -> object:
    path = tmp_path / "allocation.yaml"
    path.write_text(ALLOCATION_YAML)
    return load_config(path)


# ---- config --------------------------------------------------------------------------
def test_config_from_toml_or_yaml_at_top_level_or_under_access(tmp_path: Path) -> None:
    toml = tmp_path / "access.toml"
    toml.write_text('identity = "proxy"\n[proxy]\ntrusted = ["10.0.0.0/8"]\n'
                    '[[users]]\nemail = "CFO@Example.com"\nrole = "finance"\n')
    config = load_access_config(toml)
    assert config.identity == "proxy" and config.proxy is not None
    assert config.proxy.header == "X-Forwarded-Email"
    assert config.user("cfo@example.com") is not None  # addresses compare in lower case
    yaml = tmp_path / "access.yaml"
    yaml.write_text("access:\n  users:\n    - {email: a@b.example, role: viewer, tenants: ['*']}\n")
    assert load_access_config(yaml).users[0].all_tenants
    assert load_access_config(None) == AccessConfig()


@pytest.mark.parametrize(("text", "message"), [
    ('[[users]]\nemail = "a@b.example"\nrole = "tenant_owner"\n', "needs `tenants`"),
    ('[[users]]\nemail = "a@b.example"\nrole = "boss"\n', "users.0.role"),
    ('[[users]]\nemail = "not an address"\nrole = "finance"\n', "plain e-mail"),
    ('identity = "proxy"\n', "needs a [proxy] table"),
    ('[proxy]\ntrusted = ["10.0.0.300"]\n', "not an IP address"),
    ('[proxy]\ntrusted = []\n', "proxy.trusted"),
    ('idenity = "oidc"\n', "idenity: unknown setting"),
    ('[[users]]\nemail = "a@b.example"\nrole = "finance"\n'
     '[[users]]\nemail = "A@b.example"\nrole = "viewer"\ntenants = ["x"]\n', "listed twice"),
])
def test_config_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "access.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_access_config(path)
    assert message in caught.value.message and str(path) in caught.value.message


# ---- who is who ----------------------------------------------------------------------
def test_tenant_owners_come_from_the_allocation_config(allocation: object) -> None:
    owner = resolve_principal(Identity("Owner@ACME.example", None, "oidc"), AccessConfig(),
                              allocation)  # type: ignore[arg-type]
    assert owner is not None and owner.role == "tenant_owner"
    assert owner.tenants == frozenset({"acme"}) and owner.email == OWNER
    both = resolve_principal(Identity("owner@globex.example", None, "proxy"), AccessConfig(),
                             allocation)  # type: ignore[arg-type]
    assert both is not None and both.tenants == frozenset({"globex"})
    # A team's owners own its tenants.
    lead = resolve_principal(Identity("lead@platform.example", None, "oidc"), AccessConfig(),
                             allocation)  # type: ignore[arg-type]
    assert lead is not None and lead.tenants == frozenset({"acme", "globex"})


def test_configured_users_win_and_strangers_get_nothing(allocation: object) -> None:
    config = AccessConfig.model_validate({"users": [
        {"email": OTHER_OWNER, "role": "platform"},
        {"email": "cfo@example.com", "role": "finance"},
        {"email": "audit@example.com", "role": "finance", "tenants": ["acme"]},
        {"email": "viewer@example.com", "role": "viewer", "tenants": ["*"]},
    ]})
    platform = resolve_principal(Identity(OTHER_OWNER, None, "oidc"), config, allocation)  # type: ignore[arg-type]
    assert platform is not None and platform.role == "platform" and platform.everything
    assert platform.can_decide_recommendations and platform.owned == frozenset({"globex"})
    cfo = resolve_principal(Identity("cfo@example.com", None, "oidc"), config, allocation)  # type: ignore[arg-type]
    assert cfo is not None and cfo.everything and not cfo.can_decide_recommendations
    audit = resolve_principal(Identity("audit@example.com", None, "oidc"), config, allocation)  # type: ignore[arg-type]
    assert audit is not None and audit.tenants == frozenset({"acme"})
    viewer = resolve_principal(Identity("viewer@example.com", None, "oidc"), config, allocation)  # type: ignore[arg-type]
    assert viewer is not None and viewer.everything and not viewer.view.sees_recommendations
    assert not viewer.can_label_anomalies
    assert resolve_principal(Identity("mallory@example.com", None, "oidc"), config,
                             allocation) is None  # type: ignore[arg-type]
    assert resolve_principal(Identity("not-an-email", None, "proxy"), config,
                             allocation) is None  # type: ignore[arg-type]


def test_the_local_developer_is_finance(allocation: object) -> None:
    dev = resolve_principal(DEV_IDENTITY, AccessConfig(), allocation)  # type: ignore[arg-type]
    assert dev is not None and dev.role == "finance" and dev.everything and dev.source == "dev"


# ---- identity sources ----------------------------------------------------------------
@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False), (None, False),
    ("10.0.0.5", False), ("example.com", False),
])
def test_loopback(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_without_sign_in_the_app_serves_loopback_only() -> None:
    none = AccessConfig()
    assert serving_mode(none, oidc_configured=False, address="127.0.0.1") == "dev"
    for address in ("0.0.0.0", None, "10.1.2.3"):
        with pytest.raises(ConfigError, match="without authentication"):
            serving_mode(none, oidc_configured=False, address=address)
    explicit_none = AccessConfig(identity="none")
    with pytest.raises(ConfigError):
        serving_mode(explicit_none, oidc_configured=True, address="0.0.0.0")
    assert serving_mode(none, oidc_configured=True, address="0.0.0.0") == "oidc"
    proxied = AccessConfig.model_validate({"proxy": {"trusted": ["10.0.0.5"]}})
    assert serving_mode(proxied, oidc_configured=False, address="0.0.0.0") == "proxy"
    # OIDC wins when both are set up, unless the config picks the proxy.
    assert serving_mode(proxied, oidc_configured=True, address="0.0.0.0") == "oidc"
    forced = AccessConfig.model_validate({"identity": "proxy", "proxy": {"trusted": ["10.0.0.5"]}})
    assert serving_mode(forced, oidc_configured=True, address="0.0.0.0") == "proxy"


def test_proxy_header_is_believed_only_from_the_proxy() -> None:
    proxy = ProxyConfig(trusted=("10.0.4.17", "10.0.5.0/24"), name_header="X-Forwarded-User")
    headers = {"x-forwarded-email": "Owner@Acme.example", "X-Forwarded-User": "Ana"}
    found = identity_from_proxy(headers, "10.0.4.17", proxy)
    assert found == Identity(OWNER, "Ana", "proxy")
    assert identity_from_proxy(headers, "10.0.5.200", proxy) is not None
    assert identity_from_proxy(headers, "::ffff:10.0.4.17", proxy) is not None  # IPv4-mapped
    for peer in ("10.0.4.18", "127.0.0.1", None, "", "not-an-ip"):
        assert identity_from_proxy(headers, peer, proxy) is None, peer
    assert identity_from_proxy({}, "10.0.4.17", proxy) is None
    assert identity_from_proxy({"X-Forwarded-Email": "a@b.example, c@d.example"}, "10.0.4.17",
                               proxy) is None


# ---- scoped reading: every dataset, by tenant -----------------------------------------
def tenants_in(frame: pl.DataFrame, column: str) -> set[str]:
    return set(frame[column].drop_nulls().to_list())


def test_cube_and_allocated_hold_only_the_viewers_tenants(org: Path) -> None:
    full, acme = Warehouse(org), scoped_warehouse(org, ACME)
    for dataset in ("cube", "allocated"):
        assert tenants_in(full.scan(dataset).collect(), "x_Tenant") == {
            "acme", "globex", "initech", "unallocated"}
        assert tenants_in(acme.scan(dataset).collect(), "x_Tenant") == {"acme"}
        assert tenants_in(acme.scan(dataset, where={"billing_period": "2026-04"}).collect(),
                          "x_Tenant") == {"acme"}
    total = acme.scan("allocated").select(pl.col("BilledCost").sum()).collect().item()
    assert total == Decimal("1111.11") + Decimal("1222.22") + Decimal("333.33")
    two = scoped_warehouse(org, View("viewer", ("acme", "globex")))
    assert tenants_in(two.scan("cube").collect(), "x_Tenant") == {"acme", "globex"}
    assert tenants_in(scoped_warehouse(org, EVERYTHING).scan("cube").collect(), "x_Tenant") == {
        "acme", "globex", "initech", "unallocated"}


def test_anomalies_only_on_the_viewers_own_series(org: Path) -> None:
    assert Warehouse(org).scan("anomalies").collect().height == 4
    mine = scoped_warehouse(org, ACME).scan("anomalies").collect()
    assert mine["anomaly_id"].to_list() == ["an-acme000001"]
    causes = mine["root_causes"][0].to_list()
    assert {(c["dimension"], c["value"]) for c in causes} == {("service", "Amazon EC2"),
                                                              ("tenant", "acme")}
    # Service and total series mix tenants: a tenant owner never sees them.
    globex = scoped_warehouse(org, View("tenant_owner", ("globex",))).scan("anomalies").collect()
    assert globex["anomaly_id"].to_list() == ["an-globex0001"]


def test_anomalies_named_with_their_currency(tmp_path: Path) -> None:
    frame = pl.LazyFrame({"dimension": ["tenant", "tenant", "tenant", "service"],
                          "dimension_value": ["acme (USD)", "acme (EUR)", "acmex (USD)", "acme"],
                          "currency": ["USD", "EUR", "USD", "USD"]})
    from models.access import scope_anomalies

    kept = scope_anomalies(frame, ["acme"]).collect()
    assert kept["dimension_value"].to_list() == ["acme (USD)", "acme (EUR)"]


def test_forecasts_only_for_the_viewers_tenants(org: Path) -> None:
    mine = scoped_warehouse(org, ACME).scan("forecasts").collect()
    assert set(zip(mine["dimension"], mine["dimension_value"], strict=True)) == {("tenant", "acme")}
    assert mine.height == 2
    everything = scoped_warehouse(org, EVERYTHING).scan("forecasts").collect()
    assert everything.height == 8


def test_recommendations_only_for_resources_of_the_viewers_tenants(org: Path) -> None:
    owners = resource_owners(Warehouse(org), ["i-acme-1", "db-globex", "AWS compute (USD)"])
    assert dict(zip(owners["resource_id"], owners["tenants"].to_list(), strict=True)) == {
        "db-globex": ["globex"], "i-acme-1": ["acme"]}
    mine = scoped_warehouse(org, ACME).scan("recommendations").collect()
    assert mine["resource_id"].to_list() == ["i-acme-1"]
    # Viewers see no recommendations; finance and platform see every one.
    assert scoped_warehouse(org, View("viewer", None)).scan("recommendations").collect().is_empty()
    assert scoped_warehouse(org, EVERYTHING).scan("recommendations").collect().height == 3


def test_recommendation_on_a_shared_resource_is_hidden(tmp_path: Path) -> None:
    from tests.app.conftest import Line

    lines = [Line("2026-04", 1, "10.00", "10.00", "acme", "Amazon EC2", "i-shared"),
             Line("2026-04", 2, "10.00", "10.00", "globex", "Amazon EC2", "i-shared")]
    home = build_org(tmp_path / "w", lines)
    owners = resource_owners(Warehouse(home), ["i-shared"])
    assert owners["tenants"].to_list() == [["acme", "globex"]]
    import json

    from models.rightsizing.base import SCHEMA

    rec = {"recommendation_id": "rec-shared", "kind": "idle_instance", "resource_id": "i-shared",
           "current": "m5.large", "recommended": "stop", "monthly_savings": Decimal("1"),
           "confidence": 1.0, "evidence": json.dumps({}), "summary": "", "provider": "aws",
           "region": None, "currency": "USD"}
    wh = Warehouse(home)
    wh.replace_partition("recommendations", {"as_of": "2026-04-28"},
                         pl.DataFrame([rec], schema=SCHEMA), run_id="t")
    assert scoped_warehouse(home, ACME).scan("recommendations").collect().is_empty()


def test_query_cost_only_for_the_viewers_tenants(org: Path) -> None:
    full = Warehouse(org).scan("query_cost").collect()
    assert tenants_in(full, "tenant") == {"acme", "globex", "initech", "idle"}
    mine = scoped_warehouse(org, ACME).scan("query_cost").collect()
    assert tenants_in(mine, "tenant") == {"acme"} and mine.height == 3


def test_everything_else_is_empty_for_a_scoped_viewer(org: Path) -> None:
    acme = scoped_warehouse(org, ACME)
    for dataset in ("billing", "rejected", "queries", "utilization", "inventory", "no-such"):
        assert acme.scan(dataset).collect().is_empty(), dataset
    assert not scoped_warehouse(org, EVERYTHING).scan("billing").collect().is_empty()


def test_scoped_warehouse_is_read_only(org: Path) -> None:
    acme = scoped_warehouse(org, ACME)
    with pytest.raises(ReadOnlyError):
        acme.replace_partition("cube", {"billing_period": "2026-04"}, pl.DataFrame(), run_id="x")
    with pytest.raises(ReadOnlyError):
        acme.delete_partition("cube", {"billing_period": "2026-04"})


def test_models_read_through_the_scope(org: Path) -> None:
    """Model functions given the scoped warehouse compute from the viewer's rows only."""
    from models.allocation.explain import explain_resource
    from models.anomalies import load_anomalies
    from models.forecast import load_forecasts
    from models.query_cost import cost_by
    from models.showback import compare

    acme = scoped_warehouse(org, ACME)
    assert tenants_in(compare(acme, "2026-04", ["tenant"]).table, "tenant") == {"acme"}
    assert set(load_anomalies(acme)["dimension_value"]) == {"acme"}
    assert set(load_forecasts(acme)["dimension_value"]) == {"acme"}
    assert tenants_in(cost_by(acme, "tenant"), "tenant") == {"acme"}
    from finops.errors import BadInputError

    with pytest.raises(BadInputError):
        explain_resource(acme, "db-globex")  # another tenant's resource: no cost to explain
