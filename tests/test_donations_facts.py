"""Stripe objects and events read into typed facts (dispatch.donations.facts), and the shape
that keeps Stripe in one room: verified deliveries come back as frozen dataclasses."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import stripe

from dispatch.donations import Event, Gift, Refund, WebhookError, handled_event_types, verify_event

FIXTURES = Path(__file__).parent / "fixtures" / "stripe"
SECRET = "whsec_test_facts"


def _signed(event: dict) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    stamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{stamp}.{payload.decode()}", SECRET)
    return payload, f"t={stamp},v1={signature}"


def _event(kind: str, obj: dict, livemode: bool = False) -> dict:
    return {
        "id": "evt_facts_1",
        "object": "event",
        "type": kind,
        "livemode": livemode,
        "data": {"object": obj},
    }


def _session(**changes) -> dict:
    session = json.loads((FIXTURES / "checkout_session.json").read_text())
    session.update(
        {
            "status": "complete",
            "payment_status": "paid",
            "amount_total": 1500,
            "client_reference_id": "tok_abc",
            **changes,
        }
    )
    return session


def test_a_completed_session_event_is_one_frozen_gift_fact() -> None:
    event = verify_event(*_signed(_event("checkout.session.completed", _session())), SECRET)
    assert isinstance(event, Event) and event.handled and event.type == "checkout.session.completed"
    (gift,) = event.facts
    assert isinstance(gift, Gift)
    assert (gift.status, gift.amount_minor, gift.token) == ("paid", 1500, "tok_abc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        gift.status = "failed"  # type: ignore[misc]


def test_a_failed_delayed_payment_and_an_unfinished_session_read_as_such() -> None:
    failed = verify_event(
        *_signed(
            _event("checkout.session.async_payment_failed", _session(payment_status="unpaid"))
        ),
        SECRET,
    )
    assert failed.facts[0].status == "failed"
    still_open = verify_event(
        *_signed(_event("checkout.session.completed", _session(status="open"))), SECRET
    )
    assert still_open.handled and still_open.facts == ()


def test_refund_events_carry_the_events_livemode_and_charge_refunded_its_refunds() -> None:
    refund = json.loads((FIXTURES / "refund.json").read_text())
    event = verify_event(*_signed(_event("refund.updated", refund, livemode=True)), SECRET)
    assert isinstance(event.facts[0], Refund) and event.facts[0].livemode is True
    charge = {"id": "ch_1", "object": "charge", "refunds": {"data": [refund, refund]}}
    assert len(verify_event(*_signed(_event("charge.refunded", charge)), SECRET).facts) == 2


def test_an_event_type_dispatch_does_not_read_is_answered_not_parsed() -> None:
    event = verify_event(*_signed(_event("customer.created", {"id": "cus_1"})), SECRET)
    assert not event.handled and event.facts == ()
    assert {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "refund.created",
        "refund.updated",
        "charge.refunded",
    } <= handled_event_types()


def test_a_signed_but_malformed_object_is_refused_without_its_content() -> None:
    bad = _session(amount_total="not a number", customer_details={"email": "ana@example.org"})
    with pytest.raises(WebhookError) as refused:
        verify_event(*_signed(_event("checkout.session.completed", bad)), SECRET)
    assert "evt_facts_1" in str(refused.value) and "ana@example.org" not in str(refused.value)
