"""Donation use cases: set up the Payment Link, sync Checkout Sessions and refunds, record one
fact (a gift or a refund), and handle a verified webhook delivery. The sync and the webhook
record the same typed facts (dispatch.donations.facts) through ``record_fact``.

Idempotent throughout: a donation is keyed by its Checkout Session id and a refund by its id, so
a rerun, an overlap between syncs, or a session that arrives by sync and by webhook counts once.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from dispatch.config import Settings, check_payment_link_shape
from dispatch.donations import (
    Event,
    Fact,
    Gift,
    Refund,
    StripeGateway,
    gift_from_session,
    is_outlets_gift,
    key_mode,
    refund_from,
    verify_event,
)
from dispatch.donations.billing import BillingGateway
from dispatch.errors import ConfigError, DonationError, InputError
from dispatch.jobs.recurring import RECURRING_FACTS, record_recurring, sync_recurring
from dispatch.money import to_minor_units
from dispatch.store import Database
from dispatch.store import donations as store

#: Checkout Sessions stay open up to 24 hours, so one created before the cursor may complete
#: after the last sync: every listing goes back this far behind the newest session seen.
SESSION_OVERLAP_SECONDS = 24 * 3600 + 600
#: Refunds are listed by creation time; their later status changes are re-read by id.
REFUND_OVERLAP_SECONDS = 3600


# -- recording (shared with the webhook) ---------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """What recording one Stripe object did."""

    outcome: str  # 'new' | 'updated' | 'unchanged' | 'ignored'
    donation_id: int | None = None
    attributed: bool = False
    reason: str = ""


def record_gift(db: Database, gift: Gift | None, source: str = "sync") -> Recorded:
    """Upsert the donation of one gift (None: a session that is no gift, nothing stored).

    Ignored too: gifts through Payment Links that are not the outlet's (attribution rules in
    dispatch.donations.attribution). Raises DonationError for a gift of the other Stripe mode
    than the database's.
    """
    if gift is None:
        return Recorded("ignored", reason="not a completed session")
    if not is_outlets_gift(db, gift):
        return Recorded("ignored", reason="not one of the outlet's donation Payment Links")
    outcome, donation_id = store.record_donation(db, asdict(gift), source)
    row = store.donation(db, donation_id)
    return Recorded(outcome, donation_id, bool(row is not None and row.delivery_id))


def record_refund_fact(db: Database, refund: Refund) -> str:
    """Upsert one refund: 'new', 'updated' or 'unchanged'. Refunds are netted against
    donations by PaymentIntent (the store's donation_totals view)."""
    return store.record_refund(db, asdict(refund))


def record_fact(db: Database, fact: Fact, source: str) -> str:
    """Record any fact; the outcome ('new', 'updated', 'unchanged' or 'ignored')."""
    if isinstance(fact, RECURRING_FACTS):
        return record_recurring(db, fact)
    if isinstance(fact, Gift):
        return record_gift(db, fact, source).outcome
    return record_refund_fact(db, fact)


def record_checkout_session(
    db: Database,
    session: Mapping[str, Any],
    source: str = "sync",
    *,
    payment_failed: bool = False,
) -> Recorded:
    """Upsert the donation for one Checkout Session as Stripe lists it (a dict).
    ``payment_failed=True`` for ``checkout.session.async_payment_failed``."""
    return record_gift(db, gift_from_session(session, payment_failed=payment_failed), source)


def record_refund(db: Database, refund: Mapping[str, Any], *, livemode: bool) -> str:
    """Upsert one Refund as Stripe lists it (a dict; Refunds carry no livemode: pass the
    key's mode). Returns 'new', 'updated' or 'unchanged'."""
    return record_refund_fact(db, refund_from(refund, livemode=livemode))


# -- the webhook ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    event_type: str
    outcome: str  # 'new' | 'updated' | 'unchanged' | 'ignored' | 'duplicate'


def read_webhook(settings: Settings, payload: bytes, sig_header: str | None) -> Event:
    """Verify one delivery and read its facts (no database, no network).

    Raises ConfigError without a signing secret, WebhookError for a refused delivery (also a
    signed one that is not a well-formed event)."""
    return verify_event(payload, sig_header, settings.require("stripe_webhook_secret"))


def record_event(db: Database, event: Event) -> WebhookResult:
    """Record a verified event's facts with the same upserts as `donations sync`, once per
    event id. Raises DonationError for an event the store cannot take (another Stripe mode);
    the event is then not marked handled, so Stripe's retry gets another chance once that is
    fixed. Safe to repeat (the web service retries it while another writer holds the lock)."""
    if not event.handled:
        return WebhookResult(event.id, event.type, "ignored")
    if store.stripe_event_seen(db, event.id):
        return WebhookResult(event.id, event.type, "duplicate")
    outcomes = [record_fact(db, fact, "webhook") for fact in event.facts]
    outcome = "ignored"
    for candidate in ("new", "updated", "unchanged"):
        if candidate in outcomes:
            outcome = candidate
            break
    if outcome != "ignored":  # an ignored event may count after a sync: let Stripe retry it
        store.record_stripe_event(db, event.id, event.type)
    return WebhookResult(event.id, event.type, outcome)


def handle_webhook(
    db: Database, settings: Settings, payload: bytes, sig_header: str | None
) -> WebhookResult:
    """``read_webhook`` then ``record_event``: one delivery, verified and recorded."""
    return record_event(db, read_webhook(settings, payload, sig_header))


# -- sync --------------------------------------------------------------------------------


@dataclass
class SyncResult:
    mode: str
    links: int = 0
    sessions: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "mode": self.mode,
            "payment_links": self.links,
            "sessions_seen": self.sessions,
            "new": c["new"],
            "updated": c["updated"],
            "unchanged": c["unchanged"],
            "ignored": c["ignored"],
            "unattributed": c["unattributed"],
            "pending": c["pending"],
            "refunds_new": c["refunds_new"],
            "refunds_updated": c["refunds_updated"],
            **{
                f"{kind}_{what}": c[f"{kind}_{what}"]
                for kind in ("subscriptions", "invoices", "disputes")
                for what in ("new", "updated")
            },
        }


def _check_mode(db: Database, mode: str) -> None:
    stored = store.stripe_mode(db)
    if stored is not None and stored != mode:
        raise DonationError(
            f"STRIPE_SECRET_KEY is a {mode}-mode key but this database holds {stored}-mode "
            "donations",
            f"Use a {stored}-mode key with this database, or point DISPATCH_DB at another "
            "database for the other mode (test and live data never mix).",
        )


def _adopt_setting_link(db: Database, settings: Settings, gw: StripeGateway) -> None:
    """Make sure the link named by DISPATCH_PAYMENT_LINK (its URL) is stored with its id."""
    value = settings.payment_link.strip()
    if not value:
        return
    url = check_payment_link_shape(value)
    if store.payment_link_by_url(db, url) is not None:
        return
    link = gw.find_payment_link(url)
    if link is None:
        raise ConfigError(
            f"DISPATCH_PAYMENT_LINK is not a Payment Link of this Stripe account in {gw.mode} mode",
            "Check the URL (Dashboard → Payment Links) and that STRIPE_SECRET_KEY is of the "
            "same mode (test or live) as the link, or unset it and run "
            "`dispatch donations setup`.",
        )
    store.save_payment_link(
        db,
        link_id=link["id"],
        url=str(link.get("url", "")).rstrip("/"),
        kind="adopted",
        livemode=bool(link.get("livemode")),
        currency=str(link.get("currency") or ""),
    )


def sync_donations(
    db: Database, settings: Settings, gateway: StripeGateway | None = None
) -> SyncResult:
    """Pull every complete Checkout Session of the outlet's Payment Links, re-check pending
    ones, then pull refunds. Cursors move only after a listing was read to its last page."""
    gw = gateway or StripeGateway(settings)
    _check_mode(db, gw.mode)
    _adopt_setting_link(db, settings, gw)
    links = [row["id"] for row in store.payment_links(db)]
    if not links:
        raise ConfigError(
            "No donation Payment Link is known",
            "Run `dispatch donations setup`, or set DISPATCH_PAYMENT_LINK to your link's URL.",
        )
    result = SyncResult(mode=gw.mode, links=len(links))
    for link_id in links:
        name = f"sessions:{link_id}"
        cursor = store.get_cursor(db, name)
        newest = cursor or 0
        since = max(0, cursor - SESSION_OVERLAP_SECONDS) if cursor else None
        for session in gw.checkout_sessions(link_id, since):
            result.sessions += 1
            newest = max(newest, int(session.get("created") or 0))
            _tally(result, record_checkout_session(db, session, "sync"))
        if newest:
            store.advance_cursor(db, name, newest)
    for session_id in store.pending_session_ids(db):
        _tally(
            result,
            record_checkout_session(db, gw.checkout_session(session_id), "sync"),
            recheck=True,
        )
    _sync_page_sessions(db, gw, result)
    _sync_refunds(db, gw, result)
    result.counts.update(sync_recurring(db, gw))
    result.counts["pending"] = len(store.pending_session_ids(db))
    return result


def _sync_page_sessions(db: Database, gw: StripeGateway, result: SyncResult) -> None:
    """Sessions the donation page created on the server (issue 11) belong to no Payment Link:
    list every complete session since the cursor and keep those carrying a Dispatch token."""
    cursor = store.get_cursor(db, "sessions:page")
    newest = cursor or 0
    since = max(0, cursor - SESSION_OVERLAP_SECONDS) if cursor else None
    for session in BillingGateway(gw).completed_sessions(since):
        newest = max(newest, int(session.get("created") or 0))
        if session.get("payment_link") or not store.is_dispatch_token(
            db, session.get("client_reference_id")
        ):
            continue  # a Payment Link's (listed above) or not the outlet's
        result.sessions += 1
        _tally(result, record_checkout_session(db, session, "sync"))
    if newest:
        store.advance_cursor(db, "sessions:page", newest)


def _tally(result: SyncResult, recorded: Recorded, recheck: bool = False) -> None:
    if recheck and recorded.outcome == "unchanged":
        return  # already counted once by the listing in this run
    result.counts[recorded.outcome] += 1
    if recorded.outcome == "new" and not recorded.attributed:
        result.counts["unattributed"] += 1


def _sync_refunds(db: Database, gw: StripeGateway, result: SyncResult) -> None:
    cursor = store.get_cursor(db, "refunds")
    if cursor:
        since: int | None = max(0, cursor - REFUND_OVERLAP_SECONDS)
    else:
        oldest = store.oldest_session_time(db)
        if oldest is None:
            return  # no donations yet, so no refund can concern us
        since = oldest
    newest = cursor or 0
    for refund in gw.refunds(since):
        newest = max(newest, int(refund.get("created") or 0))
        outcome = record_refund(db, refund, livemode=gw.livemode)
        if outcome in ("new", "updated"):
            result.counts[f"refunds_{outcome}"] += 1
    if newest:
        store.advance_cursor(db, "refunds", newest)
    for refund_id in store.open_refund_ids(db):
        if record_refund(db, gw.refund(refund_id), livemode=gw.livemode) == "updated":
            result.counts["refunds_updated"] += 1


# -- setup -------------------------------------------------------------------------------


@dataclass
class SetupResult:
    mode: str
    links: list[dict[str, Any]] = field(default_factory=list)  # id, url, kind, amount, created


def setup_donations(
    db: Database,
    settings: Settings,
    *,
    currency: str | None = None,
    preset: str | None = None,
    fixed: tuple[str, ...] = (),
    monthly: tuple[str, ...] = (),
    gateway: StripeGateway | None = None,
) -> SetupResult:
    """Create (or adopt) the donation Payment Link; rerunning finds what exists and creates
    only what is missing. Creation requests carry idempotency keys, so a setup interrupted
    between two requests and rerun within a day does not make duplicates either."""
    code = (currency or settings.currency).lower()
    if len(code) != 3 or not code.isalpha():
        raise InputError(f"{code!r} is not a currency code", "Use an ISO code such as usd or eur.")
    preset_minor = to_minor_units(preset, code) if preset else None
    fixed_minor = [to_minor_units(a, code) for a in fixed]
    monthly_minor = [to_minor_units(a, code) for a in monthly]
    key_mode(settings.require("stripe_secret_key"))
    gw = gateway or StripeGateway(settings)
    _check_mode(db, gw.mode)
    result = SetupResult(mode=gw.mode)
    nonce = store.get_meta(db, "stripe.setup_nonce")
    if nonce is None:
        nonce = secrets.token_hex(8)
        store.set_meta(db, "stripe.setup_nonce", nonce)

    _adopt_setting_link(db, settings, gw)
    existing = store.payment_links(db)
    if not any(r["kind"] in ("custom", "adopted") for r in existing):
        _create_link(db, gw, nonce, code, "custom", None, preset_minor, settings)
    for kind, amounts in (("fixed", fixed_minor), ("monthly", monthly_minor)):
        for amount in amounts:
            if not any(
                r["kind"] == kind and r["amount_minor"] == amount and r["currency"] == code
                for r in store.payment_links(db)
            ):
                _create_link(db, gw, nonce, code, kind, amount, None, settings)
    before = {r["id"] for r in existing}
    for row in store.payment_links(db):
        if row["id"] in before and not gw.payment_link(row["id"]).get("active", True):
            raise DonationError(
                f"The stored Payment Link {row['id']} has been deactivated in Stripe",
                "Reactivate it in the Dashboard, or point DISPATCH_PAYMENT_LINK at another link.",
            )
        result.links.append(
            {
                "id": row["id"],
                "url": row["url"],
                "kind": row["kind"],
                "amount_minor": row["amount_minor"],
                "currency": row["currency"],
                "created": row["id"] not in before,
            }
        )
    return result


def _create_link(
    db: Database,
    gw: StripeGateway,
    nonce: str,
    currency: str,
    kind: str,
    amount: int | None,
    preset: int | None,
    settings: Settings,
) -> None:
    product_id = store.get_meta(db, "stripe.product_id")
    if product_id is None:
        name = settings.donation_product or f"Donation to {settings.outlet_name}"
        product_id = gw.create_product(name, f"dispatch-{nonce}-product")["id"]
        store.set_meta(db, "stripe.product_id", product_id)
    suffix = f"{kind}-{amount or 0}-{currency}"
    price = gw.create_price(
        product_id,
        currency,
        f"dispatch-{nonce}-price-{suffix}",
        amount_minor=amount,
        preset_minor=preset,
        monthly=kind == "monthly",
    )
    link = gw.create_payment_link(
        price["id"], f"dispatch-{nonce}-link-{suffix}", monthly=kind == "monthly"
    )
    store.save_payment_link(
        db,
        link_id=link["id"],
        url=str(link["url"]).rstrip("/"),
        kind=kind,
        livemode=bool(link.get("livemode")),
        amount_minor=amount,
        currency=currency,
        product_id=product_id,
        price_id=price["id"],
    )
