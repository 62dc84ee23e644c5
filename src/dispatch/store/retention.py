"""Report queries over recurring gifts (issue 11): per-issue recurring figures, lifetime value
attributed to an issue, and the subscription rows from which MRR and retention are computed.

Lifetime value of an issue = every payment attributed to it (one-time gifts and first payments
recorded from their Checkout Sessions, renewals from paid invoices; a first payment whose
session was never recorded counts through its invoice) less refunds of those payments, plus what
their disputes moved in the balance (a lost one: minus the amount and Stripe's fee; a won one:
what came back), each sum in its own currency.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from dispatch.store import Database

_REFUNDING = "('pending', 'requires_action', 'succeeded')"

#: Every payment attributed to an issue: (issue_id, amount_minor, currency, payment_intent).
_PAYMENTS = """
SELECT d.issue_id AS issue_id, d.amount_minor AS amount_minor, d.currency AS currency,
       COALESCE(d.payment_intent, (SELECT fi.payment_intent FROM subscription_origins o
                                   JOIN subscription_invoices fi
                                     ON fi.subscription_id = o.subscription_id
                                    AND fi.billing_reason = 'subscription_create'
                                   WHERE o.session_id = d.session_id)) AS payment_intent
FROM donations d WHERE d.status = 'paid'
UNION ALL
SELECT o.issue_id, i.amount_minor, i.currency, i.payment_intent
FROM subscription_invoices i JOIN subscription_origins o ON o.subscription_id = i.subscription_id
WHERE i.status = 'paid' AND (i.billing_reason <> 'subscription_create' OR NOT EXISTS (
    SELECT 1 FROM donations d WHERE d.session_id = o.session_id AND d.status = 'paid'))
"""


def lifetime(db: Database, issue_id: str) -> dict[str, int]:
    """{currency: minor units} attributed to the issue, net of refunds and disputes."""
    totals: dict[str, int] = {}
    rows = db.execute(
        f"WITH p AS ({_PAYMENTS}), q AS (SELECT p.currency, p.amount_minor - COALESCE(("
        f"   SELECT SUM(r.amount_minor) FROM refunds r WHERE r.payment_intent = p.payment_intent"
        f"   AND r.currency = p.currency AND r.status IN {_REFUNDING}), 0) AS net_minor"
        f" FROM p WHERE p.issue_id = ?)"
        f" SELECT currency, SUM(net_minor) AS net FROM q GROUP BY currency",
        (issue_id,),
    ).fetchall()
    for row in rows:
        totals[row["currency"]] = int(row["net"])
    disputed = db.execute(
        f"WITH p AS ({_PAYMENTS}) SELECT t.currency AS currency, SUM(t.net_minor) AS net"
        " FROM dispute_transactions t JOIN disputes dp ON dp.id = t.dispute_id"
        " WHERE dp.payment_intent IN (SELECT p.payment_intent FROM p WHERE p.issue_id = ?)"
        " GROUP BY t.currency",
        (issue_id,),
    ).fetchall()
    for row in disputed:
        totals[row["currency"]] = totals.get(row["currency"], 0) + int(row["net"])
    return dict(sorted(totals.items()))


def issue_figures(db: Database, issue_id: str) -> dict[str, Any]:
    """Recurring figures of one issue: donors_started, active, past_due, cancelled, renewals
    (paid invoices after the first), one_time_gifts (counted one-off gifts), first_payments
    and renewals_amounts {currency: minor}."""
    counts = db.execute(
        "SELECT COUNT(*) AS started,"
        " SUM(CASE WHEN s.status IN ('active', 'trialing') THEN 1 ELSE 0 END) AS active,"
        " SUM(CASE WHEN s.status IN ('past_due', 'unpaid') THEN 1 ELSE 0 END) AS past_due,"
        " SUM(CASE WHEN s.status = 'canceled' THEN 1 ELSE 0 END) AS cancelled"
        " FROM subscriptions s JOIN subscription_origins o ON o.subscription_id = s.id"
        " WHERE o.issue_id = ? AND s.status NOT IN ('incomplete', 'incomplete_expired')",
        (issue_id,),
    ).fetchone()
    invoices = db.execute(
        "SELECT i.billing_reason = 'subscription_create' AS first, i.currency AS currency,"
        " COUNT(*) AS n, SUM(i.amount_minor) AS amount"
        " FROM subscription_invoices i JOIN subscription_origins o"
        "   ON o.subscription_id = i.subscription_id"
        " WHERE o.issue_id = ? AND i.status = 'paid' GROUP BY 1, 2",
        (issue_id,),
    ).fetchall()
    one_time = db.execute(
        "SELECT COUNT(*) AS n FROM counted_gifts WHERE issue_id = ? AND checkout_mode = 'payment'",
        (issue_id,),
    ).fetchone()
    first: dict[str, int] = {}
    renewals: dict[str, int] = {}
    renewal_count = 0
    for row in invoices:
        target = first if row["first"] else renewals
        target[row["currency"]] = int(row["amount"])
        if not row["first"]:
            renewal_count += int(row["n"])
    return {
        "donors_started": int(counts["started"] or 0),
        "active": int(counts["active"] or 0),
        "past_due": int(counts["past_due"] or 0),
        "cancelled": int(counts["cancelled"] or 0),
        "renewals": renewal_count,
        "one_time_gifts": int(one_time["n"] or 0),
        "first_payments": dict(sorted(first.items())),
        "renewals_amounts": dict(sorted(renewals.items())),
    }


def subscription_rows(db: Database, issue_id: str | None = None) -> list[sqlite3.Row]:
    """The outlet's subscriptions that got going, with their issue, for MRR and
    retention: id, issue_id, subscriber_id, email, status, amount_minor, currency,
    billing_interval, started_at, ended_at, cancel_reason, failures (failed charges seen) and
    paid_invoices."""
    sql = (
        "SELECT s.id, o.issue_id, o.subscriber_id, s.status, s.amount_minor, s.currency,"
        " s.billing_interval, s.started_at, s.ended_at, s.canceled_at, s.cancel_reason,"
        " (SELECT email FROM subscribers r WHERE r.id = o.subscriber_id) AS email,"
        " (SELECT COUNT(*) FROM invoice_failures f WHERE f.subscription_id = s.id) AS failures,"
        " (SELECT COUNT(*) FROM subscription_invoices i WHERE i.subscription_id = s.id"
        "   AND i.status = 'paid') AS paid_invoices"
        " FROM subscriptions s JOIN subscription_origins o ON o.subscription_id = s.id"
        " WHERE s.status NOT IN ('incomplete', 'incomplete_expired')"
    )
    params: tuple[Any, ...] = ()
    if issue_id is not None:
        sql += " AND o.issue_id = ?"
        params = (issue_id,)
    return db.execute(sql + " ORDER BY s.started_at, s.id", params).fetchall()


def donor_history(db: Database, subscriber_id: int) -> list[sqlite3.Row]:
    """One donor's payments, oldest first: kind ('gift', 'first_payment', 'renewal',
    'failed'), issue_id, amount_minor, currency, at."""
    return db.execute(
        "SELECT CASE WHEN d.checkout_mode = 'subscription' THEN 'first_payment' ELSE 'gift' END"
        " AS kind, d.issue_id, d.amount_minor, d.currency,"
        " COALESCE(d.paid_at, d.session_created_at) AS at"
        " FROM donations d WHERE d.subscriber_id = ? AND d.status = 'paid'"
        " UNION ALL"
        " SELECT 'renewal', o.issue_id, i.amount_minor, i.currency, COALESCE(i.paid_at,"
        " i.created_at) FROM subscription_invoices i JOIN subscription_origins o"
        "   ON o.subscription_id = i.subscription_id"
        " WHERE o.subscriber_id = ? AND i.status = 'paid'"
        "   AND i.billing_reason <> 'subscription_create'"
        " UNION ALL"
        " SELECT 'failed', o.issue_id, 0, '', f.failed_at FROM invoice_failures f"
        " JOIN subscription_origins o ON o.subscription_id = f.subscription_id"
        " WHERE o.subscriber_id = ?"
        " ORDER BY at",
        (subscriber_id, subscriber_id, subscriber_id),
    ).fetchall()


def new_subscriptions(db: Database, first_day: str, last_day: str) -> list[sqlite3.Row]:
    """The outlet's subscriptions that started between two ISO dates (inclusive, UTC), with
    the donor's address and name where the reader is still a subscriber."""
    return db.execute(
        "SELECT s.id, s.status, s.amount_minor, s.currency, s.billing_interval, s.started_at,"
        " o.issue_id, sub.email, sub.name"
        " FROM subscriptions s JOIN subscription_origins o ON o.subscription_id = s.id"
        " LEFT JOIN subscribers sub ON sub.id = o.subscriber_id"
        " WHERE s.started_at >= ? AND s.started_at < ?"
        " AND s.status NOT IN ('incomplete', 'incomplete_expired')"
        " ORDER BY s.started_at, s.id",
        (first_day, _next_day(last_day)),
    ).fetchall()


def _next_day(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
