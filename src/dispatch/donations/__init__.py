"""Where Stripe lives: the only package that imports the stripe library.

Shaped like django-anymail (a backend for API calls, one module that turns the provider's
objects and events into typed facts, webhook verification), one module per job:

- ``gateway``: :class:`StripeGateway`, every Stripe API call (list and read Checkout Sessions,
  Refunds and Payment Links; create the Product, Price and Payment Link at setup). Stripe's
  errors become DonationError here, with keys and addresses scrubbed.
- ``webhook``: verify a delivery's ``Stripe-Signature`` on the raw body and read the event.
- ``facts``: Stripe objects and events as frozen dataclasses (:class:`Gift`, :class:`Refund`,
  :class:`Event`); a new event type is one dataclass and one ``@parses`` parser.
- ``attribution``: which gifts are the outlet's, and how a personal link carries the reader's
  delivery token to Stripe (``client_reference_id``) and back.
- ``links``: the outlet's Payment Link URL, checked against the key's account.
- ``recurring`` and ``billing`` (issue 11): subscriptions, invoices, invoice payments, session
  origins and disputes as facts, and the Stripe calls that list and read them.
- Money (minor units, formatting) is ``dispatch.money``, shared with the rest of Dispatch.

The use cases (set up, sync, record a fact, handle a webhook) are ``dispatch.jobs.donations``;
the web route is ``dispatch.web.stripe_hook``; all SQL is ``dispatch.store.donations``
(gifts, refunds, links, cursors, events) and the ``counted_gifts`` view (migration 0012),
the one definition of which gifts count, read by reports, donor personas, campaign progress
and thank-you emails.
"""

from __future__ import annotations

from dispatch.donations import recurring  # noqa: F401 - registers the recurring event parsers
from dispatch.donations.attribution import checkout_url, is_outlets_gift
from dispatch.donations.facts import (
    TOKEN_RE,
    Event,
    Fact,
    Gift,
    Refund,
    gift_from_session,
    handled_event_types,
    refund_from,
)
from dispatch.donations.gateway import StripeGateway, key_mode, scrub
from dispatch.donations.links import VERIFIED_LINK_KEY, donation_link_base, verify_payment_link
from dispatch.donations.webhook import WebhookError, verify_event

__all__ = [
    "TOKEN_RE",
    "VERIFIED_LINK_KEY",
    "Event",
    "Fact",
    "Gift",
    "Refund",
    "StripeGateway",
    "WebhookError",
    "checkout_url",
    "donation_link_base",
    "gift_from_session",
    "handled_event_types",
    "is_outlets_gift",
    "key_mode",
    "refund_from",
    "scrub",
    "verify_event",
    "verify_payment_link",
]
