"""Events in the Stripe stand-in: every change the stand-in makes is recorded as a Stripe Event
(a snapshot of the object, with ``previous_attributes`` for updates), listed at GET /v1/events,
and can be delivered as Stripe signs webhooks (the stripe library's own signature helper)."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import stripe

if TYPE_CHECKING:
    from tests.stripe_stub import StripeStub

API_VERSION = "2026-10-28.endive"


def signed(event: dict[str, Any], secret: str, *, at: int | None = None) -> tuple[bytes, dict]:
    """The raw body and headers of one webhook delivery, signed as Stripe signs it."""
    import time

    payload = json.dumps(event).encode("utf-8")
    header = stripe.WebhookSignature.generate_signature_header(
        payload.decode("utf-8"), secret, timestamp=int(time.time()) if at is None else at
    )
    return payload, {"Stripe-Signature": header, "Content-Type": "application/json"}


class EventsMixin:
    """Mixed into StripeStub."""

    def _emit(
        self: StripeStub, kind: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = dict(previous)
        event = {
            "id": f"evt_{'live' if obj.get('livemode') else 'test'}_{secrets.token_hex(10)}",
            "object": "event",
            "type": kind,
            "api_version": API_VERSION,
            "created": self.clock,
            "livemode": bool(obj.get("livemode")),
            "data": data,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "_seq": len(self.objects["event"]),
        }
        self.objects["event"][event["id"]] = event
        return event

    def events(self: StripeStub, *types: str) -> list[dict[str, Any]]:
        """Events in the order they happened (optionally only some types), without the
        stand-in's own ordering key."""
        found = sorted(self.objects["event"].values(), key=lambda e: e["_seq"])
        return [
            {k: v for k, v in e.items() if k != "_seq"}
            for e in found
            if not types or e["type"] in types
        ]

    def deliveries(
        self: StripeStub, secret: str, events: Iterable[dict[str, Any]] | None = None
    ) -> list[tuple[bytes, dict]]:
        """Signed webhook deliveries (body, headers) of the given events (default: all)."""
        return [signed(e, secret) for e in (self.events() if events is None else events)]
