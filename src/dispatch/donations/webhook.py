"""Verifying Stripe webhook deliveries (the stripe library's own signature check) and reading
them as typed facts (anymail's webhook view, without the view: the route lives in web/).

Needs no key and no network: the web service verifies the ``Stripe-Signature`` header on the
raw request bytes and gets back a :class:`~dispatch.donations.facts.Event`, or a WebhookError
saying why the delivery was refused.
"""

from __future__ import annotations

import json

import stripe

from dispatch.donations.facts import Event, event_from
from dispatch.errors import DispatchError

#: Seconds a signed delivery stays acceptable (Stripe's default; replays older than this fail).
TOLERANCE_SECONDS = 300


class WebhookError(DispatchError):
    """A webhook delivery that is unsigned, wrongly signed, stale or not a Stripe event."""

    default_hint = (
        "Check that STRIPE_WEBHOOK_SECRET is the signing secret (whsec_...) of this endpoint."
    )


def verify_event(
    payload: bytes, sig_header: str | None, secret: str, tolerance: int = TOLERANCE_SECONDS
) -> Event:
    """The facts of a verified delivery; WebhookError when it is refused (also for a signed
    delivery that is not a well-formed event), DonationError for an object of the wrong kind.

    The signature covers the exact bytes Stripe sent, so ``payload`` must be the raw body.
    """
    if not sig_header:
        raise WebhookError("The delivery has no Stripe-Signature header")
    try:
        stripe.Webhook.construct_event(payload, sig_header, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError as exc:
        # The library's messages say which check failed and contain no secret.
        raise WebhookError(f"The signature was refused: {exc.user_message or exc}") from exc
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        # After the signature check the library reads the body as an event: a signed body
        # that is JSON but not an object (a list, a number) fails there with these.
        raise WebhookError("The delivery is not a JSON Stripe event") from exc
    event = json.loads(payload)
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookError("The delivery is not a Stripe event (no id or type)")
    event_id, kind = event["id"], event["type"]
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not isinstance(kind, str) or not isinstance(obj, dict):
        raise WebhookError(
            "The delivery is signed but is not a Stripe event (id, type or "
            "data.object missing or of the wrong type)"
        )
    event_id, kind = event_id[:200], kind[:200]
    try:
        return event_from(event_id, kind, obj, bool(event.get("livemode")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A signed event whose object lacks a field or has one of the wrong type: say which
        # event, never its content (it carries personal data).
        raise WebhookError(
            f"Event {event_id} ({kind}) is signed but malformed: its data.object could not "
            f"be read ({type(exc).__name__})"
        ) from exc
