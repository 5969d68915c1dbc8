"""Where the reports config comes from, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from finops.errors import ConfigError
from reports.config import load_config
from reports.scope import EVERYTHING, Scope, scope_for

RECIPIENT = 'email = "Owner@Example.COM"\nrole = "tenant_owner"\ntenants = ["acme"]\n'


def test_sources_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config().recipients == ()  # nothing configured: defaults

    main = tmp_path / "finops.toml"
    main.write_text(f"[[reports.recipients]]\n{RECIPIENT}", encoding="utf-8")
    monkeypatch.setenv("FINOPS_CONFIG", str(main))
    (owner,) = load_config().recipients
    assert owner.email == "Owner@example.com" and owner.tenants == ("acme",)

    yaml_file = tmp_path / "reports.yaml"
    yaml_file.write_text("recipients:\n  - email: cfo@example.com\n    role: finance\n",
                         encoding="utf-8")
    monkeypatch.setenv("FINOPS_REPORTS_CONFIG", str(yaml_file))
    assert [r.email for r in load_config().recipients] == ["cfo@example.com"]

    flag = tmp_path / "flag.toml"
    flag.write_text(f"[[recipients]]\n{RECIPIENT}", encoding="utf-8")
    assert load_config(flag).recipient("owner@example.com") is not None


@pytest.mark.parametrize(("body", "message"), [
    ('[[recipients]]\nemail = "a@example.com"\nrole = "tenant_owner"\n', "needs `tenants`"),
    ('[[recipients]]\nemail = "not an address"\nrole = "finance"\n', "plain e-mail address"),
    ('[[recipients]]\nemail = "a@example.com"\nrole = "boss"\n', "recipients.0.role"),
    ('[[jobs]]\nname = "w"\ncron = "0 8 * *"\nsteps = ["report"]\n', "expected 5 fields"),
    ('[[jobs]]\nname = "w"\ncron = "0 8 * * MON"\ntimezone = "Mars/Base"\nsteps = ["report"]\n',
     "unknown time zone"),
    ('[[jobs]]\nname = "w"\ncron = "0 8 * * MON"\n', "needs `collect` commands"),
    ("[delivery]\npassword = 'x'\n", "delivery.password: unknown key"),
    ("recipients = [", "cannot be read"),
])
def test_bad_config_names_the_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "reports.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value), str(info.value)
    assert info.value.exit_code == 2


def test_scope_for_roles(tmp_path: Path) -> None:
    path = tmp_path / "reports.toml"
    path.write_text(
        '[[recipients]]\nemail = "f@example.com"\nrole = "finance"\n'
        '[[recipients]]\nemail = "p@example.com"\nrole = "platform"\n'
        '[[recipients]]\nemail = "v@example.com"\nrole = "viewer"\ntenants = ["*"]\n'
        '[[recipients]]\nemail = "o@example.com"\nrole = "tenant_owner"\ntenants = ["a", "b"]\n',
        encoding="utf-8")
    config = load_config(path)
    scopes = [scope_for(r) for r in config.recipients]
    assert scopes[:3] == [EVERYTHING] * 3
    assert scopes[3] == Scope(frozenset({"a", "b"}))
    assert scope_for(None) == EVERYTHING
