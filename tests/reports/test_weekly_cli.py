"""``finops report weekly --send`` end to end: the real CLI, a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
import re
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from finops.state import State
from reports.sendlog import SendLog
from tests.core.cli import finops
from tests.reports import data
from tests.reports.smtp import Handler, Received, smtp_server

WEEK = dt.timedelta(days=7)
USER, PASSWORD = "reports-bot", "s3cr3t-Pa55word-never-shown"
CFO, ACME, PLATFORM = "cfo@example.com", "acme-owner@example.com", "platform@example.com"


def parts(msg: EmailMessage) -> tuple[str, str, dict[str, bytes]]:
    """The decoded HTML, the decoded text and the inline images by Content-ID."""
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    assert html is not None and text is not None
    images = {}
    for part in msg.walk():
        if part.get_content_maintype() == "image":
            cid = str(part["Content-ID"]).strip("<>")
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            images[cid] = payload
    return str(html.get_content()), str(text.get_content()), images


def by_recipient(received: list[Received]) -> dict[str, EmailMessage]:
    out = {}
    for r in received:
        assert len(r.rcpt_tos) == 1, r.rcpt_tos  # one message per recipient, nobody in copy
        out[r.rcpt_tos[0]] = r.message
    return out


def weekly(home: Path, config: Path, *args: str | Path) -> tuple[int, str]:
    proc = finops("report", "weekly", "--week", data.WEEK, "--config", config, "--home", home,
                  "--format", "json", *args)
    return proc.returncode, proc.stdout + proc.stderr


def test_send_structure_scoping_idempotency(home: Path, config_file: Path, tls: ssl.SSLContext,
                                            smtp_env: Callable[..., None]) -> None:
    with smtp_server(credentials=(USER, PASSWORD), starttls=tls) as server:
        smtp_env(server, username=USER, password=PASSWORD, starttls=True)
        code, output = weekly(home, config_file, "--send")
        assert code == 0, output
        assert len(server.received) == 3
        assert all(r.authenticated and r.tls and r.mail_from == "finops-reports@example.org"
                   for r in server.received)
        mails = by_recipient(server.received)
        assert set(mails) == {CFO, ACME, PLATFORM}

        # MIME: alternative(text, related(html, png, png)), every image referenced by cid.
        for msg in mails.values():
            assert msg.get_content_type() == "multipart/alternative"
            kinds = [p.get_content_type() for p in msg.iter_parts()]
            assert kinds == ["text/plain", "multipart/related"]
            related = list(msg.iter_parts())[1]
            inner = [p.get_content_type() for p in related.iter_parts()]
            assert inner == ["text/html", "image/png", "image/png"]
            html, _text, images = parts(msg)
            assert len(images) == 2
            for cid, png in images.items():
                assert f'src="cid:{cid}"' in html
                assert png.startswith(b"\x89PNG\r\n\x1a\n")
            assert "FinOps weekly report 2026-W19" in str(msg["Subject"])

        # The finance report holds everything, the hostile tenant name escaped.
        html, text, _ = parts(mails[CFO])
        total = data.expected(None, data.MONDAY, data.SUNDAY)
        for tenant in ("acme", "globex", "initech"):
            assert tenant in html and tenant in text
        assert data.money(total) in html and data.money(total) in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        assert "<img src=x" not in html

        # The tenant owner's report holds acme's figures and no one else's names or numbers.
        html, text, _ = parts(mails[ACME])
        acme_week = data.expected(["acme"], data.MONDAY, data.SUNDAY)
        assert data.money(acme_week) in html and data.money(acme_week) in text
        others = [t for t in data.TENANTS if t != "acme"]
        forbidden = [
            "globex", "initech", "onerror", "unallocated", "Amazon RDS", "AWS Support",
            "db-globex", "vol-shared", "i-initech", "222222222222", "333333333333",
            data.money(total),
            *(data.money(data.expected([t], data.MONDAY, data.SUNDAY)) for t in others),
            *(data.money(change).lstrip("-") for t in others
              if (change := data.expected([t], data.MONDAY, data.SUNDAY)
                  - data.expected([t], data.MONDAY - WEEK, data.SUNDAY - WEEK))),
            "987.65", "120.50", "66.60", "55.00",  # other tenants' savings
        ]
        for body in (html, text, str(mails[ACME]["Subject"])):
            leaked = [word for word in forbidden if word.lower() in body.lower()]
            assert not leaked, f"the acme owner's report shows {leaked}"

        # The platform team's report leads with recommendations.
        html, text, _ = parts(mails[PLATFORM])
        headings = re.findall(r"font-size:17px;[^>]*>([^<]+)</td>", html)
        assert headings[0] == "Top recommendations", headings
        assert text.index("TOP RECOMMENDATIONS") < text.index("SPEND THIS WEEK")

        # A second run sends nothing; --force sends again.
        code, output = weekly(home, config_file, "--send")
        assert code == 0, output
        assert len(server.received) == 3
        assert output.count('"status": "skipped"') == 3
        code, output = weekly(home, config_file, "--send", "--force", "--to", ACME)
        assert code == 0, output
        assert len(server.received) == 4
        assert server.received[-1].rcpt_tos == [ACME]

    # The password is nowhere: output, state.db, logs.
    assert PASSWORD not in output
    for path in home.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_one_rejected_recipient_does_not_stop_the_others(
        home: Path, config_file: Path, smtp_env: Callable[..., None]) -> None:
    handler = Handler(reject={PLATFORM})
    with smtp_server(handler) as server:
        smtp_env(server)
        code, output = weekly(home, config_file, "--send")
        assert code == 1, output
        assert sorted(r.rcpt_tos[0] for r in server.received) == [ACME, CFO]
        assert "550" in output
        state = State(home / "state.db")
        try:
            log = {r.recipient: r.status for r in SendLog(state).records("weekly", data.WEEK)}
        finally:
            state.close()
        assert log == {CFO: "sent", ACME: "sent", PLATFORM: "failed"}

        # The next run sends to the one who failed, and only to them.
        handler.reject.clear()
        code, output = weekly(home, config_file, "--send")
        assert code == 0, output
        assert [r.rcpt_tos for r in server.received[2:]] == [[PLATFORM]]


def test_wrong_password_is_not_shown(home: Path, config_file: Path, tls: ssl.SSLContext,
                                     smtp_env: Callable[..., None]) -> None:
    wrong = "Wr0ng-pa55-d0-not-print"
    with smtp_server(credentials=(USER, PASSWORD), starttls=tls) as server:
        smtp_env(server, username=USER, password=wrong, starttls=True)
        code, output = weekly(home, config_file, "--send", "--to", "someone@example.net")
        assert code == 1, output
        assert "refused the login" in output
        assert not server.received
    assert wrong not in output
    assert wrong.encode() not in (home / "state.db").read_bytes()


def test_out_writes_previews_and_to_without_scope_gets_everything(
        home: Path, config_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "preview"
    code, output = weekly(home, config_file, "--out", out, "--to", "Auditor@Example.NET")
    assert code == 0, output
    folder = out / data.WEEK
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["auditor_example.net-month.png", "auditor_example.net-trend.png",
                     "auditor_example.net.eml", "auditor_example.net.html"]
    html = next(folder.glob("*.html")).read_text(encoding="utf-8")
    assert "globex" in html and "initech" in html  # no configured scope: everything
    assert 'src="auditor_example.net-trend.png"' in html


def test_bad_config_exits_2(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[reports.recipients]]\nemail = "x@example.com"\nrole = "tenant_owner"\n',
                   encoding="utf-8")
    code, output = weekly(home, bad)
    assert code == 2
    assert "needs `tenants`" in output
    assert "Traceback" not in output
