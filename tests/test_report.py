"""`dispatch report`: figures per issue from the ledger, bounces, clicks and synced gifts."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from dispatch.store import to_db_time, utcnow


@pytest.fixture
def link(stripe_stub):
    return stripe_stub.add_payment_link(url="https://donate.stripe.test/b/outlet")


@pytest.fixture
def env(stripe_env, link):
    return dict(stripe_env, DISPATCH_PAYMENT_LINK=link["url"])


@pytest.fixture
def seeded(db, ledger, stripe_stub, link, run_cli, env):
    """Two issues: W47 to three people (one failed), W48 to two; gifts in USD, EUR and JPY."""
    ana = ledger("2026-W47", "ana@example.test", sent_at="2026-11-20T08:00:00+00:00")
    bo = ledger("2026-W47", "bo@example.test")
    ledger("2026-W47", "cy@example.test", state="failed")
    ana48 = ledger("2026-W48", "ana@example.test", sent_at="2026-11-27T08:00:00+00:00")
    ledger("2026-W48", "bo@example.test")
    first = stripe_stub.add_session(
        payment_link=link["id"], amount=2500, token=ana, email="ana@example.test"
    )
    stripe_stub.add_session(
        payment_link=link["id"], amount=1000, currency="eur", token=bo, email="bo@example.test"
    )
    stripe_stub.add_session(
        payment_link=link["id"], amount=3000, currency="jpy", token=ana48, email="ana@example.test"
    )
    stripe_stub.add_session(payment_link=link["id"], amount=700, token=None)
    stripe_stub.add_refund(first, 500)
    now = to_db_time(utcnow())
    later = to_db_time(utcnow() + timedelta(hours=1))  # readers click well after delivery
    scanner = to_db_time(utcnow() + timedelta(seconds=10))  # a mail scanner, on arrival
    with db.transaction() as conn:  # what the web service and bounce processor record
        conn.execute("INSERT INTO clicks (token, clicked_at) VALUES (?, ?)", (ana, later))
        conn.execute("INSERT INTO clicks (token, clicked_at) VALUES (?, ?)", (ana, later))
        conn.execute("INSERT INTO clicks (token, clicked_at) VALUES (?, ?)", (bo, later))
        conn.execute("INSERT INTO clicks (token, clicked_at) VALUES (?, ?)", (bo, scanner))
        conn.execute(
            "INSERT INTO bounces (message_key, issue_id, kind, received_at)"
            " VALUES ('m1', '2026-W47', 'hard', ?)",
            (now,),
        )
        conn.execute(
            "UPDATE subscribers SET status = 'unsubscribed', status_changed_at = ?"
            " WHERE email = 'bo@example.test'",
            ("2999-01-01T00:00:00+00:00",),
        )
    assert run_cli("donations", "sync", env=env).exit_code == 0


def test_report_json_per_issue_and_unattributed(seeded, run_cli):
    result = run_cli("report", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    w47, w48 = data["issues"]
    assert w47["issue"] == "2026-W47" and w48["issue"] == "2026-W48"
    assert (w47["recipients"], w47["sent"], w47["failed"], w47["bounced"]) == (3, 2, 1, 1)
    assert w47["unsubscribed_since"] == 1
    assert (w47["clicks"], w47["clickers"]) == (3, 2)
    assert w47["donations"] == 2 and w47["donors"] == 2
    assert w47["amounts"] == {"eur": 1000, "usd": 2000}  # 2500 less a 500 refund
    assert w47["refunded"] == {"usd": 500}
    assert w47["conversion"] == 1.0
    assert w48["amounts"] == {"jpy": 3000} and w48["conversion"] == 0.5
    assert data["unattributed"] == {"donations": 1, "pending": 0, "amounts": {"usd": 700}}
    assert data["totals"]["amounts"] == {"eur": 1000, "jpy": 3000, "usd": 2700}
    [ana, bo] = sorted(data["donors"], key=lambda d: d["email"])
    assert ana["donations"] == 2 and ana["amounts"] == {"jpy": 3000, "usd": 2000}
    assert ana["issues"] == ["2026-W47", "2026-W48"]
    assert data["mode"] == "test"

    one = json.loads(run_cli("report", "2026-W48", "--json").stdout)
    assert one == w48


def test_report_table_shows_jpy_without_decimals(seeded, run_cli):
    result = run_cli("report")
    assert result.exit_code == 0
    assert "¥3,000" in result.output
    assert "€10.00, $20.00" in result.output
    assert "Unattributed gifts (no or unknown link token): 1, $7.00" in result.output
    assert "50.0%" in result.output


def test_report_csv_and_svg_chart(seeded, run_cli, tmp_path):
    out_csv, out_svg = tmp_path / "r.csv", tmp_path / "trend.svg"
    result = run_cli("report", "--csv", str(out_csv), "--chart", str(out_svg))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert [r["issue"] for r in rows] == ["2026-W47", "2026-W48"]
    assert rows[0]["amount_usd"] == "2000" and rows[1]["amount_jpy"] == "3000"
    assert rows[0]["amount_jpy"] == "0"
    svg = ET.parse(out_svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in svg.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(bars) == 2 and "2026-W47: 2 gifts" in bars[0].find(f"{ns}title").text
    assert svg.find(f"{ns}polyline") is not None


def test_report_of_an_unknown_issue_and_a_png_chart_are_clear_errors(db, run_cli, tmp_path):
    missing = run_cli("report", "2030-W01")
    assert missing.exit_code == 1 and "no digest or appeal issue '2030-W01'" in missing.output
    png = run_cli("report", "--chart", str(tmp_path / "x.png"))
    assert png.exit_code == 1 and ".svg" in png.output


def test_report_with_nothing_sent(db, run_cli):
    result = run_cli("report")
    assert result.exit_code == 0
    assert "no issue has been sent yet" in result.output
