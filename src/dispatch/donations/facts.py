"""Stripe objects and events turned into typed facts: what happened to a gift, in Dispatch's
words (like anymail's AnymailTrackingEvent). The sync and the webhook both hand these frozen
dataclasses to the use cases, never Stripe's dicts; nothing here imports stripe or the store.

Adding an event type (the recurring-gift work: invoices, subscriptions, disputes) is one
dataclass for the new fact, added to ``Fact``, and one parser registered with
``@parses("event.type")``; the use case (jobs.donations.record_fact) gets one branch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dispatch.errors import DonationError
from dispatch.models import DonationStatus

#: client_reference_id values Dispatch writes; Stripe silently drops anything else.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@dataclass(frozen=True)
class Gift:
    """A complete Checkout Session, i.e. one gift. ``status``: 'paid'; 'failed' when a delayed
    payment failed; 'pending' while a delayed method (a bank debit) is still on its way."""

    session_id: str
    livemode: bool
    payment_link: str | None
    payment_intent: str | None
    checkout_mode: str  # 'payment' (one-off) | 'subscription' (monthly)
    status: DonationStatus
    amount_minor: int
    currency: str
    token: str | None  # client_reference_id: the delivery token of a personal link
    payer_email: str | None
    created: int  # Unix seconds


@dataclass(frozen=True)
class Refund:
    """A refund of a gift's PaymentIntent (netted against the gift by the store's view)."""

    refund_id: str
    payment_intent: str | None
    charge: str | None
    amount_minor: int
    currency: str
    status: str  # Stripe's: pending | requires_action | succeeded | failed | canceled
    livemode: bool
    created: int


#: Every kind of fact; a new one is added here too.
Fact = Gift | Refund


@dataclass(frozen=True)
class Event:
    """A verified webhook event: its id (for exactly-once), type and the facts it carries.
    ``handled`` is False for an event type Dispatch does not read (answered, not recorded)."""

    id: str
    type: str
    livemode: bool
    facts: tuple[Fact, ...]
    handled: bool = True


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return value.get("id")
    return value or None


def gift_from_session(session: Mapping[str, Any], *, payment_failed: bool = False) -> Gift | None:
    """The gift of a Checkout Session (listed, retrieved or from an event), or None when it is
    not a gift at all (still open, expired, or with no amount).

    'failed' comes from the webhook's async_payment_failed or from an expanded PaymentIntent
    back at requires_payment_method or canceled."""
    if session.get("object") not in (None, "checkout.session") or not session.get("id"):
        raise DonationError(
            "Expected a Stripe Checkout Session", "This is a bug in Dispatch or in the caller."
        )
    if session.get("status") != "complete" or session.get("amount_total") is None:
        return None
    payment_status = session.get("payment_status")
    intent = session.get("payment_intent")
    status: DonationStatus
    if payment_status in ("paid", "no_payment_required"):
        status = DonationStatus.PAID
    elif payment_failed or (
        isinstance(intent, Mapping)
        and intent.get("status") in ("requires_payment_method", "canceled")
    ):
        status = DonationStatus.FAILED
    else:
        status = DonationStatus.PENDING
    token = session.get("client_reference_id") or None
    if token is not None and not TOKEN_RE.match(token):
        token = None
    details = session.get("customer_details") or {}
    return Gift(
        session_id=session["id"],
        livemode=bool(session.get("livemode")),
        payment_link=_id_of(session.get("payment_link")),
        payment_intent=_id_of(intent),
        checkout_mode=session.get("mode") or "payment",
        status=status,
        amount_minor=int(session["amount_total"]),
        currency=str(session.get("currency") or "").lower(),
        token=token,
        payer_email=details.get("email") or session.get("customer_email") or None,
        created=int(session.get("created") or 0),
    )


def refund_from(refund: Mapping[str, Any], *, livemode: bool) -> Refund:
    """A Refund object as a fact. Refunds carry no livemode flag: pass the key's mode (sync)
    or the event's ``livemode`` (webhook)."""
    if refund.get("object") not in (None, "refund") or not refund.get("id"):
        raise DonationError("Expected a Stripe Refund", "This is a bug in Dispatch or the caller.")
    return Refund(
        refund_id=refund["id"],
        payment_intent=_id_of(refund.get("payment_intent")),
        charge=_id_of(refund.get("charge")),
        amount_minor=int(refund.get("amount") or 0),
        currency=str(refund.get("currency") or "").lower(),
        status=refund.get("status") or "pending",
        livemode=bool(livemode),
        created=int(refund.get("created") or 0),
    )


# -- events: one parser per event type -------------------------------------------------------

Parser = Callable[[Mapping[str, Any], bool], tuple[Fact, ...]]
_PARSERS: dict[str, Parser] = {}


def parses(*event_types: str) -> Callable[[Parser], Parser]:
    """Register a parser of ``data.object`` (and the event's livemode) for these event types."""

    def register(parser: Parser) -> Parser:
        for event_type in event_types:
            _PARSERS[event_type] = parser
        return parser

    return register


def handled_event_types() -> frozenset[str]:
    """The event types Dispatch reads (the endpoint's subscriptions in the Dashboard)."""
    return frozenset(_PARSERS)


@parses("checkout.session.completed", "checkout.session.async_payment_succeeded")
def _session(obj: Mapping[str, Any], livemode: bool) -> tuple[Fact, ...]:
    gift = gift_from_session(obj)
    return (gift,) if gift is not None else ()


@parses("checkout.session.async_payment_failed")
def _session_failed(obj: Mapping[str, Any], livemode: bool) -> tuple[Fact, ...]:
    gift = gift_from_session(obj, payment_failed=True)
    return (gift,) if gift is not None else ()


@parses("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
def _refund(obj: Mapping[str, Any], livemode: bool) -> tuple[Fact, ...]:
    return (refund_from(obj, livemode=livemode),)


@parses("charge.refunded")
def _charge_refunded(obj: Mapping[str, Any], livemode: bool) -> tuple[Fact, ...]:
    # The charge carries its refunds only on older API versions; otherwise the next
    # `donations sync` (or the refund.* events) brings them.
    refunds = (obj.get("refunds") or {}).get("data") or []
    return tuple(refund_from(r, livemode=livemode) for r in refunds)


def event_from(event_id: str, event_type: str, obj: Mapping[str, Any], livemode: bool) -> Event:
    """The facts of one event's ``data.object``. Raises DonationError for an object of the
    wrong kind, and KeyError/TypeError/ValueError/AttributeError for a malformed one."""
    parser = _PARSERS.get(event_type)
    if parser is None:
        return Event(event_id, event_type, livemode, (), handled=False)
    return Event(event_id, event_type, livemode, parser(obj, livemode))
