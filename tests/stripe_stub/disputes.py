"""Refunds and disputes in the Stripe stand-in: a refund of any payment, and a chargeback whose
balance transactions (the withdrawal with Stripe's fee, the reinstatement when won) are booked
in the settlement currency, as Stripe books them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.stripe_stub.events import EventsMixin

if TYPE_CHECKING:
    from tests.stripe_stub import StripeStub

DAY = 86_400
DISPUTE_FEE = 1500  # minor units of the settlement currency


class DisputesMixin(EventsMixin):
    """Mixed into StripeStub: refunds and disputes tests start and settle."""

    def refund_payment(
        self: StripeStub, intent_id: str, amount: int | None = None, *, status: str = "succeeded"
    ) -> dict[str, Any]:
        """A refund of any payment (one-time gift, first payment or renewal)."""
        intent = self.objects["payment_intent"][intent_id]
        refund = self.add_refund(
            {
                "livemode": intent["livemode"],
                "currency": intent["currency"],
                "payment_intent": intent_id,
                "created": self.clock,
            },
            intent["amount"] if amount is None else amount,
            status=status,
            created=self.now(),
        )
        refund["charge"] = intent.get("latest_charge")
        self._emit("refund.created", refund)
        return refund

    def open_dispute(
        self: StripeStub,
        intent_id: str,
        *,
        amount: int | None = None,
        reason: str = "fraudulent",
        fee: int = DISPUTE_FEE,
        settlement: tuple[str, float] | None = None,
    ) -> dict[str, Any]:
        """A chargeback: the amount and Stripe's fee are withdrawn at once, in the settlement
        currency (``settlement=("usd", 1.08)`` converts; default: the charge's currency)."""
        intent = self.objects["payment_intent"][intent_id]
        amount = intent["amount"] if amount is None else amount
        dispute = {
            "id": self._new_id("dp", intent["livemode"]),
            "object": "dispute",
            "amount": amount,
            "currency": intent["currency"],
            "charge": intent["latest_charge"],
            "payment_intent": intent_id,
            "created": self.now(),
            "livemode": intent["livemode"],
            "reason": reason,
            "status": "needs_response",
            "is_charge_refundable": False,
            "metadata": {},
            "balance_transactions": [],
            "evidence_details": {
                "due_by": self.clock + 7 * DAY,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
        }
        self._dispute_settlement[dispute["id"]] = settlement or (intent["currency"], 1.0)
        self._balance(dispute, -amount, fee, "Chargeback withdrawal")
        self.objects["dispute"][dispute["id"]] = dispute
        self._emit("charge.dispute.created", dispute)
        self._emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    def close_dispute(
        self: StripeStub, dispute_id: str, *, won: bool, fee_returned: bool = False
    ) -> dict[str, Any]:
        """Lost: the withdrawal stands. Won: the amount comes back (and the fee, where the
        account's region returns it)."""
        dispute = self.objects["dispute"][dispute_id]
        before = {"status": dispute["status"]}
        dispute["status"] = "won" if won else "lost"
        if won:
            fee = -DISPUTE_FEE if fee_returned else 0
            self._balance(dispute, dispute["amount"], fee, "Chargeback reversal")
            self._emit("charge.dispute.funds_reinstated", dispute)
        self._emit("charge.dispute.closed", dispute, before)
        return dispute

    def _balance(
        self: StripeStub, dispute: dict[str, Any], amount: int, fee: int, what: str
    ) -> None:
        currency, rate = self._dispute_settlement[dispute["id"]]
        moved = round(amount * rate)
        txn = {
            "id": self._new_id("txn", dispute["livemode"]),
            "object": "balance_transaction",
            "amount": moved,
            "fee": fee,
            "net": moved - fee,
            "currency": currency,
            "exchange_rate": rate if rate != 1.0 else None,
            "created": self.now(),
            "available_on": self.clock,
            "description": what,
            "source": dispute["id"],
            "status": "available",
            "type": "adjustment",
            "reporting_category": "dispute" if amount < 0 else "dispute_reversal",
            "fee_details": [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Dispute fee",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else [],
        }
        self.objects["balance_transaction"][txn["id"]] = txn
        dispute["balance_transactions"].append(txn)
