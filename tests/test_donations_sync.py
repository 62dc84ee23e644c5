"""`donations sync` with the real stripe library against the local Stripe stand-in."""

from __future__ import annotations

import json
import logging

import pytest

from dispatch.errors import ConfigError, DonationError
from dispatch.jobs.donations import SESSION_OVERLAP_SECONDS, sync_donations
from dispatch.store import donations as store
from tests.plugins.stripe import LIVE_KEY, TEST_KEY


@pytest.fixture
def link(stripe_stub):
    return stripe_stub.add_payment_link(url="https://donate.stripe.test/b/outlet")


@pytest.fixture
def settings(make_settings, stripe_env, link):
    return make_settings(**stripe_env, DISPATCH_PAYMENT_LINK=link["url"])


def _link_listings(stub):
    """Listings of a Payment Link's sessions (sync also lists the donation page's, issue 11)."""
    return [c for c in stub.calls("GET", "/v1/checkout/sessions") if "payment_link" in c.query]


def _by_session(db):
    return {r.session_id: r for r in store.list_donations(db)}


def test_more_than_a_page_of_sessions_is_read_to_the_end(db, settings, stripe_stub, link, ledger):
    token = ledger("2026-W47", "ana@example.test")
    ids = [
        stripe_stub.add_session(
            payment_link=link["id"], amount=500 + i, token=token if i == 0 else None
        )["id"]
        for i in range(230)
    ]
    # A session of another link of the same account is not a donation.
    other = stripe_stub.add_payment_link()
    stripe_stub.add_session(payment_link=other["id"], amount=99999)

    result = sync_donations(db, settings)

    assert result.sessions == 230
    assert result.counts["new"] == 230
    assert result.counts["unattributed"] == 229
    assert set(_by_session(db)) == set(ids)
    listings = _link_listings(stripe_stub)
    assert len(listings) == 3  # 100 + 100 + 30
    assert listings[0].query["payment_link"] == link["id"]
    assert listings[0].query["status"] == "complete"
    assert listings[0].query["limit"] == "100"
    assert "starting_after" not in listings[0].query
    # Newest first: each next page starts after the oldest session of the page before.
    assert listings[1].query["starting_after"] == ids[130]
    assert listings[2].query["starting_after"] == ids[30]
    # The first sync has no cursor, so asks from the beginning; the cursor is then stored.
    assert "created" not in listings[0].query
    newest = max(stripe_stub.objects["checkout.session"][i]["created"] for i in ids)
    assert store.get_cursor(db, f"sessions:{link['id']}") == newest


def test_second_sync_overlaps_the_cursor_and_counts_nothing_twice(
    db, settings, stripe_stub, link, ledger
):
    token = ledger("2026-W47", "ana@example.test")
    stripe_stub.add_session(payment_link=link["id"], amount=2500, token=token)
    first = sync_donations(db, settings)
    stripe_stub.requests.clear()

    second = sync_donations(db, settings)

    assert first.counts["new"] == 1
    assert second.counts["new"] == 0 and second.counts["updated"] == 0
    assert second.counts["unchanged"] == 1
    listing = stripe_stub.calls("GET", "/v1/checkout/sessions")[0]
    cursor = store.get_cursor(db, f"sessions:{link['id']}")
    assert int(listing.query["created"]["gte"]) == cursor - SESSION_OVERLAP_SECONDS
    rows = store.list_donations(db)
    assert len(rows) == 1
    assert rows[0].amount_minor == 2500 and rows[0].status == "paid"
    assert rows[0].issue_id == "2026-W47"


def test_unpaid_session_is_pending_then_paid_after_a_later_sync(
    db, settings, stripe_stub, link, ledger
):
    token = ledger("2026-W47", "ana@example.test")
    late = stripe_stub.add_session(
        payment_link=link["id"], amount=4000, token=token, payment_status="unpaid"
    )
    failing = stripe_stub.add_session(payment_link=link["id"], amount=3000, payment_status="unpaid")
    result = sync_donations(db, settings)
    assert result.counts["pending"] == 2
    assert {r.status for r in store.list_donations(db)} == {"pending"}

    stripe_stub.settle(late["id"], succeeded=True)
    stripe_stub.settle(failing["id"], succeeded=False)
    stripe_stub.requests.clear()
    result = sync_donations(db, settings)

    rows = _by_session(db)
    assert rows[late["id"]].status == "paid"
    assert rows[late["id"]].paid_at is not None
    assert rows[failing["id"]].status == "failed"
    assert result.counts["pending"] == 0
    # A session still unpaid in the listing is re-read by id with its PaymentIntent expanded,
    # which tells a failed delayed payment from one still processing.
    reads = stripe_stub.calls("GET", f"/v1/checkout/sessions/{failing['id']}")
    assert reads and reads[0].query["expand"] == ["payment_intent"]


def test_pending_session_older_than_the_overlap_is_rechecked_by_id(db, settings, stripe_stub, link):
    old = stripe_stub.add_session(
        payment_link=link["id"], payment_status="unpaid", created=1_700_000_000
    )
    stripe_stub.add_session(payment_link=link["id"], created=1_700_000_000 + 10 * 86400)
    sync_donations(db, settings)
    stripe_stub.settle(old["id"], succeeded=True)
    stripe_stub.requests.clear()

    result = sync_donations(db, settings)

    listing = stripe_stub.calls("GET", "/v1/checkout/sessions")[0]
    assert int(listing.query["created"]["gte"]) > old["created"]  # outside the listing
    assert stripe_stub.calls("GET", f"/v1/checkout/sessions/{old['id']}")
    assert _by_session(db)[old["id"]].status == "paid"
    assert result.counts["updated"] == 1


def test_a_paid_donation_never_goes_back_to_pending(db, settings, stripe_stub, link):
    from dispatch.jobs.donations import record_checkout_session

    session = stripe_stub.add_session(payment_link=link["id"], amount=1000)
    sync_donations(db, settings)
    stale = dict(session, payment_status="unpaid")
    assert record_checkout_session(db, stale, "webhook").outcome == "unchanged"
    assert store.list_donations(db)[0].status == "paid"


def test_refunds_partial_and_full_are_netted(db, settings, stripe_stub, link, ledger):
    token = ledger("2026-W47", "ana@example.test")
    partly = stripe_stub.add_session(payment_link=link["id"], amount=5000, token=token)
    fully = stripe_stub.add_session(payment_link=link["id"], amount=2000, currency="eur")
    sync_donations(db, settings)
    stripe_stub.add_refund(partly, 1500)
    stripe_stub.add_refund(fully, 2000)
    stripe_stub.add_refund(partly, 700, status="failed")  # a failed refund nets nothing
    pending = stripe_stub.add_refund(fully, 0, status="pending")

    result = sync_donations(db, settings)

    rows = _by_session(db)
    assert rows[partly["id"]].amount_minor - rows[partly["id"]].refunded_minor == 3500
    assert rows[fully["id"]].refunded_minor == 2000
    assert result.counts["refunds_new"] == 4
    refund_listing = stripe_stub.calls("GET", "/v1/refunds")[0]
    assert int(refund_listing.query["created"]["gte"]) <= partly["created"]
    assert stripe_stub.calls("GET", f"/v1/refunds/{pending['id']}")  # re-checked by id
    again = sync_donations(db, settings)
    assert again.counts["refunds_new"] == 0 and again.counts["new"] == 0


def test_currencies_are_kept_apart_and_jpy_has_no_minor_unit(db, settings, stripe_stub, link):
    stripe_stub.add_session(payment_link=link["id"], amount=1250, currency="usd")
    stripe_stub.add_session(payment_link=link["id"], amount=900, currency="eur")
    stripe_stub.add_session(payment_link=link["id"], amount=3000, currency="jpy")
    sync_donations(db, settings)
    amounts = {r.currency: r.amount_minor for r in store.list_donations(db)}
    assert amounts == {"usd": 1250, "eur": 900, "jpy": 3000}


def test_tokens_map_to_subscriber_and_issue_and_unknown_ones_stay_unattributed(
    db, settings, stripe_stub, link, ledger
):
    token = ledger("2026-W47", "Ana@Example.test")
    forwarded = ledger("2026-W47", "bo@example.test")
    own = stripe_stub.add_session(payment_link=link["id"], token=token, email="ana@example.TEST")
    fwd = stripe_stub.add_session(
        payment_link=link["id"], token=forwarded, email="friend@example.test"
    )
    none = stripe_stub.add_session(payment_link=link["id"], token=None)
    unknown = stripe_stub.add_session(payment_link=link["id"], token="nosuchtoken123")

    result = sync_donations(db, settings)

    rows = _by_session(db)
    assert rows[own["id"]].issue_id == "2026-W47"
    assert rows[own["id"]].subscriber_id is not None
    assert rows[own["id"]].possibly_forwarded == 0  # case differs only
    assert rows[fwd["id"]].possibly_forwarded == 1
    for session in (none, unknown):
        assert rows[session["id"]].subscriber_id is None
        assert rows[session["id"]].issue_id is None
    assert rows[unknown["id"]].token == "nosuchtoken123"
    assert result.counts["unattributed"] == 2


def test_a_500_from_the_api_is_retried(db, settings, stripe_stub, link):
    sync_donations(db, settings)  # adopts the link, so the listing is the first request next
    stripe_stub.add_session(payment_link=link["id"])
    stripe_stub.requests.clear()
    stripe_stub.fail_next(1, status=500)
    result = sync_donations(db, settings)
    assert result.counts["new"] == 1
    listings = _link_listings(stripe_stub)
    assert len(listings) == 2  # the failed attempt and its retry
    # The retry is the same request (the library adds its retry count header).
    assert listings[0].query == listings[1].query


def test_persistent_errors_are_a_clear_error_and_move_no_cursor(db, settings, stripe_stub, link):
    stripe_stub.add_session(payment_link=link["id"])
    stripe_stub.fail_next(10, status=500)
    with pytest.raises(DonationError, match="Stripe answered with an error"):
        sync_donations(db, settings)
    assert store.get_cursor(db, f"sessions:{link['id']}") is None


def test_payment_link_setting_must_be_a_url(db, make_settings, stripe_env, link):
    with pytest.raises(ConfigError, match="not an absolute https:// address"):
        sync_donations(db, make_settings(**stripe_env, DISPATCH_PAYMENT_LINK=link["id"]))


def test_live_key_against_test_data_is_refused(db, make_settings, stripe_env, stripe_stub, link):
    env = dict(stripe_env, STRIPE_SECRET_KEY=LIVE_KEY, DISPATCH_PAYMENT_LINK=link["url"])
    with pytest.raises(ConfigError) as info:
        sync_donations(db, make_settings(**env))
    assert "in live mode" in str(info.value) and "same mode" in str(info.value)
    assert LIVE_KEY not in str(info.value)
    # The live key asked Stripe for its links and saw none of the test ones.
    assert stripe_stub.requests[0].headers["Authorization"] == f"Bearer {LIVE_KEY}"
    assert store.list_donations(db) == [] and store.stripe_mode(db) is None


def test_an_object_of_the_other_mode_is_refused_by_stripe_with_a_mode_hint(
    make_settings, stripe_env, stripe_stub, link
):
    from dispatch.donations import StripeGateway

    live = StripeGateway(make_settings(**dict(stripe_env, STRIPE_SECRET_KEY=LIVE_KEY)))
    with pytest.raises(DonationError) as info:
        live.payment_link(link["id"])
    assert "similar object exists in test mode" in str(info.value)
    assert "other mode" in info.value.hint
    assert LIVE_KEY not in str(info.value)


def test_a_webhook_object_of_the_other_mode_is_refused(db, settings, stripe_stub, link):
    from dispatch.jobs.donations import record_checkout_session

    sync_donations(db, settings)  # the database is now test mode
    live_session = dict(stripe_stub.add_session(payment_link=link["id"]), livemode=True)
    with pytest.raises(DonationError, match="test-mode donations; a live-mode object"):
        record_checkout_session(db, live_session, "webhook")
    assert store.list_donations(db) == []


def test_key_of_the_other_mode_than_the_database_is_refused_before_any_request(
    db, settings, make_settings, stripe_env, stripe_stub, link
):
    stripe_stub.add_session(payment_link=link["id"])
    sync_donations(db, settings)
    assert store.stripe_mode(db) == "test"
    stripe_stub.requests.clear()
    live = make_settings(
        **dict(stripe_env, STRIPE_SECRET_KEY=LIVE_KEY, DISPATCH_PAYMENT_LINK=link["url"])
    )
    with pytest.raises(DonationError, match="live-mode key but this database holds test-mode"):
        sync_donations(db, live)
    assert stripe_stub.requests == []


def test_payment_link_url_unknown_in_this_mode_is_a_config_error(db, make_settings, stripe_env):
    settings = make_settings(**stripe_env, DISPATCH_PAYMENT_LINK="https://donate.stripe.test/x")
    with pytest.raises(ConfigError, match="DISPATCH_PAYMENT_LINK"):
        sync_donations(db, settings)


def test_restricted_key_is_sent_as_bearer_and_never_logged(
    db, make_settings, stripe_env, stripe_stub, link, ledger, run_cli, caplog, capsys
):
    key = "rk_test_restrictedKEY987654321"
    token = ledger("2026-W47", "ana@example.test")
    stripe_stub.add_session(payment_link=link["id"], token=token, email="payer.secret@example.test")
    env = dict(stripe_env, STRIPE_SECRET_KEY=key, DISPATCH_PAYMENT_LINK=link["url"])
    caplog.set_level(logging.DEBUG)

    result = run_cli("--debug", "donations", "sync", "--json", env=env)

    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["new"] == 1 and counts["unattributed"] == 0
    assert stripe_stub.requests[0].headers["Authorization"] == f"Bearer {key}"
    seen = result.output + caplog.text + capsys.readouterr().err
    for secret in (key, "payer.secret@example.test", "ana@example.test", token):
        assert secret not in seen
    assert TEST_KEY not in seen


def test_forgetting_a_subscriber_erases_their_address_from_their_gifts(
    db, settings, stripe_stub, link, ledger, run_cli
):
    token = ledger("2026-W47", "ana@example.org")
    stripe_stub.add_session(
        payment_link=link["id"], amount=2500, token=token, email="Ana@Example.org"
    )
    sync_donations(db, settings)
    result = run_cli("subscribers", "forget", "ana@example.org")
    assert result.exit_code == 0, result.output
    [row] = store.list_donations(db)
    assert row.payer_email is None and row.subscriber_id is None
    assert row.amount_minor == 2500 and row.issue_id == "2026-W47"


def test_the_same_session_by_webhook_then_sync_counts_once(
    db, settings, stripe_stub, link, ledger, run_cli
):
    from dispatch.jobs.donations import record_checkout_session

    sync_donations(db, settings)  # adopts the link
    token = ledger("2026-W47", "ana@example.test")
    session = stripe_stub.add_session(payment_link=link["id"], amount=1500, token=token)
    first = record_checkout_session(db, session, "webhook")
    assert (first.outcome, first.attributed) == ("new", True)

    result = sync_donations(db, settings)

    assert result.counts["new"] == 0 and result.counts["unchanged"] == 1
    [row] = store.list_donations(db)
    assert row.source == "webhook" and row.amount_minor == 1500
    listed = run_cli(
        "donations",
        "list",
        "--json",
        env={"STRIPE_SECRET_KEY": TEST_KEY, "STRIPE_API_BASE": stripe_stub.url},
    )
    [item] = json.loads(listed.stdout)
    assert item["issue"] == "2026-W47" and item["net_minor"] == 1500
    assert token not in listed.output and "ana@example.test" not in listed.output


def test_a_session_of_another_payment_link_is_ignored(db, settings, stripe_stub, link):
    from dispatch.jobs.donations import record_checkout_session

    sync_donations(db, settings)
    shop = stripe_stub.add_payment_link()
    sale = stripe_stub.add_session(payment_link=shop["id"], amount=4200)
    assert record_checkout_session(db, sale, "webhook").outcome == "ignored"
    assert store.list_donations(db) == []
