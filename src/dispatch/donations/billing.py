"""The Stripe calls of recurring gifts (issue 11), beside :class:`StripeGateway`'s: listing
subscriptions, invoices and disputes with a ``created`` cursor (every page), reading one by id,
and finding the Checkout Session that started a subscription. Plain dicts out; Stripe's errors
become DonationError through the gateway's own wrapper."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dispatch.donations.gateway import StripeGateway, _plain


def _since(created_gte: int | None) -> dict[str, Any]:
    return {"created": {"gte": int(created_gte)}} if created_gte is not None else {}


class BillingGateway:
    """Recurring-gift reads through an existing gateway (same client, key and retries)."""

    def __init__(self, gateway: StripeGateway) -> None:
        self.gw = gateway
        self._v1 = gateway._client.v1

    def subscriptions(self, created_gte: int | None) -> Iterator[dict[str, Any]]:
        """Every subscription created at or after a time, cancelled ones included."""
        return self.gw._pages(
            "listing subscriptions",
            self._v1.subscriptions.list,
            {"status": "all", **_since(created_gte)},
        )

    def subscription(self, sub_id: str) -> dict[str, Any]:
        return _plain(
            self.gw._call("reading a subscription", self._v1.subscriptions.retrieve, sub_id)
        )

    def invoices(self, created_gte: int | None) -> Iterator[dict[str, Any]]:
        """Every invoice created at or after a time, with its payments (PaymentIntents)."""
        return self.gw._pages(
            "listing invoices",
            self._v1.invoices.list,
            {"expand": ["data.payments"], **_since(created_gte)},
        )

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        return _plain(
            self.gw._call(
                "reading an invoice",
                self._v1.invoices.retrieve,
                invoice_id,
                params={"expand": ["payments"]},
            )
        )

    def disputes(self, created_gte: int | None) -> Iterator[dict[str, Any]]:
        return self.gw._pages("listing disputes", self._v1.disputes.list, _since(created_gte))

    def dispute(self, dispute_id: str) -> dict[str, Any]:
        return _plain(self.gw._call("reading a dispute", self._v1.disputes.retrieve, dispute_id))

    def completed_sessions(self, created_gte: int | None) -> Iterator[dict[str, Any]]:
        """Every complete Checkout Session of the account since a time, whatever made it (the
        donation page's have no Payment Link, so the per-link listing never sees them)."""
        return self.gw._pages(
            "listing Checkout Sessions",
            self._v1.checkout.sessions.list,
            {"status": "complete", **_since(created_gte)},
        )

    def sessions_of_subscription(self, sub_id: str) -> Iterator[dict[str, Any]]:
        """The Checkout Session(s) that started a subscription (a monthly Payment Link's)."""
        return self.gw._pages(
            "listing Checkout Sessions", self._v1.checkout.sessions.list, {"subscription": sub_id}
        )

    # -- giving through the web service ------------------------------------------------------

    def create_checkout(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """A Checkout Session made on the server (the donation page's POST). The idempotency
        key makes a resubmitted form or a retried request give back the same session."""
        return _plain(
            self.gw._call(
                "creating a Checkout Session",
                self._v1.checkout.sessions.create,
                params=params,
                options={"idempotency_key": idempotency_key},
            )
        )

    def create_portal(self, customer: str, return_url: str | None) -> dict[str, Any]:
        """A customer portal session where a donor changes the amount or card, or cancels."""
        params: dict[str, Any] = {"customer": customer}
        if return_url:
            params["return_url"] = return_url
        return _plain(
            self.gw._call(
                "opening the customer portal",
                self._v1.billing_portal.sessions.create,
                params=params,
            )
        )
