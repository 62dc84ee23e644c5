"""POST /stripe/webhook: deliveries signed with the stripe library's own helper, as Stripe
signs them (t=<unix time>,v1=HMAC-SHA256 of "<t>.<raw body>"); tampered, unsigned, stale and
repeated deliveries."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from dispatch.store import donations
from tests.plugins.web import WEBHOOK_SECRET, seed_sent_issue, web_env

LINK_ID = "plink_test_dispatch"


@pytest.fixture
def sent(db, make_settings):
    donations.save_payment_link(
        db,
        link_id=LINK_ID,
        url="https://buy.stripe.com/test_dispatch123",
        kind="custom",
        livemode=False,
    )
    return seed_sent_issue(db, make_settings(**web_env()), [("ana@example.org", "Ana")])


@pytest.fixture
def client(make_web_app):
    return make_web_app().test_client()


def session_object(
    token: str, *, sid: str = "cs_test_a1", payment_status: str = "paid", amount: int = 2500
) -> dict:
    return {
        "id": sid,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": payment_status,
        "amount_total": amount,
        "currency": "eur",
        "client_reference_id": token,
        "payment_link": LINK_ID,
        "payment_intent": "pi_test_1",
        "mode": "payment",
        "livemode": False,
        "created": int(time.time()) - 60,
        "customer_details": {"email": "ana@example.org"},
    }


def event(kind: str, obj: dict, event_id: str = "evt_test_1") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": kind,
            "livemode": False,
            "created": int(time.time()),
            "api_version": "2024-06-20",
            "data": {"object": obj},
        }
    ).encode()


def signed(payload: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict:
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), secret, timestamp=at if at is not None else int(time.time())
    )
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def post(client, payload: bytes, headers: dict | None = None):
    return client.post("/stripe/webhook", data=payload, headers=headers or {})


def test_signed_checkout_completed_records_an_attributed_donation(client, db, sent):
    token = sent.readers["ana@example.org"].token
    payload = event("checkout.session.completed", session_object(token))
    response = post(client, payload, signed(payload))
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "outcome": "new"}
    [row] = donations.list_donations(db)
    assert (row.session_id, row.status, row.amount_minor, row.currency) == (
        "cs_test_a1",
        "paid",
        2500,
        "eur",
    )
    assert row.issue_id == sent.id and row.source == "webhook"
    assert row.subscriber_id is not None


def test_repeated_delivery_answers_200_and_counts_once(client, db, sent):
    payload = event(
        "checkout.session.completed", session_object(sent.readers["ana@example.org"].token)
    )
    first = post(client, payload, signed(payload))
    again = post(client, payload, signed(payload))  # Stripe re-signs each retry
    assert first.status_code == again.status_code == 200
    assert again.get_json()["outcome"] == "duplicate"
    assert len(donations.list_donations(db)) == 1
    # Another event about the same session (a second endpoint, say) is still one donation.
    other = event(
        "checkout.session.completed",
        session_object(sent.readers["ana@example.org"].token),
        event_id="evt_test_2",
    )
    assert post(client, other, signed(other)).status_code == 200
    assert len(donations.list_donations(db)) == 1


def test_unsigned_delivery_is_refused(client, db, sent):
    payload = event(
        "checkout.session.completed", session_object(sent.readers["ana@example.org"].token)
    )
    assert post(client, payload, {"Content-Type": "application/json"}).status_code == 400
    assert post(client, payload, {"Stripe-Signature": ""}).status_code == 400
    assert post(client, payload, {"Stripe-Signature": "garbage"}).status_code == 400
    assert donations.list_donations(db) == []


def test_tampered_delivery_is_refused(client, db, sent):
    token = sent.readers["ana@example.org"].token
    original = event("checkout.session.completed", session_object(token, amount=500))
    tampered = original.replace(b'"amount_total": 500', b'"amount_total": 500000')
    assert tampered != original
    assert post(client, tampered, signed(original)).status_code == 400
    assert post(client, original, signed(original, secret="whsec_someone_else")).status_code == 400
    assert donations.list_donations(db) == []


def test_stale_delivery_is_refused(client, db, sent):
    payload = event(
        "checkout.session.completed", session_object(sent.readers["ana@example.org"].token)
    )
    ten_minutes_ago = int(time.time()) - 600
    assert post(client, payload, signed(payload, at=ten_minutes_ago)).status_code == 400
    assert donations.list_donations(db) == []


def test_not_json_is_refused(client, sent):
    payload = b"\xff\xfe not json"
    header = stripe.WebhookSignature.generate_signature_header("x", WEBHOOK_SECRET)
    assert post(client, payload, {"Stripe-Signature": header}).status_code == 400


def test_without_signing_secret_the_webhook_is_unavailable(make_web_app, db, sent, caplog):
    client = make_web_app(STRIPE_WEBHOOK_SECRET="").test_client()
    payload = event(
        "checkout.session.completed", session_object(sent.readers["ana@example.org"].token)
    )
    response = post(client, payload, signed(payload))
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in caplog.text
    assert WEBHOOK_SECRET not in caplog.text
    assert donations.list_donations(db) == []


def test_other_event_types_are_acknowledged_and_ignored(client, db, sent):
    payload = event("customer.created", {"id": "cus_1", "object": "customer"})
    response = post(client, payload, signed(payload))
    assert response.status_code == 200 and response.get_json()["outcome"] == "ignored"
    assert donations.list_donations(db) == []


def test_delayed_payment_goes_from_pending_to_paid(client, db, sent):
    token = sent.readers["ana@example.org"].token
    pending = event(
        "checkout.session.completed",
        session_object(token, payment_status="unpaid"),
        event_id="evt_1",
    )
    assert post(client, pending, signed(pending)).status_code == 200
    assert donations.list_donations(db)[0].status == "pending"
    paid = event(
        "checkout.session.async_payment_succeeded", session_object(token), event_id="evt_2"
    )
    assert post(client, paid, signed(paid)).status_code == 200
    assert donations.list_donations(db)[0].status == "paid"


def test_delayed_payment_failure_is_recorded(client, db, sent):
    token = sent.readers["ana@example.org"].token
    pending = event(
        "checkout.session.completed",
        session_object(token, payment_status="unpaid"),
        event_id="evt_1",
    )
    post(client, pending, signed(pending))
    failed = event(
        "checkout.session.async_payment_failed",
        session_object(token, payment_status="unpaid"),
        event_id="evt_2",
    )
    assert post(client, failed, signed(failed)).status_code == 200
    assert donations.list_donations(db)[0].status == "failed"


def test_refund_events_net_the_donation(client, db, sent):
    token = sent.readers["ana@example.org"].token
    paid = event("checkout.session.completed", session_object(token), event_id="evt_1")
    post(client, paid, signed(paid))
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 1000,
        "currency": "eur",
        "payment_intent": "pi_test_1",
        "charge": "ch_1",
        "status": "succeeded",
        "created": int(time.time()),
    }
    created = event("refund.created", refund, event_id="evt_2")
    assert post(client, created, signed(created)).status_code == 200
    assert donations.list_donations(db)[0].refunded_minor == 1000
    # charge.refunded carrying its refunds (older API versions) counts the same refund once.
    charge = {"id": "ch_1", "object": "charge", "refunds": {"object": "list", "data": [refund]}}
    again = event("charge.refunded", charge, event_id="evt_3")
    assert post(client, again, signed(again)).status_code == 200
    assert donations.list_donations(db)[0].refunded_minor == 1000


def test_event_of_the_other_stripe_mode_is_refused_and_not_marked_handled(client, db, sent):
    token = sent.readers["ana@example.org"].token
    live = session_object(token) | {"livemode": True}
    payload = json.loads(event("checkout.session.completed", live))
    payload["livemode"] = True
    body = json.dumps(payload).encode()
    assert post(client, body, signed(body)).status_code == 400
    assert donations.list_donations(db) == []
    assert db.execute("SELECT COUNT(*) FROM stripe_events").fetchone()[0] == 0


def test_a_gift_with_our_token_counts_before_any_sync_has_learnt_the_link(
    make_web_app, db, make_settings
):
    # The link comes only from DISPATCH_PAYMENT_LINK (a URL); Stripe's event names its id.
    issue = seed_sent_issue(db, make_settings(**web_env()), [("bo@example.org", "Bo")])
    client = make_web_app().test_client()
    token = issue.readers["bo@example.org"].token
    payload = event("checkout.session.completed", session_object(token, sid="cs_test_b1"))
    response = post(client, payload, signed(payload))
    assert response.get_json() == {"received": True, "outcome": "new"}
    [row] = donations.list_donations(db)
    assert row.issue_id == issue.id


def test_an_ignored_session_is_not_marked_handled_so_a_retry_can_count(client, db, sent):
    stranger = session_object("not-one-of-ours", sid="cs_test_c1")
    stranger["payment_link"] = "plink_someone_else"
    payload = event("checkout.session.completed", stranger, event_id="evt_test_9")
    assert post(client, payload, signed(payload)).get_json()["outcome"] == "ignored"
    assert not donations.stripe_event_seen(db, "evt_test_9")
