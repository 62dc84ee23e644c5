"""Verifying Stripe webhook deliveries (the stripe library's own signature check).

Kept apart from ``donations`` (the Stripe API client) because it needs no key and no network:
the web service verifies the ``Stripe-Signature`` header on the raw request bytes and gets the
event back as a plain dict, or a WebhookError saying why it was refused.
"""

from __future__ import annotations

import json
from typing import Any

import stripe

from dispatch.errors import DispatchError

#: Seconds a signed delivery stays acceptable (Stripe's default; replays older than this fail).
TOLERANCE_SECONDS = 300


class WebhookError(DispatchError):
    """A webhook delivery that is unsigned, wrongly signed, stale or not a Stripe event."""

    default_hint = (
        "Check that STRIPE_WEBHOOK_SECRET is the signing secret (whsec_...) of this endpoint."
    )


def verify_webhook(
    payload: bytes, sig_header: str | None, secret: str, tolerance: int = TOLERANCE_SECONDS
) -> dict[str, Any]:
    """The event of a verified delivery as a plain dict; WebhookError when it is refused.

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
    return event
