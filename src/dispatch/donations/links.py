"""The outlet's Payment Link: the URL personal donation links start from, and the check that
DISPATCH_PAYMENT_LINK is a Payment Link of the Stripe key's account."""

from __future__ import annotations

import logging

from dispatch.config import Settings, check_payment_link_shape
from dispatch.donations.gateway import StripeGateway
from dispatch.errors import ConfigError, DonationError
from dispatch.store import Database
from dispatch.store import donations as donation_store

log = logging.getLogger("dispatch.donations")
#: meta key prefix: a DISPATCH_PAYMENT_LINK URL Stripe has confirmed (value: the link's id).
VERIFIED_LINK_KEY = "payment_link_verified:"


def donation_link_base(db: Database, settings: Settings) -> str:
    """The Payment Link URL personal donation links start from: the setting wins, else the
    link stored by `dispatch donations setup`; '' when neither exists."""
    value = settings.payment_link.strip()
    if value:
        return check_payment_link_shape(value)
    row = donation_store.main_payment_link(db)
    return str(row["url"]) if row is not None else ""


def verify_payment_link(settings: Settings, db: Database) -> str:
    """DISPATCH_PAYMENT_LINK checked before build, preview and send: its shape always, and with
    a Stripe key, once per URL, that it is a Payment Link of the key's account (remembered in
    meta). Returns the link's URL without query, '' when unset. A Stripe that cannot be
    reached only warns: the shape is right, and the next run checks again."""
    if not settings.payment_link.strip():
        return ""
    url = check_payment_link_shape(settings.payment_link)
    if not settings.stripe_secret_key:
        return url
    key = VERIFIED_LINK_KEY + url
    if donation_store.get_meta(db, key) is not None:
        return url
    known = donation_store.payment_link_by_url(db, url)
    if known is not None:
        donation_store.set_meta(db, key, str(known["id"]))
        return url
    gateway = StripeGateway(settings)
    try:
        link = gateway.find_payment_link(url)
    except DonationError as exc:
        log.warning("DISPATCH_PAYMENT_LINK could not be checked against Stripe: %s", exc)
        return url
    if link is None:
        raise ConfigError(
            f"DISPATCH_PAYMENT_LINK ({url}) is not a Payment Link of this Stripe account in "
            f"{gateway.mode} mode",
            "Set it to https://donate.stripe.com/... as shown in Dashboard → Payment Links "
            "(in .env), with STRIPE_SECRET_KEY of the same mode, or unset it and run "
            "`dispatch donations setup`.",
        )
    donation_store.set_meta(db, key, str(link["id"]))
    return url
