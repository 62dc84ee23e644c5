"""Giving through the web service (issue 11): the donation page behind ``/d/<token>`` (one-time,
monthly or yearly; a suggested or custom amount) whose POST creates a Checkout Session on the
server, and the signed "manage your monthly gift" link that opens Stripe's customer portal.

A GET never creates anything at Stripe (mail scanners fetch every link): it shows the page and
counts the click, as the plain redirect does. The POST checks the token (a forged or altered one
creates nothing), the frequency and the amount (within DISPATCH_DONATION_MIN..MAX), then asks
Stripe for a session with an idempotency key made from the form's nonce, so a resubmitted form
or a retry after a timeout gets the same session back instead of a second one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from dispatch.config import Settings
from dispatch.donations.billing import BillingGateway
from dispatch.donations.gateway import StripeGateway
from dispatch.donations.recurring import TOKEN_KEY
from dispatch.errors import ConfigError, InputError
from dispatch.money import example_amount, format_money, parse_amount, to_minor_units
from dispatch.render.i18n import N_
from dispatch.store import Database, clicks, ledger, supporters
from dispatch.store import recurring as recurring_store
from dispatch.store.tokens import valid_token

#: Form value -> Stripe's recurring interval (None: a one-time gift).
FREQUENCIES: dict[str, str | None] = {"once": None, "monthly": "month", "yearly": "year"}


@dataclass(frozen=True)
class GivingOptions:
    """What the page offers, in minor units of ``currency``."""

    currency: str
    amounts: tuple[int, ...]
    minimum: int
    maximum: int


def _minor(settings: Settings, name: str, text: str, currency: str) -> int:
    try:
        value = to_minor_units(text.strip(), currency)
    except InputError as exc:
        raise ConfigError(
            f"{name} has {text.strip()!r}, which is not an amount in {currency.upper()}",
            f"Set {name} (in .env or the environment) to amounts such as 5,10,25.",
        ) from exc
    if value <= 0:
        raise ConfigError(f"{name} must be more than zero", f"Fix {name} in .env.")
    return value


def giving_options(settings: Settings) -> GivingOptions | None:
    """The page's offer, or None when DISPATCH_DONATION_AMOUNTS is unset (then ``/d/`` is the
    plain redirect to the Payment Link, as without the page)."""
    if not settings.donation_amounts.strip() or not settings.stripe_secret_key:
        return None
    currency = settings.currency.lower()
    amounts = tuple(
        _minor(settings, "DISPATCH_DONATION_AMOUNTS", part, currency)
        for part in settings.donation_amounts.split(",")
        if part.strip()
    )
    minimum = _minor(settings, "DISPATCH_DONATION_MIN", settings.donation_min, currency)
    maximum = _minor(settings, "DISPATCH_DONATION_MAX", settings.donation_max, currency)
    if minimum > maximum or any(not minimum <= a <= maximum for a in amounts):
        raise ConfigError(
            "DISPATCH_DONATION_AMOUNTS must lie between DISPATCH_DONATION_MIN and "
            "DISPATCH_DONATION_MAX",
            "Fix the three settings in .env so that MIN <= every amount <= MAX.",
        )
    return GivingOptions(currency, amounts, minimum, maximum)


def open_page(db: Database, token: str) -> clicks.ClickTarget | None:
    """A GET of the page: count the click; None for an unknown token (nothing stored)."""
    return clicks.record_click(db, token) if valid_token(token) else None


def page_language(db: Database, token: str) -> str:
    """The language of the copy a donation link came in: its page speaks it too ("" for the
    outlet's default)."""
    return ledger.language_of_token(db, token) if valid_token(token) else ""


def is_known_token(db: Database, token: str) -> bool:
    """Whether a token is one Dispatch put in a link (counts nothing)."""
    return valid_token(token) and supporters.reader_of_token(db, token) is not None


class GiftError(InputError):
    """A refused choice on the donation page, said to the reader in the page's language: the
    web layer translates ``msgid`` (marked for the catalogs) and fills in ``params``."""

    def __init__(self, msgid: str, **params: str) -> None:
        super().__init__(msgid % params if params else msgid)
        self.msgid = msgid
        self.params = params


def parse_gift(
    options: GivingOptions,
    frequency: str,
    amount: str,
    language: str | None = None,
    *,
    typed: bool = False,
) -> tuple[str, int]:
    """The form's choice, checked; GiftError says what is wrong in words for the reader, with
    amounts written in the page's ``language``. A ``typed`` amount is read that language's way
    (German "12,50"); otherwise it is one of the page's own choices ("12.50")."""
    if frequency not in FREQUENCIES:
        raise GiftError(N_("Please choose one-time, monthly or yearly."))
    try:
        if not typed:
            minor = to_minor_units(amount.strip(), options.currency)
        else:
            minor = parse_amount(amount, options.currency, language)
    except InputError as exc:
        raise GiftError(
            N_("“%(amount)s” is not an amount. Please enter a number such as 10 or %(example)s."),
            amount=amount.strip()[:20],
            example=example_amount(options.currency, language),
        ) from exc
    if not options.minimum <= minor <= options.maximum:
        raise GiftError(
            N_("Please give between %(minimum)s and %(maximum)s."),
            minimum=format_money(options.minimum, options.currency, locale=language),
            maximum=format_money(options.maximum, options.currency, locale=language),
        )
    return frequency, minor


def start_checkout(
    db: Database,
    settings: Settings,
    token: str,
    frequency: str,
    amount: str,
    nonce: str,
    gateway: StripeGateway | None = None,
    language: str | None = None,
    *,
    typed: bool = False,
) -> str | None:
    """Create the Checkout Session for the page's POST and return its URL; None for an unknown
    token (nothing created). GiftError for a bad choice; DonationError when Stripe fails.
    ``language``: the page's; ``typed``: the reader typed the amount (see ``parse_gift``)."""
    reader = supporters.reader_of_token(db, token) if valid_token(token) else None
    if reader is None:
        return None
    options = giving_options(settings)
    if options is None:
        raise ConfigError("The donation page is off", "Set DISPATCH_DONATION_AMOUNTS.")
    frequency, minor = parse_gift(options, frequency, amount, language, typed=typed)
    interval = FREQUENCIES[frequency]
    base = settings.public_url.rstrip("/")
    name = f"Donation to {settings.outlet_name}"
    price: dict[str, object] = {
        "currency": options.currency,
        "unit_amount": minor,
        "product_data": {"name": name},
    }
    params: dict[str, object] = {
        "mode": "subscription" if interval else "payment",
        "line_items": [{"quantity": 1, "price_data": price}],
        "client_reference_id": token,
        "success_url": f"{base}/d/{token}/thanks",
        "cancel_url": f"{base}/d/{token}?back=1",
        "metadata": {TOKEN_KEY: token},
    }
    if interval:
        price["recurring"] = {"interval": interval}
        params["subscription_data"] = {"metadata": {TOKEN_KEY: token}}
    else:
        params["payment_intent_data"] = {"metadata": {TOKEN_KEY: token}}
        params["submit_type"] = "donate"
    email = reader[1]
    if email and settings.prefill_email:
        params["customer_email"] = email
    key = hashlib.sha256(f"{token}|{frequency}|{minor}|{nonce}".encode()).hexdigest()[:40]
    session = BillingGateway(gateway or StripeGateway(settings)).create_checkout(
        params, f"dispatch-give-{key}"
    )
    return str(session["url"])


# -- managing a monthly gift ---------------------------------------------------------------


def _signature(settings: Settings, subscription_id: str) -> str:
    secret = settings.require("secret_key").encode()
    digest = hmac.new(secret, f"manage:{subscription_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def manage_link(settings: Settings, subscription_id: str) -> str:
    """The signed per-donor link (``/m/<subscription>.<signature>``) for thank-yous and current
    supporters' copies; only DISPATCH_SECRET_KEY can make one."""
    ref = f"{subscription_id}.{_signature(settings, subscription_id)}"
    return f"{settings.public_url.rstrip('/')}/m/{ref}"


def subscription_for_ref(db: Database, settings: Settings, ref: str) -> str | None:
    """The subscription a manage link names, or None when it is forged or altered."""
    sub_id, _, signature = ref.partition(".")
    if not sub_id.startswith("sub_") or not hmac.compare_digest(
        signature.encode(), _signature(settings, sub_id).encode()
    ):
        return None
    return sub_id if recurring_store.subscription(db, sub_id) is not None else None


def manage_language(db: Database, settings: Settings, ref: str) -> str:
    """The language of the reader who gives through a manage link's subscription ("" for the
    outlet's default or a link Dispatch does not know): the manage page speaks it."""
    sub_id = subscription_for_ref(db, settings, ref)
    return supporters.language_of_subscription(db, sub_id) if sub_id else ""


def open_portal(
    db: Database, settings: Settings, ref: str, gateway: StripeGateway | None = None
) -> str | None:
    """The POST of the manage page: a customer portal session's URL; None (nothing created)
    for a forged link or a subscription Dispatch does not know."""
    sub_id = subscription_for_ref(db, settings, ref)
    row = recurring_store.subscription(db, sub_id) if sub_id else None
    if row is None or not row["customer"]:
        return None
    portal = BillingGateway(gateway or StripeGateway(settings)).create_portal(
        row["customer"], settings.public_url.rstrip("/") or None
    )
    return str(portal["url"])
