"""Campaign progress, donor personas and appeal segments, from synced donations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dispatch.errors import InputError
from dispatch.jobs.donations import sync_donations
from dispatch.models import CampaignProgress
from dispatch.store import campaigns, donations

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


@pytest.fixture
def link(stripe_stub):
    return stripe_stub.add_payment_link(url="https://donate.stripe.test/b/outlet")


@pytest.fixture
def sync(db, make_settings, stripe_env, link):
    settings = make_settings(**stripe_env, DISPATCH_PAYMENT_LINK=link["url"])
    return lambda: sync_donations(db, settings)


def _subscriber_id(db, email):
    return db.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()["id"]


def test_personas_follow_the_latest_counted_gift(db, stripe_stub, link, ledger, sync):
    recent = ledger("2026-W49", "recent@example.test")
    lapsed = ledger("2026-W10", "lapsed@example.test")
    ancient = ledger("2025-W01", "ancient@example.test")
    refunded = ledger("2026-W49", "refunded@example.test")
    forwarded = ledger("2026-W49", "forwarder@example.test")
    ledger("2026-W49", "never@example.test")
    ledger("2026-W49", "payer@example.test")  # gave through someone else's link
    sessions = {
        token: stripe_stub.add_session(
            payment_link=link["id"],
            token=token,
            email=email,
            created=_unix(NOW - timedelta(days=days_ago)),
        )
        for token, email, days_ago in (
            (recent, "recent@example.test", 3),
            (lapsed, "lapsed@example.test", 200),
            (ancient, "ancient@example.test", 500),
            (refunded, "refunded@example.test", 2),
            (forwarded, "PAYER@example.test", 1),
        )
    }
    gone = sessions[refunded]
    stripe_stub.add_refund(gone, gone["amount_total"])
    sync()

    found = donations.donor_personas(db, NOW, recent_days=30, lapsed_days=365)

    named = {
        email: found.get(_subscriber_id(db, email), "non_donor")
        for email in (
            "recent@example.test",
            "lapsed@example.test",
            "ancient@example.test",
            "refunded@example.test",
            "forwarder@example.test",
            "never@example.test",
            "payer@example.test",
        )
    }
    assert named == {
        "recent@example.test": "recent_donor",
        "lapsed@example.test": "lapsed_donor",
        "ancient@example.test": "non_donor",  # older than DISPATCH_DONOR_LAPSED_DAYS
        "refunded@example.test": "non_donor",  # refunded in full does not count
        "forwarder@example.test": "non_donor",  # someone else paid through their link
        "never@example.test": "non_donor",
        "payer@example.test": "recent_donor",  # their own address paid
    }
    # Never-donated means no counted gift however old: the ancient donor is not in it.
    donors = set(campaigns.last_gift_by_subscriber(db))
    assert _subscriber_id(db, "ancient@example.test") in donors
    assert _subscriber_id(db, "refunded@example.test") not in donors


def test_campaign_progress_counts_net_gifts_in_its_currency_and_dates(db, stripe_stub, link, sync):
    campaigns.create_campaign(
        db,
        name="Winter drive",
        goal_minor=100000,
        currency="usd",
        starts_on=date(2026, 12, 1),
        ends_on=date(2026, 12, 31),
    )
    inside = _unix(datetime(2026, 12, 5, tzinfo=UTC))
    partly = stripe_stub.add_session(
        payment_link=link["id"], amount=5000, created=inside, email="a@example.test"
    )
    stripe_stub.add_session(
        payment_link=link["id"], amount=2500, created=inside, email="b@example.test"
    )
    stripe_stub.add_session(payment_link=link["id"], amount=9999, currency="eur", created=inside)
    stripe_stub.add_session(
        payment_link=link["id"],
        amount=7777,
        created=_unix(datetime(2026, 11, 30, 23, 59, tzinfo=UTC)),
    )
    stripe_stub.add_session(
        payment_link=link["id"], amount=1234, created=inside, payment_status="unpaid"
    )
    stripe_stub.add_refund(partly, 1000)
    sync()

    progress = donations.active_campaign_progress(db, NOW)

    assert progress == CampaignProgress(
        name="Winter drive",
        goal_minor=100000,
        currency="usd",
        raised_minor=6500,
        donors=2,
        ends_on="2026-12-31",
    )
    assert progress.percent == 6
    assert donations.active_campaign_progress(db, datetime(2027, 1, 1, tzinfo=UTC)) is None


def test_campaign_dates_and_goal_are_checked(db):
    def create(starts_on: date, ends_on: date) -> None:
        campaigns.create_campaign(
            db, name="x", goal_minor=100, currency="usd", starts_on=starts_on, ends_on=ends_on
        )

    with pytest.raises(InputError, match="ends"):
        create(date(2026, 12, 2), date(2026, 12, 1))
    create(date(2026, 12, 1), date(2026, 12, 1))
    with pytest.raises(InputError, match="already exists"):
        create(date(2026, 12, 1), date(2026, 12, 1))


def test_campaign_cli_create_and_list(run_cli):
    def create(name: str, goal: str):
        return run_cli(
            "campaign",
            "create",
            name,
            "--goal",
            goal,
            "--currency",
            "jpy",
            "--start",
            "2026-12-01",
            "--end",
            "2026-12-31",
        )

    made = create("Winter drive", "5000")
    assert made.exit_code == 0, made.output
    assert "¥5,000" in made.output
    listed = run_cli("campaign", "list", "--json")
    assert listed.exit_code == 0
    assert '"goal_minor": 5000' in listed.output and '"currency": "jpy"' in listed.output
    bad = create("Other", "12.5")
    assert bad.exit_code == 1 and "decimal places" in bad.output
