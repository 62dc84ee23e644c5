# ruff: noqa: F811 - pytest fixtures imported from test_recurring are used as arguments
"""The report of recurring gifts (issue 11): `report ISSUE --json` keeps its fields and adds
`recurring` and `lifetime`, equal to what the Stripe stand-in holds; CSV columns; MRR now and
month by month; retention after 1/3/6/12 months; the offline HTML page; the NewsMatch CSV."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime

import pytest

from dispatch import retention
from dispatch.jobs.donations import sync_donations
from tests.test_recurring import expected, link, settings, story  # noqa: F401 - fixtures

CONTRACT = {"issue", "recipients", "sent", "failed", "donations", "amounts"}


@pytest.fixture
def synced(db, settings, stripe_stub, story):
    sync_donations(db, settings)
    return story


def test_report_issue_json_adds_recurring_and_lifetime_equal_to_the_stand_in(
    db, run_cli, stripe_stub, synced
):
    want = expected(stripe_stub, db)
    for issue in ("2026-W47", "2026-W48"):
        result = run_cli("report", issue, "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert set(data) >= CONTRACT
        assert data["lifetime"] == want[issue]["lifetime"]
        rec = data["recurring"]
        assert (rec["donors_started"], rec["active"], rec["cancelled"], rec["renewals"]) == (
            want[issue]["started"],
            want[issue]["active"],
            want[issue]["cancelled"],
            want[issue]["renewals"],
        )
    w47 = json.loads(run_cli("report", "2026-W47", "--json").output)
    assert w47["recurring"]["one_time_gifts"] == 1  # dan's; ana's and ben's are monthly
    # amounts keeps its meaning: gifts and first payments through the issue's links, net of
    # refunds (the renewal's refund and the dispute are in lifetime, not here).
    assert w47["amounts"] == {"eur": 2500 + 1000, "usd": 500}


def test_mrr_counts_what_still_gives_and_each_past_month(db, stripe_stub, synced):
    figures = retention.mrr(db, now=datetime.fromtimestamp(stripe_stub.clock, UTC))
    assert figures["now"] == {"eur": 1000, "usd": 500}  # cleo cancelled; ana and ben give
    assert figures["months"][0]["mrr"] == {"eur": 3000, "usd": 500}
    assert figures["months"][-1]["mrr"] == {"eur": 1000, "usd": 500}


def test_retention_after_1_3_6_12_months_per_issue(db, stripe_stub, synced):
    now = datetime.fromtimestamp(stripe_stub.clock, UTC)
    table = {row["issue"]: row for row in retention.retention(db, now=now)}
    assert table["2026-W47"]["started"] == 2
    assert table["2026-W47"]["after"]["6"] == {"eligible": 2, "active": 2}
    assert table["2026-W47"]["after"]["12"] == {"eligible": 0, "active": 0}
    assert table["2026-W48"]["after"]["3"] == {"eligible": 1, "active": 1}
    assert table["2026-W48"]["after"]["6"] == {"eligible": 1, "active": 0}


def test_csv_has_recurring_and_lifetime_columns(db, run_cli, stripe_stub, synced, tmp_path):
    out = tmp_path / "report.csv"
    assert run_cli("report", "--csv", str(out)).exit_code == 0
    rows = {r["issue"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    want = expected(stripe_stub, db)
    assert rows["2026-W47"]["recurring_renewals"] == str(want["2026-W47"]["renewals"])
    assert rows["2026-W47"]["lifetime_usd"] == str(want["2026-W47"]["lifetime"]["usd"])
    assert rows["2026-W48"]["recurring_cancelled"] == "1"


def test_html_page_is_one_offline_file_with_charts(run_cli, synced, tmp_path):
    page = tmp_path / "board.html"
    result = run_cli("report", "--html", str(page))
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg") == 3  # MRR, lifetime per issue, retention
    assert "<script" not in text
    # Nothing is loaded from anywhere: no src or href, no stylesheet link, no @import.
    assert not re.search(r"\b(src|href)\s*=", text) and "@import" not in text
    assert "2026-W48" in text and "€10.00" in text
    assert run_cli("report", "--html", str(tmp_path / "x.png")).exit_code == 1


def test_newsmatch_export_lists_new_recurring_donors_with_12x_the_monthly_gift(
    run_cli, stripe_stub, synced, tmp_path
):
    out = tmp_path / "newsmatch.csv"
    day = (
        datetime.fromtimestamp(
            stripe_stub.objects["subscription"][synced["ana"]["subscription"]]["start_date"], UTC
        )
        .date()
        .isoformat()
    )
    result = run_cli("report", "--newsmatch", str(out), "--since", day, "--until", day)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {(r["email"], r["currency"], r["annualised_minor"]) for r in rows} == {
        ("ana@example.test", "eur", "12000"),
        ("ben@example.test", "usd", "6000"),
        ("cleo@example.test", "eur", "24000"),
    }
    assert run_cli("report", "--newsmatch", str(out)).exit_code == 2


def test_the_table_for_people_shows_mrr_and_each_issues_recurring_donors(run_cli, synced):
    result = run_cli("report")
    assert result.exit_code == 0, result.output
    assert "Monthly recurring revenue now: €10.00, $5.00" in result.output
    assert "2026-W48: 1 recurring donors started, 0 active, 0 past due, 1 cancelled" in (
        result.output
    )


def test_each_recurring_donor_has_a_history(db, run_cli, stripe_stub, synced, tmp_path):
    data = json.loads(run_cli("report", "--json").output)
    donors = {d["email"]: d for d in data["recurring_donors"]}
    ben = donors["ben@example.test"]
    assert (ben["status"], ben["failures"], ben["recovered"]) == ("active", 1, True)
    kinds = [h["kind"] for h in ben["history"]]
    assert kinds.count("renewal") == 6 and kinds.count("failed") == 1
    assert kinds[0] == "first_payment"
    cleo = donors["cleo@example.test"]
    assert cleo["status"] == "canceled" and cleo["cancel_reason"] == "cancellation_requested"
    page = tmp_path / "board.html"
    run_cli("report", "--html", str(page))
    text = page.read_text(encoding="utf-8")
    assert "be***@example.test" in text and "ben@example.test" not in text
    assert "active (recovered)" in text


def test_a_refunded_first_payment_nets_the_issues_amounts(
    db, run_cli, settings, stripe_stub, link, ledger
):
    token = ledger("2026-W49", "eve@example.test")
    from dispatch.store import donations as donation_store

    donation_store.save_payment_link(
        db, link_id=link["id"], url=link["url"], kind="monthly", livemode=False
    )
    session = stripe_stub.start_subscription(
        payment_link=link["id"], token=token, amount=800, currency="eur"
    )
    first = stripe_stub._invoice_payments[session["invoice"]][-1]["payment"]["payment_intent"]
    stripe_stub.refund_payment(first, 300)
    sync_donations(db, settings)
    data = json.loads(run_cli("report", "2026-W49", "--json").output)
    assert data["amounts"] == {"eur": 500}
    assert data["lifetime"] == {"eur": 500}
    stripe_stub.refund_payment(first, 500)  # refunded in full: no longer a counted gift
    sync_donations(db, settings)
    data = json.loads(run_cli("report", "2026-W49", "--json").output)
    assert data["donations"] == 0 and data["amounts"] == {}
