"""Stripe's recurring objects read as typed facts (dispatch.donations.recurring), on the current
API shape and the older one, and through a signed webhook delivery."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from dispatch.donations import verify_event
from dispatch.donations.recurring import (
    DisputeFact,
    InvoiceFact,
    InvoicePaymentFact,
    SubscriptionOriginFact,
    dispute_from,
    invoice_from,
    subscription_from,
)
from dispatch.errors import DonationError

SECRET = "whsec_factsTestSecret0123456789"


def _invoice(**over):
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "livemode": False,
        "status": "paid",
        "billing_reason": "subscription_cycle",
        "amount_paid": 700,
        "amount_due": 700,
        "currency": "EUR",
        "attempt_count": 1,
        "created": 100,
        "status_transitions": {"paid_at": 120},
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": "sub_1",
                "metadata": {"dispatch_token": "tok_ABC"},
            },
        },
    }
    invoice.update(over)
    return invoice


def test_an_invoice_of_the_current_api_names_its_subscription_and_token():
    fact = invoice_from(_invoice())
    assert (fact.subscription_id, fact.amount_minor, fact.currency, fact.token) == (
        "sub_1",
        700,
        "eur",
        "tok_ABC",
    )
    assert fact.paid_at == 120 and fact.payment_intent is None


def test_older_api_versions_name_subscription_and_intent_at_the_top():
    fact = invoice_from(
        _invoice(
            parent=None,
            subscription="sub_9",
            payment_intent="pi_9",
            status="open",
            amount_due=500,
            attempt_count=2,
        )
    )
    assert (fact.subscription_id, fact.payment_intent, fact.status, fact.amount_minor) == (
        "sub_9",
        "pi_9",
        "open",
        500,
    )


def test_an_invoice_of_no_subscription_is_no_fact_and_a_bad_token_is_dropped():
    assert invoice_from(_invoice(parent={"type": "quote_details"})) is None
    bad = _invoice(
        parent={
            "subscription_details": {"subscription": "sub_1", "metadata": {"dispatch_token": "a b"}}
        }
    )
    assert invoice_from(bad).token is None
    with pytest.raises(DonationError):
        invoice_from({"id": "cs_1", "object": "checkout.session"})


def test_subscription_and_dispute_facts():
    sub = subscription_from(
        {
            "id": "sub_1",
            "object": "subscription",
            "status": "canceled",
            "customer": "cus_1",
            "currency": "usd",
            "start_date": 50,
            "canceled_at": 90,
            "ended_at": 95,
            "cancellation_details": {"reason": "payment_failed"},
            "latest_invoice": "in_3",
            "items": {
                "data": [
                    {
                        "quantity": 2,
                        "price": {
                            "unit_amount": 500,
                            "currency": "usd",
                            "recurring": {"interval": "year"},
                        },
                    }
                ]
            },
        }
    )
    assert (sub.amount_minor, sub.interval, sub.cancel_reason, sub.latest_invoice) == (
        1000,
        "year",
        "payment_failed",
        "in_3",
    )
    dispute = dispute_from(
        {
            "id": "dp_1",
            "object": "dispute",
            "amount": 700,
            "currency": "eur",
            "status": "lost",
            "payment_intent": "pi_1",
            "charge": "ch_1",
            "created": 5,
            "balance_transactions": [
                {
                    "id": "txn_1",
                    "amount": -770,
                    "fee": 1500,
                    "net": -2270,
                    "currency": "USD",
                    "created": 6,
                }
            ],
        }
    )
    assert dispute.transactions == (("txn_1", -770, 1500, -2270, "usd", 6),)


def _delivery(kind, obj):
    payload = json.dumps(
        {
            "id": f"evt_{kind}",
            "object": "event",
            "type": kind,
            "livemode": False,
            "created": int(time.time()),
            "data": {"object": obj},
        }
    ).encode()
    header = stripe.WebhookSignature.generate_signature_header(payload.decode(), SECRET)
    return verify_event(payload, header, SECRET)


def test_signed_deliveries_carry_the_recurring_facts():
    assert isinstance(_delivery("invoice.paid", _invoice()).facts[0], InvoiceFact)
    [paid] = _delivery(
        "invoice_payment.paid",
        {
            "id": "inpay_1",
            "object": "invoice_payment",
            "invoice": "in_1",
            "payment": {"type": "payment_intent", "payment_intent": "pi_1"},
        },
    ).facts
    assert paid == InvoicePaymentFact("in_1", "pi_1")
    session = {
        "id": "cs_1",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 700,
        "currency": "eur",
        "mode": "subscription",
        "subscription": "sub_1",
        "client_reference_id": "tok_ABC",
        "payment_link": "plink_1",
        "created": 1,
    }
    gift, origin = _delivery("checkout.session.completed", session).facts
    assert origin == SubscriptionOriginFact("sub_1", "cs_1", "tok_ABC", "plink_1")
    assert gift.checkout_mode == "subscription"
    assert isinstance(
        _delivery(
            "charge.dispute.closed",
            {
                "id": "dp_1",
                "object": "dispute",
                "amount": 1,
                "currency": "eur",
                "status": "won",
                "balance_transactions": [],
            },
        ).facts[0],
        DisputeFact,
    )
