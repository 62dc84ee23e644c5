"""The Stripe stand-in's recurring side, driven by the real stripe library: what Dispatch's
recurring-gift code relies on it to do as Stripe does."""

from __future__ import annotations

import pytest
import stripe

from tests.plugins.stripe import LIVE_KEY, TEST_KEY
from tests.stripe_stub.billing import RETRIES, add_interval
from tests.stripe_stub.events import signed

SECRET = "whsec_stubTestSecret0123456789"


@pytest.fixture
def client(stripe_stub):
    return stripe.StripeClient(
        TEST_KEY, base_addresses={"api": stripe_stub.url}, max_network_retries=0
    )


def _monthly_session(client, token="tok_A1", amount=1000):
    return client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "client_reference_id": token,
            "customer_email": "ana@example.test",
            "success_url": "https://news.test/thanks",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": amount,
                        "product_data": {"name": "Monthly gift"},
                        "recurring": {"interval": "month"},
                    },
                }
            ],
            "subscription_data": {"metadata": {"dispatch_token": token}},
        }
    )


def test_checkout_session_created_over_the_api_then_paid_starts_a_subscription(client, stripe_stub):
    session = _monthly_session(client)
    assert session.status == "open" and session.url.startswith("https://checkout.stripe.com/")
    assert session.client_reference_id == "tok_A1" and session.amount_total == 1000

    stripe_stub.complete_session(session.id)

    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    sub = client.v1.subscriptions.retrieve(done.subscription)
    assert sub.status == "active" and sub.metadata["dispatch_token"] == "tok_A1"
    assert sub["items"].data[0].price.recurring.interval == "month"
    invoice = client.v1.invoices.retrieve(done.invoice, params={"expand": ["payments"]})
    assert invoice.billing_reason == "subscription_create" and invoice.status == "paid"
    assert invoice.parent.subscription_details.subscription == sub.id
    intent = invoice.payments.data[0].payment.payment_intent
    assert client.v1.payment_intents.retrieve(intent).amount == 1000
    # Without expand, an invoice carries no payments (an includable field).
    assert "payments" not in client.v1.invoices.retrieve(done.invoice)
    found = client.v1.checkout.sessions.list(params={"subscription": sub.id})
    assert [s.id for s in found.data] == [session.id]


def test_wrong_checkout_requests_are_refused_as_stripe_refuses_them(client):
    def gift(**price: object) -> list[dict]:
        """One line item of a 5 EUR gift; ``price`` adds to its price_data."""
        return [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 500,
                    "product_data": {"name": "Gift"},
                    **price,
                },
            }
        ]

    with pytest.raises(stripe.InvalidRequestError, match="recurring price"):
        client.v1.checkout.sessions.create(params={"mode": "subscription", "line_items": gift()})
    with pytest.raises(stripe.InvalidRequestError, match="payment_intent_data"):
        client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "payment_intent_data": {"metadata": {"a": "b"}},
                "line_items": gift(recurring={"interval": "month"}),
            }
        )


def test_the_clock_bills_a_renewal_each_month_and_listing_pages_with_created_filters(
    client, stripe_stub
):
    session = stripe_stub.start_subscription(token="tok_B", amount=700, currency="eur")
    start = stripe_stub.objects["subscription"][session["subscription"]]["start_date"]
    stripe_stub.advance(months=12)

    invoices = list(client.v1.invoices.list(params={"limit": 5}).auto_paging_iter())
    assert len(invoices) == 13  # the first payment and 12 renewals
    assert sum(i.billing_reason == "subscription_cycle" for i in invoices) == 12
    assert all(i.status == "paid" and i.amount_paid == 700 for i in invoices)
    assert [i.created for i in invoices] == sorted((i.created for i in invoices), reverse=True)
    later = client.v1.invoices.list(params={"created": {"gte": add_interval(start, "month", 6)}})
    assert len(later.data) == 7
    sub = client.v1.subscriptions.retrieve(session["subscription"])
    assert sub["items"].data[0].current_period_end > stripe_stub.clock - 31 * 86_400


def test_a_failing_card_makes_the_subscription_past_due_until_a_retry_succeeds(client, stripe_stub):
    session = stripe_stub.start_subscription(token="tok_C")
    stripe_stub.set_card(session["customer"], fails=True)
    stripe_stub.advance(months=1, days=1)
    sub = client.v1.subscriptions.retrieve(session["subscription"])
    assert sub.status == "past_due"
    stripe_stub.set_card(session["customer"], fails=False)
    stripe_stub.advance(days=3)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    kinds = [e["type"] for e in stripe_stub.events("invoice.payment_failed", "invoice.paid")]
    assert kinds == ["invoice.paid", "invoice.payment_failed", "invoice.paid"]


def test_a_card_that_keeps_failing_ends_the_subscription_with_reason_payment_failed(
    client, stripe_stub
):
    session = stripe_stub.start_subscription(token="tok_D")
    stripe_stub.set_card(session["customer"], fails=True)
    stripe_stub.advance(months=2)
    sub = client.v1.subscriptions.retrieve(session["subscription"])
    assert sub.status == "canceled"
    assert sub.cancellation_details.reason == "payment_failed"
    assert len(stripe_stub.events("invoice.payment_failed")) == RETRIES
    # A cancelled subscription is listed only when asked for.
    assert client.v1.subscriptions.list().data == []
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "all"}).data] == [sub.id]


def test_cancel_at_period_end_bills_nothing_more(client, stripe_stub):
    session = stripe_stub.start_subscription(token="tok_E")
    stripe_stub.advance(months=1)
    stripe_stub.cancel_subscription(session["subscription"], at_period_end=True)
    stripe_stub.advance(months=3)
    sub = client.v1.subscriptions.retrieve(session["subscription"])
    assert sub.status == "canceled" and sub.cancellation_details.reason == "cancellation_requested"
    assert len(client.v1.invoices.list().data) == 2


def test_a_lost_dispute_withdraws_amount_and_fee_in_the_settlement_currency(client, stripe_stub):
    session = stripe_stub.start_subscription(token="tok_F", amount=2000, currency="eur")
    invoice = client.v1.invoices.retrieve(session["invoice"], params={"expand": ["payments"]})
    intent = invoice.payments.data[0].payment.payment_intent
    dispute = stripe_stub.open_dispute(intent, settlement=("usd", 1.1))
    stripe_stub.close_dispute(dispute["id"], won=False)
    read = client.v1.disputes.retrieve(dispute["id"])
    assert read.status == "lost" and read.currency == "eur" and read.payment_intent == intent
    [txn] = read.balance_transactions
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (-2200, 1500, -3700, "usd")
    won = stripe_stub.open_dispute(intent, amount=500)
    stripe_stub.close_dispute(won["id"], won=True)
    assert (
        sum(t["net"] for t in client.v1.disputes.retrieve(won["id"]).balance_transactions) == -1500
    )


def test_portal_session_needs_a_customer_of_the_keys_mode(client, stripe_stub):
    session = stripe_stub.start_subscription(token="tok_G")
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": session["customer"], "return_url": "https://news.test/"}
    )
    assert portal.url.startswith("https://billing.stripe.com/")
    live = stripe.StripeClient(
        LIVE_KEY, base_addresses={"api": stripe_stub.url}, max_network_retries=0
    )
    with pytest.raises(stripe.InvalidRequestError, match="similar object exists in test mode"):
        live.v1.billing_portal.sessions.create(params={"customer": session["customer"]})


def test_events_are_listed_and_signed_as_stripe_signs_them(client, stripe_stub):
    stripe_stub.start_subscription(token="tok_H")
    stripe_stub.advance(months=1)
    listed = client.v1.events.list(params={"types": ["invoice.paid"]}).data
    assert len(listed) == 2 and listed[0].created >= listed[1].created
    body, headers = signed(stripe_stub.events("invoice.paid")[-1], SECRET)
    event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], SECRET)
    assert event.data.object.billing_reason == "subscription_cycle"
