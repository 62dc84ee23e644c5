"""Recurring gifts end to end (issue 11): months of renewals billed by the Stripe stand-in's
clock, a cancellation, a failed card then recovered, a lost dispute settled in another currency,
a refund of a renewal, and one-time gifts; recorded by `donations sync`, by webhook deliveries
(each twice, in shuffled order) and by a sync after missed deliveries. The per-issue figures
must equal what the stand-in holds, to the minor unit, in each currency."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from dispatch.jobs.donations import handle_webhook, sync_donations
from dispatch.store import donations as donation_store
from dispatch.store import recurring as store
from dispatch.store import retention
from tests.stripe_stub.events import signed

SECRET = "whsec_recurringTestSecret0123456789"


@pytest.fixture
def link(stripe_stub):
    return stripe_stub.add_payment_link(url="https://donate.stripe.test/b/monthly")


@pytest.fixture
def settings(make_settings, stripe_env, link):
    return make_settings(
        **stripe_env, DISPATCH_PAYMENT_LINK=link["url"], STRIPE_WEBHOOK_SECRET=SECRET
    )


@pytest.fixture
def story(db, stripe_stub, link, ledger):
    """Six months of an outlet's giving; returns the tokens' issues."""
    donation_store.save_payment_link(
        db, link_id=link["id"], url=link["url"], kind="monthly", livemode=False
    )
    t = {
        name: ledger(issue, f"{name}@example.test")
        for name, issue in (
            ("ana", "2026-W47"),
            ("ben", "2026-W47"),
            ("cleo", "2026-W48"),
            ("dan", "2026-W47"),
        )
    }
    s = stripe_stub
    ana, ben, cleo = (
        s.start_subscription(
            payment_link=link["id"],
            token=t[name],
            amount=amount,
            currency=currency,
            email=f"{name}@example.test",
        )
        for name, amount, currency in (
            ("ana", 1000, "eur"),
            ("ben", 500, "usd"),
            ("cleo", 2000, "eur"),
        )
    )
    s.add_session(payment_link=link["id"], token=t["dan"], amount=2500, currency="eur")
    s.advance(months=2, days=1)
    s.set_card(ben["customer"], fails=True)
    s.advance(months=1)
    assert s.objects["subscription"][ben["subscription"]]["status"] == "past_due"
    s.set_card(ben["customer"], fails=False)
    s.advance(days=3)
    s.cancel_subscription(cleo["subscription"])

    def renewals(customer: str) -> list[dict]:
        """The customer's renewal invoices (not the first one), in the stand-in's order."""
        return [
            i
            for i in s.objects["invoice"].values()
            if i["customer"] == customer and i["billing_reason"] == "subscription_cycle"
        ]

    renewal = renewals(ana["customer"])
    s.refund_payment(s._invoice_payments[renewal[-1]["id"]][-1]["payment"]["payment_intent"], 400)
    first = s._invoice_payments[ana["invoice"]][-1]["payment"]["payment_intent"]
    dispute = s.open_dispute(first, settlement=("usd", 1.1))
    s.close_dispute(dispute["id"], won=False)
    # ben's first renewal is disputed too, and won: the amount comes back, Stripe's fee not.
    ben_renewal = renewals(ben["customer"])[0]
    won = s.open_dispute(s._invoice_payments[ben_renewal["id"]][-1]["payment"]["payment_intent"])
    s.close_dispute(won["id"], won=True)
    s.advance(months=3)
    return {"ana": ana, "ben": ben, "cleo": cleo}


def expected(stub, db):
    """Per issue, from the stand-in's own objects: lifetime, renewals, subscriptions."""
    issue_of = {
        r["token"]: r["issue_id"]
        for r in db.execute("SELECT token, issue_id FROM deliveries").fetchall()
    }
    sessions = stub.objects["checkout.session"].values()
    sub_issue = {
        c["subscription"]: issue_of[c["client_reference_id"]]
        for c in sessions
        if c.get("subscription")
    }
    money: dict[str, Counter] = defaultdict(Counter)
    renewals: Counter = Counter()
    intents: dict[str, str] = {}
    for c in sessions:
        if c["status"] == "complete" and c["mode"] == "payment":
            money[issue_of[c["client_reference_id"]]][c["currency"]] += c["amount_total"]
            intents[c["payment_intent"]] = issue_of[c["client_reference_id"]]
    for inv in stub.objects["invoice"].values():
        sub = inv["parent"]["subscription_details"]["subscription"]
        if inv["status"] == "paid":
            money[sub_issue[sub]][inv["currency"]] += inv["amount_paid"]
            renewals[sub_issue[sub]] += inv["billing_reason"] == "subscription_cycle"
            for pay in stub._invoice_payments[inv["id"]]:
                intents[pay["payment"]["payment_intent"]] = sub_issue[sub]
    for refund in stub.objects["refund"].values():
        money[intents[refund["payment_intent"]]][refund["currency"]] -= refund["amount"]
    for dispute in stub.objects["dispute"].values():
        for txn in dispute["balance_transactions"]:
            money[intents[dispute["payment_intent"]]][txn["currency"]] += txn["net"]
    subs = Counter((sub_issue[s["id"]], s["status"]) for s in stub.objects["subscription"].values())
    return {
        issue: {
            "lifetime": dict(sorted(m.items())),
            "renewals": renewals[issue],
            "active": subs[(issue, "active")],
            "cancelled": subs[(issue, "canceled")],
            "started": sum(n for (i, _), n in subs.items() if i == issue),
        }
        for issue, m in money.items()
    }


def figures(db):
    out = {}
    for issue in ("2026-W47", "2026-W48"):
        f = retention.issue_figures(db, issue)
        out[issue] = {
            "lifetime": retention.lifetime(db, issue),
            "renewals": f["renewals"],
            "active": f["active"],
            "cancelled": f["cancelled"],
            "started": f["donors_started"],
        }
    return out


def test_story_numbers_are_what_the_scenario_says(db, stripe_stub, story):
    want = expected(stripe_stub, db)
    # ana: 1000 eur x 7 paid - 400 refund; dispute: -1100 - 1500 usd; dan 2500 eur;
    # ben 500 usd x 7 (one renewal paid late, after the failed attempt).
    assert want["2026-W47"]["lifetime"] == {"eur": 7000 - 400 + 2500, "usd": 3500 - 2600 - 1500}
    assert want["2026-W47"]["renewals"] == 12
    assert want["2026-W48"] == {
        "lifetime": {"eur": 8000},
        "renewals": 3,
        "active": 0,
        "cancelled": 1,
        "started": 1,
    }


def test_sync_records_what_the_stand_in_holds_and_a_rerun_changes_nothing(
    db, settings, stripe_stub, story
):
    first = sync_donations(db, settings).as_dict()
    assert figures(db) == expected(stripe_stub, db)
    again = sync_donations(db, settings).as_dict()
    assert (
        first["invoices_new"] == len(stripe_stub.objects["invoice"]) == 18
        and first["disputes_new"] == 2
    )
    assert all(again[k] == 0 for k in again if k.endswith(("_new", "_updated")) or k == "new")
    assert figures(db) == expected(stripe_stub, db)
    ben = store.subscription(db, story["ben"]["subscription"])
    assert ben["status"] == "active" and ben["issue_id"] == "2026-W47"
    [failure] = db.execute("SELECT * FROM invoice_failures").fetchall()
    assert failure["subscription_id"] == ben["id"]
    cleo = store.subscription(db, story["cleo"]["subscription"])
    assert cleo["status"] == "canceled" and cleo["cancel_reason"] == "cancellation_requested"


def _deliver(db, settings, events):
    outcomes = Counter()
    for event in events:
        body, headers = signed(event, SECRET)
        outcomes[handle_webhook(db, settings, body, headers["Stripe-Signature"]).outcome] += 1
    return outcomes


@pytest.mark.parametrize("seed", range(6))
def test_webhooks_twice_and_out_of_order_give_the_same_records(
    db, settings, stripe_stub, story, seed
):
    events = stripe_stub.events() * 2
    random.Random(seed).shuffle(events)
    outcomes = _deliver(db, settings, events)
    assert outcomes["duplicate"] > 0
    # Statuses as Stripe holds them, whatever order their copies came in.
    for sub in stripe_stub.objects["subscription"].values():
        assert store.subscription(db, sub["id"])["status"] == sub["status"]
    # A monthly Payment Link's subscription is tied to its reader by the session, which may
    # come last: a stale copy never undoes a later state, and nothing counts twice.
    assert figures(db) == expected(stripe_stub, db)


def test_sync_after_missed_webhooks_catches_up(db, settings, stripe_stub, story):
    events = stripe_stub.events()
    _deliver(db, settings, events[: len(events) // 2])
    sync_donations(db, settings)
    assert figures(db) == expected(stripe_stub, db)
    _deliver(db, settings, events[len(events) // 2 :])  # late deliveries change nothing
    assert figures(db) == expected(stripe_stub, db)
