"""Recurring-gift use cases (issue 11): record a subscription, invoice, invoice payment,
session origin or dispute fact (the webhook and the sync call the same function), and catch up
on everything a missed webhook would have said.

Subscriptions, invoices and disputes are recorded whatever their order of arrival (a monthly
Payment Link's subscription and first invoice come before the Checkout Session that ties them to
a reader); which ones are the outlet's is decided when reading, through
``subscription_origins``: a Dispatch token in the subscription's metadata (the donation page),
or a session of a known Payment Link or carrying a token. Reports read only those.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

from dispatch.donations.billing import BillingGateway
from dispatch.donations.gateway import StripeGateway
from dispatch.donations.recurring import (
    DisputeFact,
    InvoiceFact,
    InvoicePaymentFact,
    SubscriptionFact,
    SubscriptionOriginFact,
    dispute_from,
    invoice_from,
    origin_from_session,
    subscription_from,
)
from dispatch.store import Database
from dispatch.store import donations as donation_store
from dispatch.store import recurring as store

RECURRING_FACTS = (
    SubscriptionFact,
    InvoiceFact,
    InvoicePaymentFact,
    SubscriptionOriginFact,
    DisputeFact,
)
#: Invoices are paid up to weeks after they are created (retries): open ones are re-read by id,
#: so the listing only needs a small overlap behind the newest invoice seen.
OVERLAP_SECONDS = 3600


def _origin(db: Database, sub_id: str, token: str | None) -> None:
    """Record the origin a Dispatch token in the subscription's metadata gives."""
    if token and donation_store.is_dispatch_token(db, token):
        store.record_origin(db, sub_id, token=token)


def record_recurring(db: Database, fact: Any) -> str:
    """Record one recurring fact: 'new', 'updated', 'unchanged' or 'ignored'."""
    if isinstance(fact, SubscriptionOriginFact):
        if not (
            donation_store.is_dispatch_token(db, fact.token)
            or donation_store.is_known_link(db, fact.payment_link)
        ):
            return "ignored"
        return store.record_origin(
            db, fact.subscription_id, token=fact.token, session_id=fact.session_id
        )
    if isinstance(fact, SubscriptionFact):
        _origin(db, fact.subscription_id, fact.token)
        return store.record_subscription(db, asdict(fact))
    if isinstance(fact, InvoiceFact):
        _origin(db, fact.subscription_id, fact.token)
        return store.record_invoice(db, asdict(fact))
    if isinstance(fact, InvoicePaymentFact):
        return store.record_invoice_payment(db, fact.invoice_id, fact.payment_intent)
    if isinstance(fact, DisputeFact):
        return store.record_dispute(db, asdict(fact))
    raise TypeError(f"not a recurring fact: {type(fact).__name__}")


def sync_recurring(db: Database, gateway: StripeGateway) -> Counter[str]:
    """Pull subscriptions, invoices and disputes created since each cursor (every page), then
    re-read the ones whose state can still change. Cursors move only after a full listing."""
    gw = BillingGateway(gateway)
    counts: Counter[str] = Counter()

    def tally(kind: str, outcome: str) -> None:
        if outcome in ("new", "updated"):
            counts[f"{kind}_{outcome}"] += 1

    def listing(name: str, items: Any, record: Any) -> None:
        cursor = donation_store.get_cursor(db, name)
        newest = cursor or 0
        for obj in items(max(0, cursor - OVERLAP_SECONDS) if cursor else None):
            newest = max(newest, int(obj.get("created") or 0))
            record(obj)
        if newest:
            donation_store.advance_cursor(db, name, newest)

    def subscription(obj: dict[str, Any]) -> None:
        fact = subscription_from(obj)
        if not store.origin_session_known(db, fact.subscription_id):
            # A monthly Payment Link's subscription is tied to its reader only by the session;
            # a donation page's carries its token, but its session ties the first payment.
            for session in gw.sessions_of_subscription(fact.subscription_id):
                origin = origin_from_session(session)
                if origin is not None:
                    record_recurring(db, origin)
        tally("subscriptions", record_recurring(db, fact))

    def invoice(obj: dict[str, Any]) -> None:
        fact = invoice_from(obj)
        if fact is not None:
            tally("invoices", record_recurring(db, fact))

    def dispute(obj: dict[str, Any]) -> None:
        tally("disputes", record_recurring(db, dispute_from(obj)))

    listing("subscriptions", gw.subscriptions, subscription)
    for sub_id in store.live_subscription_ids(db):
        subscription(gw.subscription(sub_id))
    listing("invoices", gw.invoices, invoice)
    for invoice_id in store.open_invoice_ids(db):
        invoice(gw.invoice(invoice_id))
    listing("disputes", gw.disputes, dispute)
    for dispute_id in store.open_dispute_ids(db):
        dispute(gw.dispute(dispute_id))
    return counts
