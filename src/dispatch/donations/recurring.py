"""Recurring gifts as typed facts (issue 11): subscriptions, their invoices (first payment,
renewals, failed charges), the PaymentIntent that paid an invoice, and disputes, read from
Stripe's objects as listed by the sync or carried by webhook events.

Shapes are Stripe's current API: an invoice names its subscription under
``parent.subscription_details`` (older versions: top-level ``subscription``) and its
PaymentIntents only in the includable ``payments`` list; a subscription's price and period are
on its first item. Nothing here imports stripe or the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dispatch.donations.facts import _PARSERS, TOKEN_RE, _id_of, parses
from dispatch.errors import DonationError

#: Metadata key under which the donation page puts the delivery token on a subscription
#: (``subscription_data.metadata``) and a one-time PaymentIntent (``payment_intent_data``).
TOKEN_KEY = "dispatch_token"


@dataclass(frozen=True)
class SubscriptionFact:
    """A subscription as Stripe reports it (status never guessed from the clock)."""

    subscription_id: str
    livemode: bool
    customer: str | None
    status: str
    amount_minor: int  # per interval
    currency: str
    interval: str
    started: int
    canceled: int | None
    ended: int | None
    cancel_reason: str | None
    cancel_at_period_end: bool
    token: str | None  # from metadata (the donation page sets it)
    latest_invoice: str | None = None


@dataclass(frozen=True)
class InvoiceFact:
    """One invoice of a subscription: the first payment, a renewal, or a failed charge."""

    invoice_id: str
    subscription_id: str
    livemode: bool
    billing_reason: str
    status: str  # draft | open | paid | void | uncollectible
    amount_minor: int
    currency: str
    payment_intent: str | None
    attempt_count: int
    created: int
    paid_at: int | None
    token: str | None  # the subscription's metadata snapshot on the invoice


@dataclass(frozen=True)
class InvoicePaymentFact:
    """Which PaymentIntent paid an invoice (so refunds and disputes find the renewal)."""

    invoice_id: str
    payment_intent: str


@dataclass(frozen=True)
class SubscriptionOriginFact:
    """A subscription-mode Checkout Session that started a subscription, with its token."""

    subscription_id: str
    session_id: str
    token: str | None
    payment_link: str | None


@dataclass(frozen=True)
class DisputeFact:
    dispute_id: str
    livemode: bool
    payment_intent: str | None
    charge: str | None
    amount_minor: int
    currency: str
    status: str
    reason: str | None
    created: int
    transactions: tuple[tuple[str, int, int, int, str, int], ...]  # id, amount, fee, net, cur, t


RecurringFact = (
    SubscriptionFact | InvoiceFact | InvoicePaymentFact | SubscriptionOriginFact | DisputeFact
)


def _token(metadata: Any) -> str | None:
    token = (metadata or {}).get(TOKEN_KEY) if isinstance(metadata, Mapping) else None
    return token if isinstance(token, str) and TOKEN_RE.match(token) else None


def _expect(obj: Mapping[str, Any], kind: str) -> None:
    if obj.get("object") not in (None, kind) or not obj.get("id"):
        raise DonationError(f"Expected a Stripe {kind}", "This is a bug in Dispatch or the caller.")


def subscription_from(sub: Mapping[str, Any]) -> SubscriptionFact:
    _expect(sub, "subscription")
    item = ((sub.get("items") or {}).get("data") or [{}])[0]
    price = item.get("price") or item.get("plan") or {}
    recurring = price.get("recurring") or {}
    details = sub.get("cancellation_details") or {}
    return SubscriptionFact(
        subscription_id=sub["id"],
        livemode=bool(sub.get("livemode")),
        customer=_id_of(sub.get("customer")),
        status=str(sub.get("status") or "incomplete"),
        amount_minor=int(price.get("unit_amount") or price.get("amount") or 0)
        * int(item.get("quantity") or 1),
        currency=str(sub.get("currency") or price.get("currency") or "").lower(),
        interval=str(recurring.get("interval") or price.get("interval") or "month"),
        started=int(sub.get("start_date") or sub.get("created") or 0),
        canceled=sub.get("canceled_at"),
        ended=sub.get("ended_at"),
        cancel_reason=details.get("reason"),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        token=_token(sub.get("metadata")),
        latest_invoice=_id_of(sub.get("latest_invoice")),
    )


def invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills, on current and older API versions."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id_of(details.get("subscription")) or _id_of(invoice.get("subscription"))


def _paying_intent(invoice: Mapping[str, Any]) -> str | None:
    payments = (invoice.get("payments") or {}).get("data") or []
    for payment in payments:
        if payment.get("status") == "paid":
            return _id_of((payment.get("payment") or {}).get("payment_intent"))
    return _id_of(invoice.get("payment_intent"))  # older API versions


def invoice_from(invoice: Mapping[str, Any]) -> InvoiceFact | None:
    """The facts of a subscription's invoice; None for an invoice of no subscription."""
    _expect(invoice, "invoice")
    sub_id = invoice_subscription(invoice)
    if sub_id is None:
        return None
    status = str(invoice.get("status") or "draft")
    paid = status == "paid"
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return InvoiceFact(
        invoice_id=invoice["id"],
        subscription_id=sub_id,
        livemode=bool(invoice.get("livemode")),
        billing_reason=str(invoice.get("billing_reason") or "subscription_cycle"),
        status=status,
        amount_minor=int(invoice.get("amount_paid" if paid else "amount_due") or 0),
        currency=str(invoice.get("currency") or "").lower(),
        payment_intent=_paying_intent(invoice),
        attempt_count=int(invoice.get("attempt_count") or 0),
        created=int(invoice.get("created") or 0),
        paid_at=(invoice.get("status_transitions") or {}).get("paid_at"),
        token=_token(details.get("metadata")),
    )


def dispute_from(dispute: Mapping[str, Any]) -> DisputeFact:
    _expect(dispute, "dispute")
    txns = tuple(
        (
            t["id"],
            int(t["amount"]),
            int(t.get("fee") or 0),
            int(t["net"]),
            str(t["currency"]).lower(),
            int(t.get("created") or 0),
        )
        for t in dispute.get("balance_transactions") or []
        if isinstance(t, Mapping)
    )
    return DisputeFact(
        dispute_id=dispute["id"],
        livemode=bool(dispute.get("livemode")),
        payment_intent=_id_of(dispute.get("payment_intent")),
        charge=_id_of(dispute.get("charge")),
        amount_minor=int(dispute.get("amount") or 0),
        currency=str(dispute.get("currency") or "").lower(),
        status=str(dispute.get("status") or "needs_response"),
        reason=dispute.get("reason"),
        created=int(dispute.get("created") or 0),
        transactions=txns,
    )


def origin_from_session(session: Mapping[str, Any]) -> SubscriptionOriginFact | None:
    """The subscription a complete subscription-mode session started, with its token."""
    sub_id = _id_of(session.get("subscription"))
    if session.get("mode") != "subscription" or sub_id is None or not session.get("id"):
        return None
    token = session.get("client_reference_id") or None
    return SubscriptionOriginFact(
        sub_id,
        session["id"],
        token if token and TOKEN_RE.match(token) else None,
        _id_of(session.get("payment_link")),
    )


# -- event parsers ---------------------------------------------------------------------------


@parses(
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
)
def _subscription(obj: Mapping[str, Any], livemode: bool) -> tuple[Any, ...]:
    return (subscription_from(obj),)


@parses(
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.finalized",
    "invoice.voided",
    "invoice.marked_uncollectible",
)
def _invoice(obj: Mapping[str, Any], livemode: bool) -> tuple[Any, ...]:
    fact = invoice_from(obj)
    return (fact,) if fact is not None else ()


@parses("invoice_payment.paid")
def _invoice_payment(obj: Mapping[str, Any], livemode: bool) -> tuple[Any, ...]:
    intent = _id_of((obj.get("payment") or {}).get("payment_intent"))
    invoice = _id_of(obj.get("invoice"))
    return (InvoicePaymentFact(invoice, intent),) if invoice and intent else ()


@parses(
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)
def _dispute(obj: Mapping[str, Any], livemode: bool) -> tuple[Any, ...]:
    return (dispute_from(obj),)


_GIFT_PARSERS = {
    t: _PARSERS[t]
    for t in ("checkout.session.completed", "checkout.session.async_payment_succeeded")
}


@parses(*_GIFT_PARSERS)
def _session_with_origin(obj: Mapping[str, Any], livemode: bool) -> tuple[Any, ...]:
    """A completed subscription-mode session is a gift (the first payment) and the origin of
    its subscription: the token ties every renewal to the reader and issue."""
    gift = _GIFT_PARSERS["checkout.session.completed"](obj, livemode)
    origin = origin_from_session(obj) if gift else None
    return (*gift, origin) if origin is not None else gift
