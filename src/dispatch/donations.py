"""Stripe: the only module that imports the stripe library.

:class:`StripeGateway` wraps a ``stripe.StripeClient`` built from settings (key, API base,
network retries for 5xx and dropped connections) and hands back plain dicts; every stripe
exception is turned into a :class:`DonationError` here, with the key and any email address
scrubbed from the message. :func:`session_facts` and :func:`refund_facts` turn a Checkout
Session or Refund (from a listing or a webhook event) into the flat facts the store records.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

import stripe

from dispatch.config import Settings, check_payment_link_shape
from dispatch.errors import ConfigError, DonationError
from dispatch.store import Database
from dispatch.store import donations as donation_store

#: client_reference_id values Dispatch writes; Stripe silently drops anything else.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_KEY_RE = re.compile(r"^(sk|rk)_(test|live)_\S+$")
_SCRUB = [
    (re.compile(r"\b(sk|rk|pk|whsec)_[A-Za-z0-9_]+"), "[key]"),
    (re.compile(r"[^\s'\"<>@]+@[^\s'\"<>@]+\.[A-Za-z]{2,}"), "[email]"),
]
PAGE_SIZE = 100

# The library logs each request and response body (donor addresses) at DEBUG and INFO:
# keep it at WARNING whatever level the rest of Dispatch runs at, and never echo to stderr.
log = logging.getLogger(__name__)
#: meta key prefix: a DISPATCH_PAYMENT_LINK URL Stripe has confirmed (value: the link's id).
VERIFIED_LINK_KEY = "payment_link_verified:"

logging.getLogger("stripe").setLevel(logging.WARNING)
stripe.log = None
stripe.enable_telemetry = False
if hasattr(stripe, "_util") and hasattr(stripe._util, "STRIPE_LOG"):
    stripe._util.STRIPE_LOG = None  # the STRIPE_LOG variable would print bodies to stderr


def key_mode(key: str) -> str:
    """'test' or 'live' from a secret (sk_) or restricted (rk_) key's prefix."""
    match = _KEY_RE.match(key)
    if match is None:
        raise ConfigError(
            "STRIPE_SECRET_KEY does not look like a Stripe secret or restricted key",
            "Use a key that starts with sk_test_, sk_live_, rk_test_ or rk_live_ (Dashboard → "
            "Developers → API keys), set in the environment or the .env file.",
        )
    return match.group(2)


def scrub(text: str) -> str:
    """Remove keys and email addresses from a message before it reaches a person or a log."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def _wrap(exc: stripe.StripeError, doing: str) -> DonationError:
    detail = scrub(str(getattr(exc, "user_message", None) or exc) or type(exc).__name__)
    if "similar object exists in" in detail:
        return DonationError(
            f"Stripe refused {doing}: {detail}",
            "STRIPE_SECRET_KEY is of the other mode (test vs live) than the Payment Link: use "
            "the key of the link's mode.",
        )
    if isinstance(exc, stripe.AuthenticationError):
        return DonationError(
            f"Stripe did not accept the API key while {doing}",
            "Check STRIPE_SECRET_KEY (Dashboard → Developers → API keys).",
        )
    if isinstance(exc, stripe.PermissionError):
        return DonationError(
            f"The restricted key may not do this: {doing} ({detail})",
            "Give the restricted key read access to Checkout Sessions, Refunds and Payment "
            "Links (and write access to Products, Prices and Payment Links for setup).",
        )
    if isinstance(exc, stripe.APIConnectionError):
        return DonationError(
            f"Could not reach Stripe while {doing}: {detail}",
            "Check the network (and STRIPE_API_BASE if set); rerun, nothing was lost.",
        )
    if isinstance(exc, stripe.RateLimitError):
        return DonationError(
            f"Stripe rate-limited Dispatch while {doing}", "Wait a minute and rerun."
        )
    return DonationError(
        f"Stripe answered with an error while {doing}: {detail}",
        "Rerun later; if it persists, check the Stripe dashboard's request log.",
    )


def _plain(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


class StripeGateway:
    """The Stripe calls Dispatch makes, returning plain dicts."""

    def __init__(self, settings: Settings) -> None:
        key = settings.require("stripe_secret_key")
        self.mode = key_mode(key)
        self.livemode = self.mode == "live"
        base = settings.stripe_api_base.rstrip("/") or None
        self._client = stripe.StripeClient(
            key,
            base_addresses={"api": base} if base else None,
            max_network_retries=settings.stripe_max_retries,
        )

    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            raise _wrap(exc, doing) from exc

    def _pages(self, doing: str, listing: Any, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = self._call(doing, listing, params={**params, "limit": PAGE_SIZE})
        iterator = iter(page.auto_paging_iter())
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            except stripe.StripeError as exc:
                raise _wrap(exc, doing) from exc
            yield _plain(item)

    # -- reading ------------------------------------------------------------------------

    def checkout_sessions(self, payment_link: str, created_gte: int | None) -> Iterator[dict]:
        """Every complete Checkout Session of a Payment Link created at or after a time."""
        params: dict[str, Any] = {"payment_link": payment_link, "status": "complete"}
        if created_gte is not None:
            params["created"] = {"gte": int(created_gte)}
        return self._pages("listing Checkout Sessions", self._client.v1.checkout.sessions.list,
                           params)

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        """One session with its PaymentIntent expanded (to tell a failed delayed payment)."""
        return _plain(self._call(
            "reading a Checkout Session", self._client.v1.checkout.sessions.retrieve,
            session_id, params={"expand": ["payment_intent"]},
        ))

    def refunds(self, created_gte: int | None) -> Iterator[dict]:
        params: dict[str, Any] = {}
        if created_gte is not None:
            params["created"] = {"gte": int(created_gte)}
        return self._pages("listing refunds", self._client.v1.refunds.list, params)

    def refund(self, refund_id: str) -> dict[str, Any]:
        return _plain(self._call("reading a refund", self._client.v1.refunds.retrieve, refund_id))

    def payment_link(self, link_id: str) -> dict[str, Any]:
        return _plain(self._call(
            "reading the Payment Link", self._client.v1.payment_links.retrieve, link_id
        ))

    def find_payment_link(self, url: str) -> dict[str, Any] | None:
        """The account's Payment Link with this URL (as in DISPATCH_PAYMENT_LINK), if any."""
        wanted = url.split("?", 1)[0].rstrip("/")
        for link in self._pages("listing Payment Links", self._client.v1.payment_links.list, {}):
            if str(link.get("url", "")).rstrip("/") == wanted:
                return link
        return None

    # -- setup --------------------------------------------------------------------------

    def create_product(self, name: str, idempotency_key: str) -> dict[str, Any]:
        return _plain(self._call(
            "creating the donation Product", self._client.v1.products.create,
            params={"name": name, "metadata": {"dispatch": "donation"}},
            options={"idempotency_key": idempotency_key},
        ))

    def create_price(
        self, product: str, currency: str, idempotency_key: str, *,
        amount_minor: int | None = None, preset_minor: int | None = None, monthly: bool = False,
    ) -> dict[str, Any]:
        """A pay-what-you-want Price (no amount), or a fixed one, optionally monthly."""
        params: dict[str, Any] = {"product": product, "currency": currency,
                                  "metadata": {"dispatch": "donation"}}
        if amount_minor is None:
            custom: dict[str, Any] = {"enabled": True}
            if preset_minor:
                custom["preset"] = preset_minor
            params["custom_unit_amount"] = custom
        else:
            params["unit_amount"] = amount_minor
        if monthly:
            params["recurring"] = {"interval": "month"}
        return _plain(self._call(
            "creating a donation Price", self._client.v1.prices.create, params=params,
            options={"idempotency_key": idempotency_key},
        ))

    def create_payment_link(self, price: str, idempotency_key: str, *,
                            monthly: bool = False) -> dict[str, Any]:
        params: dict[str, Any] = {
            "line_items": [{"price": price, "quantity": 1}],
            "metadata": {"dispatch": "donation"},
        }
        if not monthly:
            params["submit_type"] = "donate"  # Stripe allows it in payment mode only
        return _plain(self._call(
            "creating the Payment Link", self._client.v1.payment_links.create, params=params,
            options={"idempotency_key": idempotency_key},
        ))


# -- facts from Stripe objects --------------------------------------------------------------


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return value.get("id")
    return value or None


def session_facts(session: Mapping[str, Any], *, payment_failed: bool = False) -> dict | None:
    """The facts of a complete Checkout Session, or None when it is not a gift at all
    (still open, expired, or with no amount).

    status: 'paid' when payment_status is paid; 'failed' when a delayed payment failed (the
    webhook's async_payment_failed, or an expanded PaymentIntent back at requires_payment_method
    or canceled); 'pending' otherwise (unpaid, waiting for a delayed method).
    """
    if session.get("object") not in (None, "checkout.session") or not session.get("id"):
        raise DonationError(
            "Expected a Stripe Checkout Session", "This is a bug in Dispatch or in the caller."
        )
    if session.get("status") != "complete" or session.get("amount_total") is None:
        return None
    payment_status = session.get("payment_status")
    intent = session.get("payment_intent")
    if payment_status in ("paid", "no_payment_required"):
        status = "paid"
    elif payment_failed or (
        isinstance(intent, Mapping) and intent.get("status") in ("requires_payment_method",
                                                                  "canceled")
    ):
        status = "failed"
    else:
        status = "pending"
    token = session.get("client_reference_id") or None
    if token is not None and not TOKEN_RE.match(token):
        token = None
    details = session.get("customer_details") or {}
    return {
        "session_id": session["id"],
        "livemode": bool(session.get("livemode")),
        "payment_link": _id_of(session.get("payment_link")),
        "payment_intent": _id_of(intent),
        "checkout_mode": session.get("mode") or "payment",
        "status": status,
        "amount_minor": int(session["amount_total"]),
        "currency": str(session.get("currency") or "").lower(),
        "token": token,
        "payer_email": details.get("email") or session.get("customer_email") or None,
        "created": int(session.get("created") or 0),
    }


def refund_facts(refund: Mapping[str, Any], *, livemode: bool) -> dict[str, Any]:
    """The facts of a Refund. Refund objects carry no livemode flag: pass the key's mode
    (sync) or the event's ``livemode`` (webhook)."""
    if refund.get("object") not in (None, "refund") or not refund.get("id"):
        raise DonationError("Expected a Stripe Refund", "This is a bug in Dispatch or the caller.")
    return {
        "refund_id": refund["id"],
        "payment_intent": _id_of(refund.get("payment_intent")),
        "charge": _id_of(refund.get("charge")),
        "amount_minor": int(refund.get("amount") or 0),
        "currency": str(refund.get("currency") or "").lower(),
        "status": refund.get("status") or "pending",
        "livemode": bool(livemode),
        "created": int(refund.get("created") or 0),
    }


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
