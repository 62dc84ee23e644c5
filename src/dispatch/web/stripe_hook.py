"""``POST /stripe/webhook``: Stripe's events, verified on the raw body and recorded by the same
upserts as `dispatch donations sync`. Answers at once: nothing here calls the network.

Status codes are for Stripe: 200 handled, repeated or ignored; 400 refused (unsigned, tampered,
stale, not an event, a signed but malformed event, or an event of the other Stripe mode); 503
when STRIPE_WEBHOOK_SECRET is not set (Stripe retries, and the log says what to set) or when
another writer kept the database locked through every retry (Retry-After; Stripe retries).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from dispatch.donations import WebhookError
from dispatch.errors import ConfigError, DonationError
from dispatch.jobs import donations as jobs
from dispatch.web.app_support import state

bp = Blueprint("stripe_hook", __name__)
log = logging.getLogger("dispatch.web")


@bp.post("/stripe/webhook")
def webhook() -> Response | tuple[Response, int]:
    web = state()
    payload = request.get_data(cache=False, as_text=False)
    try:
        signature = request.headers.get("Stripe-Signature")
        event = jobs.read_webhook(web.settings, payload, signature)  # before any database work
        result = web.write(lambda: jobs.record_event(web.db(), event), "webhook")
    except ConfigError as exc:
        log.error("Stripe webhook refused: %s", exc)
        return jsonify(error="webhook not configured"), 503
    except WebhookError as exc:
        log.warning("Stripe webhook refused: %s", exc.message)
        return jsonify(error="invalid signature or payload"), 400
    except DonationError as exc:
        log.error("Stripe webhook event not recorded: %s", exc)
        return jsonify(error="event not accepted"), 400
    log.info("Stripe event %s (%s): %s", result.event_id, result.event_type, result.outcome)
    return jsonify(received=True, outcome=result.outcome)
