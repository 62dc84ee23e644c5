"""Thank-you emails and standalone appeals through the real send engine (aiosmtpd on loopback)
and gifts synced from the Stripe stand-in by the real stripe library."""

from __future__ import annotations

import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from dispatch.errors import SendError
from dispatch.jobs.appeals import send_appeal, thank_donors
from dispatch.jobs.donations import sync_donations
from dispatch.store import campaigns, thanks

NOW_UNIX = int(time.time())


@pytest.fixture
def link(stripe_stub):
    return stripe_stub.add_payment_link(url="https://donate.stripe.test/b/outlet")


@pytest.fixture
def env(stripe_env, smtp_env, link):
    return {
        **smtp_env,
        **stripe_env,
        "DISPATCH_PAYMENT_LINK": link["url"],
        "DISPATCH_OUTLET_NAME": "The Valley Ledger",
    }


@pytest.fixture
def settings(make_settings, env):
    return make_settings(**env)


def _text(message) -> str:
    return message.parsed().get_body(("plain",)).get_content()


def _html(message) -> str:
    return message.parsed().get_body(("html",)).get_content()


def test_each_new_gift_is_thanked_once_naming_its_issue(
    db, settings, stripe_stub, link, ledger, smtp_server
):
    ana = ledger("2026-W47", "ana@example.test", name="Ana")
    bo = ledger("2026-W47", "bo@example.test")
    ledger("2026-W40", "cy@example.test")
    recent = NOW_UNIX - 3600
    stripe_stub.add_session(
        payment_link=link["id"], amount=2500, token=ana, email="ana@example.test", created=recent
    )
    stripe_stub.add_session(
        payment_link=link["id"],
        amount=3000,
        currency="jpy",
        token=bo,
        email="friend@elsewhere.test",
        created=recent,
    )  # forwarded link
    stripe_stub.add_session(
        payment_link=link["id"],
        amount=900,
        currency="eur",
        token=None,
        email="CY@example.test",
        created=recent,
    )  # gave on the website
    stripe_stub.add_session(
        payment_link=link["id"],
        amount=100,
        token=ana,
        email="ana@example.test",
        created=NOW_UNIX - 90 * 86400,
    )  # too old
    stripe_stub.add_session(
        payment_link=link["id"],
        amount=700,
        token=ana,
        email="ana@example.test",
        created=recent,
        payment_status="unpaid",
    )
    sync_donations(db, settings)

    result = thank_donors(db, settings)

    assert (result.fixed, result.skipped, result.sent) == (3, 1, 2)
    [to_ana] = smtp_server.to("ana@example.test")
    assert "$25" in _text(to_ana)
    assert "Issue 2026-W47" in " ".join(_text(to_ana).split())
    assert "(2026-W47)" in _html(to_ana)
    assert to_ana.parsed()["Subject"] == "Thank you for supporting The Valley Ledger"
    [to_cy] = smtp_server.to("cy@example.test")
    assert "€9" in _text(to_cy) and "after our issue" not in _text(to_cy)
    assert smtp_server.to("friend@elsewhere.test") == []
    assert thanks.state_counts(db) == {"sent": 2, "skipped": 1}

    again = thank_donors(db, settings)
    assert (again.fixed, again.sent) == (0, 0)
    assert len(smtp_server.messages) == 2


def test_thanks_interrupted_by_a_relay_outage_resume_without_duplicates(
    db, settings, stripe_stub, link, ledger, smtp_server
):
    token = ledger("2026-W47", "ana@example.test")
    stripe_stub.add_session(
        payment_link=link["id"],
        amount=2500,
        token=token,
        email="ana@example.test",
        created=NOW_UNIX - 60,
    )
    sync_donations(db, settings)
    smtp_server.set_down(True)
    with pytest.raises(SendError):
        thank_donors(db, settings)
    assert thanks.state_counts(db) == {"pending": 1}  # fixed before anything was sent

    smtp_server.recover()
    result = thank_donors(db, settings)
    assert result.sent == 1
    assert len(smtp_server.to("ana@example.test")) == 1
    thank_donors(db, settings)
    assert len(smtp_server.to("ana@example.test")) == 1


def test_thank_dry_run_sends_nothing_and_fixes_nothing(
    db, env, stripe_stub, link, ledger, smtp_server, run_cli
):
    token = ledger("2026-W47", "ana@example.test")
    stripe_stub.add_session(
        payment_link=link["id"],
        amount=2500,
        token=token,
        email="ana@example.test",
        created=NOW_UNIX - 60,
    )
    assert run_cli("donations", "sync", env=env).exit_code == 0
    result = run_cli("donations", "thank", "--dry-run", "--json", env=env)
    assert result.exit_code == 0, result.output
    [item] = json.loads(result.stdout)["would_thank"]
    assert item["issue"] == "2026-W47" and item["amount_minor"] == 2500
    assert smtp_server.messages == [] and thanks.state_counts(db) == {}
    assert "ana@example.test" not in result.output


@pytest.fixture
def donor_history(db, settings, stripe_stub, link, ledger):
    """recent (gave 3 days ago), lapsed (200 days ago), never (no gift)."""
    recent = ledger("2026-W01", "recent@example.test")
    lapsed = ledger("2026-W01", "lapsed@example.test")
    ledger("2026-W01", "never@example.test")
    stripe_stub.add_session(
        payment_link=link["id"],
        token=recent,
        email="recent@example.test",
        created=NOW_UNIX - 3 * 86400,
    )
    stripe_stub.add_session(
        payment_link=link["id"],
        token=lapsed,
        email="lapsed@example.test",
        created=NOW_UNIX - 200 * 86400,
    )
    sync_donations(db, settings)


def test_appeal_to_never_donated_reaches_only_them_and_resumes(
    db, settings, donor_history, smtp_server
):
    today = datetime.now(UTC).date()
    campaigns.create_campaign(
        db,
        name="Winter drive",
        goal_minor=500000,
        currency="usd",
        starts_on=today - timedelta(days=10),
        ends_on=today + timedelta(days=20),
    )
    result = send_appeal(
        db,
        settings,
        segment="never-donated",
        issue_id="appeal-winter",
        message="Our winter drive ends Sunday.\n\nEvery gift counts.",
    )

    assert result.fixed == 1 and result.summary.counts["sent"] == 1
    [message] = smtp_server.messages
    assert message.rcpt == "never@example.test"
    body = _text(message)
    assert "Our winter drive ends Sunday." in body
    assert "SUPPORT OUR REPORTING" in body
    assert "Winter drive: $10 of $5,000 raised" in body
    assert "https://donate.stripe.test/b/outlet?client_reference_id=" in body

    again = send_appeal(db, settings, segment="never-donated", issue_id="appeal-winter")
    assert again.fixed is None and len(smtp_server.messages) == 1


def test_appeal_to_lapsed_donors_asks_them_to_renew(
    db, settings, donor_history, smtp_server, run_cli, env
):
    result = run_cli("campaign", "appeal", "--segment", "lapsed", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert [m.rcpt for m in smtp_server.messages] == ["lapsed@example.test"]
    assert "WILL YOU RENEW YOUR SUPPORT?" in _text(smtp_server.messages[0])
    data = json.loads(result.stdout)
    assert data["issue"].startswith("appeal-") and data["counts"]["sent"] == 1


def test_appeal_to_an_empty_segment_sends_nothing_and_keeps_a_draft(
    db, settings, smtp_server, ledger
):
    from dispatch.errors import IssueError
    from dispatch.store import issues

    ledger("2026-W01", "never@example.test")
    with pytest.raises(IssueError, match="Nobody is in the segment 'lapsed'"):
        send_appeal(db, settings, segment="lapsed", issue_id="appeal-x")
    assert issues.get_issue(db, "appeal-x").status == "draft"
    assert smtp_server.messages == []


def test_campaign_in_another_currency_is_not_fed_by_usd_gifts(db, settings, donor_history):
    from dispatch.store import donations

    campaigns.create_campaign(
        db,
        name="Euro drive",
        goal_minor=1000,
        currency="eur",
        starts_on=date(2000, 1, 1),
        ends_on=date(2100, 1, 1),
    )
    progress = donations.active_campaign_progress(db, datetime.now(UTC))
    assert progress.raised_minor == 0 and progress.currency == "eur"
