"""Recurring gifts in the Stripe stand-in: customers, subscriptions and invoices, the events each
change emits, and a clock the test moves forward (as Stripe's test clocks do) to bill renewals
and retry failed cards. Sessions made over the API are ``checkout.py``; refunds and disputes
``disputes.py``.

Object shapes follow Stripe's current API (the stripe library's types, 2026 versions): an
invoice names its subscription under ``parent.subscription_details`` and its PaymentIntents only
in the includable ``payments`` list (``expand[]=payments``); subscription periods live on the
subscription item. Billing rules are Stripe's defaults, simplified: a renewal
is billed at the end of each period, a failed charge is retried every 3 days, and after
``RETRIES`` failed attempts the subscription is cancelled with reason ``payment_failed``.
"""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.stripe_stub.events import EventsMixin

if TYPE_CHECKING:
    from tests.stripe_stub import StripeStub

DAY = 86_400
RETRY_SECONDS = 3 * DAY
RETRIES = 4  # attempts before Stripe (Smart Retries default) gives up and cancels


def add_interval(start: int, interval: str, count: int = 1) -> int:
    """``start`` moved by ``count`` months or years, clamping the day as Stripe does (Jan 31
    + 1 month = Feb 28/29)."""
    when = datetime.fromtimestamp(start, UTC)
    months = count * (12 if interval == "year" else 1)
    if interval in ("day", "week"):
        return start + count * DAY * (7 if interval == "week" else 1)
    year, month = divmod(when.month - 1 + months, 12)
    year += when.year
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return int(when.replace(year=year, month=month + 1, day=day).timestamp())


class BillingMixin(EventsMixin):
    """Mixed into StripeStub: seeding helpers for tests and the billing routes."""

    # -- seeding and moving time (tests call these) -------------------------------------

    def advance(self: StripeStub, *, days: int = 0, seconds: int = 0, months: int = 0) -> int:
        """Move the clock forward, billing every renewal and retry that falls due on the way,
        in time order. Returns the new time."""
        target = self.clock + days * DAY + seconds
        if months:
            target = add_interval(target, "month", months)
        while True:
            due = self._next_due(target)
            if due is None:
                break
            when, action = due
            self.clock = max(self.clock, when)
            action()
        self.clock = max(self.clock, target)
        return self.clock

    def set_card(self: StripeStub, customer: str, *, fails: bool) -> None:
        """Make a customer's card decline (True) or go through (False) from now on."""
        (self.failing_cards.add if fails else self.failing_cards.discard)(customer)

    def add_customer(self: StripeStub, email: str | None, *, livemode: bool = False) -> dict:
        customer = {
            "id": self._new_id("cus", livemode),
            "object": "customer",
            "email": email,
            "created": self.now(),
            "livemode": livemode,
            "metadata": {},
            "name": None,
            "test_clock": None,
            "invoice_prefix": "DISP",
            "delinquent": False,
        }
        self.objects["customer"][customer["id"]] = customer
        self._emit("customer.created", customer)
        return customer

    def start_subscription(
        self: StripeStub,
        *,
        payment_link: str | None = None,
        token: str | None = None,
        amount: int = 1000,
        currency: str = "usd",
        interval: str = "month",
        email: str | None = "donor@example.test",
        metadata: dict[str, str] | None = None,
        livemode: bool = False,
        card_fails: bool = False,
    ) -> dict[str, Any]:
        """A donor completes a subscription-mode Checkout Session (as a monthly Payment Link
        makes it: the token only on the session). Returns the session."""
        session = self.add_session(
            payment_link=payment_link,
            amount=amount,
            currency=currency,
            token=token,
            email=email,
            livemode=livemode,
            mode="subscription",
            status="open",
            payment_status="unpaid",
        )
        self.objects["payment_intent"].pop(session["payment_intent"], None)
        session["payment_intent"] = None
        self._session_extra[session["id"]] = {
            "price": self._inline_price(currency, amount, interval, livemode),
            "subscription_metadata": dict(metadata or {}),
            "intent_metadata": {},
        }
        return self.complete_session(session["id"], email=email, card_fails=card_fails)

    def complete_session(
        self: StripeStub, session_id: str, *, email: str | None = None, card_fails: bool = False
    ) -> dict[str, Any]:
        """The donor pays on Checkout: a one-time PaymentIntent, or a customer, subscription
        and first invoice. A declined card leaves the session open (Checkout asks again)."""
        session = self.objects["checkout.session"][session_id]
        extra = self._session_extra[session_id]
        email = email or session.get("customer_email") or "donor@example.test"
        live = session["livemode"]
        if card_fails:
            return session
        session["customer_details"]["email"] = email
        if session["mode"] == "subscription":
            customer = self.add_customer(email, livemode=live)
            sub = self._new_subscription(
                customer["id"], extra["price"], extra["subscription_metadata"], live
            )
            invoice = self._bill(sub, "subscription_create")
            session.update(
                customer=customer["id"],
                subscription=sub["id"],
                invoice=invoice["id"],
                status="complete",
                payment_status="paid",
            )
        else:
            intent = self._new_intent(
                session["amount_total"],
                session["currency"],
                live,
                extra["intent_metadata"],
                succeeded=True,
            )
            session.update(payment_intent=intent["id"], status="complete", payment_status="paid")
        self._emit("checkout.session.completed", session)
        return session

    def cancel_subscription(
        self: StripeStub,
        sub_id: str,
        *,
        at_period_end: bool = False,
        reason: str = "cancellation_requested",
        feedback: str | None = None,
    ) -> dict[str, Any]:
        """The donor cancels (in the portal): at once, or when the paid period ends."""
        sub = self.objects["subscription"][sub_id]
        item = sub["items"]["data"][0]
        sub["cancellation_details"] = {"comment": None, "feedback": feedback, "reason": reason}
        if at_period_end:
            before = {"cancel_at_period_end": False, "cancel_at": None}
            sub.update(
                cancel_at_period_end=True,
                cancel_at=item["current_period_end"],
                canceled_at=self.clock,
            )
            self._emit("customer.subscription.updated", sub, before)
            return sub
        self._end(sub)
        return sub

    # -- internals ----------------------------------------------------------------------

    def _inline_price(
        self: StripeStub, currency: str, amount: int, interval: str | None, livemode: bool
    ) -> dict[str, Any]:
        price = {
            "id": self._new_id("price", livemode),
            "object": "price",
            "active": False,
            "currency": currency,
            "unit_amount": amount,
            "unit_amount_decimal": str(amount),
            "livemode": livemode,
            "created": self.clock,
            "product": None,
            "metadata": {},
            "type": "recurring" if interval else "one_time",
            "custom_unit_amount": None,
            "billing_scheme": "per_unit",
            "lookup_key": None,
            "nickname": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "recurring": {
                "interval": interval,
                "interval_count": 1,
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
            if interval
            else None,
        }
        self.objects["price"][price["id"]] = price
        return price

    def _new_intent(
        self: StripeStub,
        amount: int,
        currency: str,
        livemode: bool,
        metadata: dict[str, str],
        *,
        succeeded: bool,
    ) -> dict[str, Any]:
        from tests.stripe_stub import template

        intent = template("payment_intent")
        charge = self._new_id("ch", livemode) if succeeded else None
        intent.update(
            id=self._new_id("pi", livemode),
            amount=amount,
            currency=currency,
            amount_received=amount if succeeded else 0,
            livemode=livemode,
            status="succeeded" if succeeded else "requires_payment_method",
            metadata=dict(metadata),
            latest_charge=charge,
            created=self.now(),
            client_secret=None,
            canceled_at=None,
            last_payment_error=None
            if succeeded
            else {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card was declined.",
            },
        )
        self.objects["payment_intent"][intent["id"]] = intent
        return intent

    def _new_subscription(
        self: StripeStub,
        customer: str,
        price: dict[str, Any],
        metadata: dict[str, str],
        livemode: bool,
    ) -> dict[str, Any]:
        start = self.now()
        end = add_interval(start, price["recurring"]["interval"])
        sub_id = self._new_id("sub", livemode)
        item = {
            "id": self._new_id("si", livemode),
            "object": "subscription_item",
            "created": start,
            "current_period_start": start,
            "current_period_end": end,
            "discounts": [],
            "metadata": {},
            "price": copy.deepcopy(price),
            "quantity": 1,
            "subscription": sub_id,
            "tax_rates": [],
        }
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": "active",
            "created": start,
            "start_date": start,
            "billing_cycle_anchor": start,
            "currency": price["currency"],
            "livemode": livemode,
            "metadata": dict(metadata),
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "ended_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "latest_invoice": None,
            "test_clock": None,
            "trial_end": None,
            "trial_start": None,
            "description": None,
            "items": {
                "object": "list",
                "data": [item],
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
        }
        self.objects["subscription"][sub_id] = sub
        self._emit("customer.subscription.created", sub)
        return sub

    def _bill(self: StripeStub, sub: dict[str, Any], reason: str) -> dict[str, Any]:
        """Open the invoice of the subscription's current period and try to charge it."""
        item = sub["items"]["data"][0]
        price = item["price"]
        customer = self.objects["customer"][sub["customer"]]
        live = sub["livemode"]
        invoice = {
            "id": self._new_id("in", live),
            "object": "invoice",
            "customer": sub["customer"],
            "customer_email": customer["email"],
            "currency": price["currency"],
            "amount_due": price["unit_amount"],
            "amount_paid": 0,
            "amount_remaining": price["unit_amount"],
            "subtotal": price["unit_amount"],
            "total": price["unit_amount"],
            "billing_reason": reason,
            "status": "open",
            "attempt_count": 0,
            "attempted": False,
            "created": self.now(),
            "livemode": live,
            "collection_method": "charge_automatically",
            "metadata": {},
            "period_start": item["current_period_start"],
            "period_end": item["current_period_end"],
            "next_payment_attempt": None,
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {
                    "subscription": sub["id"],
                    "metadata": dict(sub["metadata"]),
                },
            },
            "status_transitions": {
                "finalized_at": self.clock,
                "paid_at": None,
                "marked_uncollectible_at": None,
                "voided_at": None,
            },
            "lines": {
                "object": "list",
                "has_more": False,
                "data": [
                    {
                        "id": self._new_id("il", live),
                        "object": "line_item",
                        "amount": price["unit_amount"],
                        "currency": price["currency"],
                        "quantity": 1,
                        "period": {
                            "start": item["current_period_start"],
                            "end": item["current_period_end"],
                        },
                    }
                ],
            },
            "test_clock": None,
        }
        self.objects["invoice"][invoice["id"]] = invoice
        self._invoice_payments[invoice["id"]] = []
        sub["latest_invoice"] = invoice["id"]
        self._emit("invoice.created", invoice)
        self._emit("invoice.finalized", invoice)
        self._attempt(invoice)
        return invoice

    def _attempt(self: StripeStub, invoice: dict[str, Any]) -> None:
        sub = self.objects["subscription"][
            invoice["parent"]["subscription_details"]["subscription"]
        ]
        fails = invoice["customer"] in self.failing_cards
        intent = self._new_intent(
            invoice["amount_due"], invoice["currency"], invoice["livemode"], {}, succeeded=not fails
        )
        self._invoice_payments[invoice["id"]].append(
            {
                "id": self._new_id("inpay", invoice["livemode"]),
                "object": "invoice_payment",
                "amount_paid": 0 if fails else invoice["amount_due"],
                "amount_requested": invoice["amount_due"],
                "created": self.clock,
                "currency": invoice["currency"],
                "invoice": invoice["id"],
                "is_default": True,
                "livemode": invoice["livemode"],
                "status": "open" if fails else "paid",
                "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
                "status_transitions": {
                    "canceled_at": None,
                    "paid_at": None if fails else self.clock,
                },
            }
        )
        invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1)
        if not fails:
            invoice.update(
                status="paid",
                amount_paid=invoice["amount_due"],
                amount_remaining=0,
                next_payment_attempt=None,
            )
            invoice["status_transitions"]["paid_at"] = self.clock
            self._set_status(sub, "active")
            self._emit("invoice_payment.paid", self._invoice_payments[invoice["id"]][-1])
            self._emit("invoice.paid", invoice)
            self._emit("invoice.payment_succeeded", invoice)
            return
        gives_up = invoice["attempt_count"] >= RETRIES
        invoice["next_payment_attempt"] = None if gives_up else self.clock + RETRY_SECONDS
        self._emit("invoice.payment_failed", invoice)
        if gives_up:
            sub["cancellation_details"] = {
                "comment": None,
                "feedback": None,
                "reason": "payment_failed",
            }
            self._end(sub)
        elif invoice["billing_reason"] != "subscription_create":
            self._set_status(sub, "past_due")

    def _set_status(self: StripeStub, sub: dict[str, Any], status: str) -> None:
        if sub["status"] != status:
            before = {"status": sub["status"]}
            sub["status"] = status
            self._emit("customer.subscription.updated", sub, before)

    def _end(self: StripeStub, sub: dict[str, Any]) -> None:
        sub.update(
            status="canceled", canceled_at=sub["canceled_at"] or self.clock, ended_at=self.clock
        )
        self._emit("customer.subscription.deleted", sub)

    def _renew(self: StripeStub, sub: dict[str, Any]) -> None:
        item = sub["items"]["data"][0]
        if sub["cancel_at_period_end"]:
            self._end(sub)
            return
        start = item["current_period_end"]
        item.update(
            current_period_start=start,
            current_period_end=add_interval(start, item["price"]["recurring"]["interval"]),
        )
        self._bill(sub, "subscription_cycle")

    def _next_due(self: StripeStub, target: int) -> tuple[int, Any] | None:
        """The earliest renewal or retry due at or before ``target``."""
        due: list[tuple[int, str, Any]] = []
        for sub in self.objects["subscription"].values():
            if sub["status"] in ("active", "past_due"):
                end = sub["items"]["data"][0]["current_period_end"]
                if end <= target:
                    due.append((end, sub["id"], lambda s=sub: self._renew(s)))
        for invoice in self.objects["invoice"].values():
            when = invoice["next_payment_attempt"]
            if invoice["status"] == "open" and when is not None and when <= target:
                due.append((when, invoice["id"], lambda i=invoice: self._attempt(i)))
        if not due:
            return None
        when, _, action = min(due, key=lambda d: (d[0], d[1]))
        return when, action
