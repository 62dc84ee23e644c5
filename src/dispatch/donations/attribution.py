"""Attribution rules: which gifts are the outlet's, and how a personal donation link carries
the reader's delivery token to Stripe (``client_reference_id``) and back.

The token is looked up in the send ledger by the store when the gift is recorded
(store.donations.record_donation): that gives the subscriber and the issue the gift came from.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from dispatch.donations.facts import Gift
from dispatch.store import Database
from dispatch.store import donations as donation_store


def is_outlets_gift(db: Database, gift: Gift) -> bool:
    """A gift through one of the outlet's donation Payment Links, or one carrying a token
    Dispatch put in a link (ours even before a sync has learnt the link's id: the link may
    come only from DISPATCH_PAYMENT_LINK, a URL, while Stripe sends the id)."""
    return donation_store.is_known_link(db, gift.payment_link) or donation_store.is_dispatch_token(
        db, gift.token
    )


def checkout_url(payment_link: str, token: str, email: str | None = None) -> str:
    """The Payment Link URL a personal donation link redirects to: the delivery token as
    ``client_reference_id`` (Stripe hands it back on the Checkout Session) and, when the
    outlet allows it, the reader's address prefilled."""
    params = {"client_reference_id": token}
    if email:
        params["prefilled_email"] = email
    sep = "&" if "?" in payment_link else "?"
    return f"{payment_link}{sep}{urlencode(params, quote_via=quote, safe='')}"
