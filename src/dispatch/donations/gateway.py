"""The Stripe API calls Dispatch makes (anymail's "backend": the one place that talks to Stripe).

:class:`StripeGateway` wraps a ``stripe.StripeClient`` built from settings (key, API base,
network retries for 5xx and dropped connections) and hands back plain dicts, which
``donations.facts`` turns into typed facts; every stripe exception is turned into a
:class:`DonationError` here, with the key and any email address scrubbed from the message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import stripe

from dispatch.config import Settings
from dispatch.errors import ConfigError, DonationError

_KEY_RE = re.compile(r"^(sk|rk)_(test|live)_\S+$")
_SCRUB = [
    (re.compile(r"\b(sk|rk|pk|whsec)_[A-Za-z0-9_]+"), "[key]"),
    (re.compile(r"[^\s'\"<>@]+@[^\s'\"<>@]+\.[A-Za-z]{2,}"), "[email]"),
]
PAGE_SIZE = 100

# The library logs each request and response body (donor addresses) at DEBUG and INFO:
# keep it at WARNING whatever level the rest of Dispatch runs at, and never echo to stderr.
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

    def checkout_sessions(
        self, payment_link: str, created_gte: int | None
    ) -> Iterator[dict[str, Any]]:
        """Every complete Checkout Session of a Payment Link created at or after a time."""
        params: dict[str, Any] = {"payment_link": payment_link, "status": "complete"}
        if created_gte is not None:
            params["created"] = {"gte": int(created_gte)}
        return self._pages(
            "listing Checkout Sessions", self._client.v1.checkout.sessions.list, params
        )

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        """One session with its PaymentIntent expanded (to tell a failed delayed payment)."""
        return _plain(
            self._call(
                "reading a Checkout Session",
                self._client.v1.checkout.sessions.retrieve,
                session_id,
                params={"expand": ["payment_intent"]},
            )
        )

    def refunds(self, created_gte: int | None) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {}
        if created_gte is not None:
            params["created"] = {"gte": int(created_gte)}
        return self._pages("listing refunds", self._client.v1.refunds.list, params)

    def refund(self, refund_id: str) -> dict[str, Any]:
        return _plain(self._call("reading a refund", self._client.v1.refunds.retrieve, refund_id))

    def payment_link(self, link_id: str) -> dict[str, Any]:
        return _plain(
            self._call("reading the Payment Link", self._client.v1.payment_links.retrieve, link_id)
        )

    def find_payment_link(self, url: str) -> dict[str, Any] | None:
        """The account's Payment Link with this URL (as in DISPATCH_PAYMENT_LINK), if any."""
        wanted = url.split("?", 1)[0].rstrip("/")
        for link in self._pages("listing Payment Links", self._client.v1.payment_links.list, {}):
            if str(link.get("url", "")).rstrip("/") == wanted:
                return link
        return None

    # -- setup --------------------------------------------------------------------------

    def create_product(self, name: str, idempotency_key: str) -> dict[str, Any]:
        return _plain(
            self._call(
                "creating the donation Product",
                self._client.v1.products.create,
                params={"name": name, "metadata": {"dispatch": "donation"}},
                options={"idempotency_key": idempotency_key},
            )
        )

    def create_price(
        self,
        product: str,
        currency: str,
        idempotency_key: str,
        *,
        amount_minor: int | None = None,
        preset_minor: int | None = None,
        monthly: bool = False,
    ) -> dict[str, Any]:
        """A pay-what-you-want Price (no amount), or a fixed one, optionally monthly."""
        params: dict[str, Any] = {
            "product": product,
            "currency": currency,
            "metadata": {"dispatch": "donation"},
        }
        if amount_minor is None:
            custom: dict[str, Any] = {"enabled": True}
            if preset_minor:
                custom["preset"] = preset_minor
            params["custom_unit_amount"] = custom
        else:
            params["unit_amount"] = amount_minor
        if monthly:
            params["recurring"] = {"interval": "month"}
        return _plain(
            self._call(
                "creating a donation Price",
                self._client.v1.prices.create,
                params=params,
                options={"idempotency_key": idempotency_key},
            )
        )

    def create_payment_link(
        self, price: str, idempotency_key: str, *, monthly: bool = False
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "line_items": [{"price": price, "quantity": 1}],
            "metadata": {"dispatch": "donation"},
        }
        if not monthly:
            params["submit_type"] = "donate"  # Stripe allows it in payment mode only
        return _plain(
            self._call(
                "creating the Payment Link",
                self._client.v1.payment_links.create,
                params=params,
                options={"idempotency_key": idempotency_key},
            )
        )
