"""store.recurring on a real SQLite file: idempotent upserts keyed by Stripe ids, states that
only move forward whatever order copies arrive in."""

from __future__ import annotations

from dispatch.store import recurring as store
from dispatch.store import retention

T0 = 1_780_000_000


def _sub(**over):
    facts = {
        "subscription_id": "sub_1",
        "livemode": False,
        "customer": "cus_1",
        "status": "active",
        "amount_minor": 1000,
        "currency": "EUR",
        "interval": "month",
        "started": T0,
        "canceled": None,
        "ended": None,
        "cancel_reason": None,
        "cancel_at_period_end": False,
    }
    return {**facts, **over}


def _invoice(**over):
    facts = {
        "invoice_id": "in_1",
        "subscription_id": "sub_1",
        "livemode": False,
        "billing_reason": "subscription_cycle",
        "status": "paid",
        "amount_minor": 1000,
        "currency": "eur",
        "payment_intent": None,
        "attempt_count": 1,
        "created": T0,
        "paid_at": T0,
    }
    return {**facts, **over}


def test_a_cancelled_subscription_stays_cancelled_when_a_stale_active_copy_arrives(db):
    assert store.record_subscription(db, _sub()) == "new"
    assert store.live_subscription_ids(db) == []  # not known to be the outlet's
    store.record_origin(db, "sub_1", token=None, session_id="cs_1")
    assert store.live_subscription_ids(db) == ["sub_1"]
    ended = _sub(status="canceled", canceled=T0 + 99, ended=T0 + 99, cancel_reason="payment_failed")
    assert store.record_subscription(db, ended) == "updated"
    assert store.record_subscription(db, _sub()) == "unchanged"
    assert store.record_subscription(db, ended) == "unchanged"
    row = store.subscription(db, "sub_1")
    assert (row["status"], row["cancel_reason"], row["currency"]) == (
        "canceled",
        "payment_failed",
        "eur",
    )
    assert store.live_subscription_ids(db) == []


def test_a_paid_invoice_is_not_undone_and_its_failures_are_counted_once(db):
    assert store.record_invoice(db, _invoice(status="open", attempt_count=1)) == "new"
    assert store.record_invoice(db, _invoice(attempt_count=2)) == "updated"
    assert store.record_invoice(db, _invoice(status="open", attempt_count=1)) == "unchanged"
    assert store.record_invoice(db, _invoice(attempt_count=2)) == "unchanged"
    failures = db.execute("SELECT invoice_id, attempt FROM invoice_failures").fetchall()
    assert [tuple(f) for f in failures] == [("in_1", 1)]
    assert store.open_invoice_ids(db) == []


def test_the_paying_intent_may_arrive_before_its_invoice(db):
    assert store.record_invoice_payment(db, "in_1", "pi_1") == "new"
    store.record_invoice(db, _invoice())
    row = db.execute("SELECT payment_intent FROM subscription_invoices").fetchone()
    assert row["payment_intent"] == "pi_1"
    assert store.record_invoice_payment(db, "in_1", "pi_1") == "unchanged"


def test_dispute_transactions_are_kept_once_and_a_closed_dispute_stays_closed(db):
    txn = ("txn_1", -1100, 1500, -2600, "USD", T0)
    facts = {
        "dispute_id": "dp_1",
        "livemode": False,
        "payment_intent": "pi_1",
        "charge": "ch_1",
        "amount_minor": 1000,
        "currency": "eur",
        "status": "lost",
        "reason": "fraudulent",
        "created": T0,
        "transactions": [txn],
    }
    assert store.record_dispute(db, facts) == "new"
    assert store.record_dispute(db, {**facts, "status": "needs_response"}) == "unchanged"
    rows = db.execute("SELECT net_minor, currency FROM dispute_transactions").fetchall()
    assert [tuple(r) for r in rows] == [(-2600, "usd")]
    assert store.open_dispute_ids(db) == []


def test_an_unattributed_subscription_is_in_no_issue_figures(db):
    store.record_subscription(db, _sub())
    store.record_invoice(db, _invoice())
    assert retention.subscription_rows(db) == []
    assert retention.issue_figures(db, "2026-W47")["renewals"] == 0
    assert retention.lifetime(db, "2026-W47") == {}


def test_recurring_donors_are_supporters_failing_cards_are_named_and_lapsed_ones_renew(db, ledger):
    from datetime import timedelta

    from dispatch.store import campaigns, utcnow

    people = {name: ledger("2026-W40", f"{name}@example.test") for name in ("ana", "ben", "cy")}
    ids = {
        r["email"].split("@")[0]: r["id"]
        for r in db.execute("SELECT id, email FROM subscribers").fetchall()
    }
    for n, (name, status) in enumerate(
        (("ana", "active"), ("ben", "past_due"), ("cy", "canceled"))
    ):
        sub_id = f"sub_{n}"
        store.record_origin(db, sub_id, token=people[name])
        store.record_subscription(db, _sub(subscription_id=sub_id, status=status))
    # Their gifts started long ago: by date alone all three would be non-donors again.
    found = campaigns.personas(db, utcnow() + timedelta(days=900), 30, 365)
    assert found == {
        ids["ana"]: "supporter",
        ids["ben"]: "card_failing",
        ids["cy"]: "lapsed_donor",
    }
