"""Sessions made over the API in the Stripe stand-in: POST /v1/checkout/sessions (price_data,
recurring, subscription_data / payment_intent_data metadata, Stripe's refusals of mixed modes)
and POST /v1/billing_portal/sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.stripe_stub import StripeStub


class CheckoutMixin:
    """Mixed into StripeStub: the create routes of Checkout and the customer portal."""

    def create_checkout_session(
        self: StripeStub, form: dict[str, Any], livemode: bool
    ) -> tuple[int, dict[str, Any]]:
        """POST /v1/checkout/sessions with ``price_data`` (or a stored price)."""
        from tests.stripe_stub import _error

        mode = form.get("mode", "payment")
        items = form.get("line_items") or []
        if mode not in ("payment", "subscription"):
            return 400, _error("invalid_request_error", f"Invalid mode: {mode}")
        if len(items) != 1:
            return 400, _error("invalid_request_error", "line_items must have one item here.")
        item = items[0]
        if "price" in item:
            price = self.objects["price"].get(item["price"])
            if price is None:
                return 400, _error("invalid_request_error", f"No such price: '{item['price']}'")
        else:
            data = item.get("price_data") or {}
            if not data.get("currency") or not str(data.get("unit_amount", "")).isdigit():
                return 400, _error(
                    "invalid_request_error",
                    "line_items[0][price_data] needs currency and unit_amount.",
                )
            if not data.get("product") and not (data.get("product_data") or {}).get("name"):
                return 400, _error(
                    "invalid_request_error",
                    "line_items[0][price_data] needs product or product_data.",
                )
            interval = (data.get("recurring") or {}).get("interval")
            if interval not in (None, "day", "week", "month", "year"):
                return 400, _error("invalid_request_error", f"Invalid interval: {interval}")
            price = self._inline_price(
                data["currency"].lower(), int(data["unit_amount"]), interval, livemode
            )
        if mode == "subscription" and price["recurring"] is None:
            return 400, _error(
                "invalid_request_error",
                "You must provide at least one "
                "recurring price in `subscription` mode when using prices.",
            )
        if mode == "payment" and price["recurring"] is not None:
            return 400, _error(
                "invalid_request_error",
                "You specified `payment` mode but "
                "passed a recurring price. Either switch to `subscription` mode "
                "or use only one-time prices.",
            )
        if mode == "subscription" and "payment_intent_data" in form:
            return 400, _error(
                "invalid_request_error",
                "You can not pass `payment_intent_data` in `subscription` mode.",
            )
        quantity = int(item.get("quantity", 1))
        session = self.add_session(
            payment_link=None,
            amount=price["unit_amount"] * quantity,
            currency=price["currency"],
            token=form.get("client_reference_id"),
            email=None,
            status="open",
            payment_status="unpaid",
            livemode=livemode,
            mode=mode,
        )
        self.objects["payment_intent"].pop(session["payment_intent"], None)
        session.update(
            payment_intent=None,
            customer_email=form.get("customer_email"),
            metadata=form.get("metadata", {}),
            success_url=form.get("success_url"),
            cancel_url=form.get("cancel_url"),
            submit_type=form.get("submit_type"),
            url=f"https://checkout.stripe.com/c/pay/{session['id']}",
            subscription=None,
            invoice=None,
            customer=None,
        )
        self._session_extra[session["id"]] = {
            "price": price,
            "subscription_metadata": (form.get("subscription_data") or {}).get("metadata", {}),
            "intent_metadata": (form.get("payment_intent_data") or {}).get("metadata", {}),
        }
        return 200, session

    def create_portal_session(
        self: StripeStub, form: dict[str, Any], livemode: bool
    ) -> tuple[int, dict[str, Any]]:
        """POST /v1/billing_portal/sessions."""
        from tests.stripe_stub import _error, _mode_error

        customer = self.objects["customer"].get(form.get("customer", ""))
        if customer is None:
            return 400, _error(
                "invalid_request_error",
                f"No such customer: '{form.get('customer')}'",
                "resource_missing",
            )
        if customer["livemode"] != livemode:
            return 400, _mode_error("customer", customer["id"], livemode)
        portal = {
            "id": self._new_id("bps", livemode),
            "object": "billing_portal.session",
            "configuration": "bpc_stub_default",
            "created": self.now(),
            "customer": customer["id"],
            "customer_account": None,
            "flow": None,
            "livemode": livemode,
            "locale": form.get("locale"),
            "on_behalf_of": None,
            "return_url": form.get("return_url"),
        }
        portal["url"] = f"https://billing.stripe.com/p/session/{portal['id']}"
        self.objects["billing_portal.session"][portal["id"]] = portal
        return 200, portal
