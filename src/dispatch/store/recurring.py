"""Recurring gifts (issue 11): subscriptions, their invoices, failed charges and disputes, and
the report queries over them (per-issue figures, lifetime value, the rows MRR and retention are
computed from).

Every upsert is keyed by the Stripe id and is idempotent; states only move forward (an invoice
once paid stays paid, a subscription once cancelled stays cancelled), so a stale copy from an
out-of-order event or an overlapping sync never undoes a later one. Attribution goes through
``subscription_origins``: the delivery token that started a subscription, resolved once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from dispatch.store import Database, to_db_time, utcnow
from dispatch.store.donations import _claim_mode, from_unix
from dispatch.store.supporters import ENDED

_INVOICE_RANK = {"draft": 0, "open": 1, "paid": 2, "void": 2, "uncollectible": 2}
_REFUNDED = "('pending', 'requires_action', 'succeeded')"


def _when(seconds: int | None) -> str | None:
    return from_unix(seconds) if seconds else None


# -- origins ------------------------------------------------------------------------------


def record_origin(
    db: Database, subscription_id: str, *, token: str | None, session_id: str | None = None
) -> str:
    """Remember which delivery token (and Checkout Session) started a subscription; the first
    attribution found is kept. Returns 'new', 'updated' or 'unchanged'."""
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        delivery = None
        if token:
            delivery = conn.execute(
                "SELECT id, issue_id, subscriber_id FROM deliveries WHERE token = ?", (token,)
            ).fetchone()
        existing = conn.execute(
            "SELECT * FROM subscription_origins WHERE subscription_id = ?", (subscription_id,)
        ).fetchone()
        if existing is None:
            conn.execute(
                "INSERT INTO subscription_origins (subscription_id, session_id, token,"
                " delivery_id, issue_id, subscriber_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    subscription_id,
                    session_id,
                    token,
                    delivery["id"] if delivery else None,
                    delivery["issue_id"] if delivery else None,
                    delivery["subscriber_id"] if delivery else None,
                    now,
                ),
            )
            return "new"
        updates: dict[str, Any] = {}
        if session_id and not existing["session_id"]:
            updates["session_id"] = session_id
        if delivery is not None and existing["delivery_id"] is None and not existing["issue_id"]:
            updates.update(
                token=token,
                delivery_id=delivery["id"],
                issue_id=delivery["issue_id"],
                subscriber_id=delivery["subscriber_id"],
            )
        if not updates:
            return "unchanged"
        conn.execute(
            f"UPDATE subscription_origins SET {', '.join(f'{k} = ?' for k in updates)}"
            " WHERE subscription_id = ?",
            (*updates.values(), subscription_id),
        )
        return "updated"


def origin_session_known(db: Database, subscription_id: str) -> bool:
    """Whether the Checkout Session that started a subscription is known (its first payment
    is then the session's gift, not counted again through the first invoice)."""
    row = db.execute(
        "SELECT session_id FROM subscription_origins WHERE subscription_id = ?",
        (subscription_id,),
    ).fetchone()
    return row is not None and bool(row["session_id"])


def is_outlets_subscription(db: Database, subscription_id: str) -> bool:
    """A subscription Dispatch knows started from one of the outlet's links or pages."""
    row = db.execute(
        "SELECT 1 FROM subscription_origins WHERE subscription_id = ?", (subscription_id,)
    ).fetchone()
    return row is not None


# -- subscriptions ------------------------------------------------------------------------


def record_subscription(db: Database, facts: Mapping[str, Any]) -> str:
    """Upsert one subscription as Stripe reports it. ``facts``: subscription_id, livemode,
    customer, status, amount_minor, currency, interval, started (Unix), canceled, ended,
    cancel_reason, cancel_at_period_end."""
    now = to_db_time(utcnow())
    values = {
        "livemode": int(bool(facts["livemode"])),
        "customer": facts.get("customer"),
        "status": facts["status"],
        "amount_minor": int(facts["amount_minor"]),
        "currency": str(facts["currency"]).lower(),
        "billing_interval": facts["interval"],
        "started_at": from_unix(facts["started"]),
        "canceled_at": _when(facts.get("canceled")),
        "ended_at": _when(facts.get("ended")),
        "cancel_reason": facts.get("cancel_reason"),
        "cancel_at_period_end": int(bool(facts.get("cancel_at_period_end"))),
        "latest_invoice": facts.get("latest_invoice"),
    }
    with db.transaction() as conn:
        _claim_mode(conn, bool(facts["livemode"]))
        existing = conn.execute(
            "SELECT * FROM subscriptions WHERE id = ?", (facts["subscription_id"],)
        ).fetchone()
        if existing is not None and values["latest_invoice"] is None:
            values["latest_invoice"] = existing["latest_invoice"]
        if existing is not None and _older_invoice(
            conn, values["latest_invoice"], existing["latest_invoice"]
        ):
            return "unchanged"  # a copy from before the latest renewal
        values["status"] = _settled_status(conn, values["status"], values["latest_invoice"])
        if existing is None:
            conn.execute(
                f"INSERT INTO subscriptions ({', '.join(values)}, id, first_seen_at, updated_at)"
                f" VALUES ({', '.join('?' for _ in values)}, ?, ?, ?)",
                (*values.values(), facts["subscription_id"], now, now),
            )
            return "new"
        if existing["status"] in ENDED and values["status"] not in ENDED:
            return "unchanged"  # a stale copy from before the cancellation
        for key in ("canceled_at", "ended_at", "cancel_reason"):
            if values[key] is None and existing[key] is not None:
                values[key] = existing[key]
        return _update(conn, "subscriptions", existing, values, now)


def _older_invoice(conn: sqlite3.Connection, copy: str | None, stored: str | None) -> bool:
    """Whether a copy names an invoice created before the one the stored copy names."""
    if not copy or not stored or copy == stored:
        return False
    found = conn.execute(
        "SELECT id, created_at FROM subscription_invoices WHERE id IN (?, ?)", (copy, stored)
    ).fetchall()
    rows = {r["id"]: r["created_at"] for r in found}
    return copy in rows and stored in rows and rows[copy] < rows[stored]


def _settled_status(conn: sqlite3.Connection, status: str, latest: str | None) -> str:
    """Between 'active' and 'past_due' copies of one period (they arrive in any order), the
    latest invoice decides: paid means the card went through, open after a failed attempt
    means Stripe is still retrying. Other statuses are taken as Stripe reports them."""
    if status not in ("active", "past_due") or not latest:
        return status
    row = conn.execute(
        "SELECT status, attempt_count FROM subscription_invoices WHERE id = ?", (latest,)
    ).fetchone()
    if row is None:
        return status
    if row["status"] == "paid":
        return "active"
    if row["status"] == "open" and row["attempt_count"] > 0:
        return "past_due"
    return status


def _settle_subscription(
    conn: sqlite3.Connection, sub_id: str, invoice_id: str, now: str | None
) -> None:
    """An invoice recorded after its subscription's copy settles active vs past_due."""
    row = conn.execute(
        "SELECT status, latest_invoice FROM subscriptions WHERE id = ?", (sub_id,)
    ).fetchone()
    if row is None or row["latest_invoice"] != invoice_id:
        return
    settled = _settled_status(conn, row["status"], invoice_id)
    if settled != row["status"]:
        conn.execute(
            "UPDATE subscriptions SET status = ?, updated_at = ? WHERE id = ?",
            (settled, now, sub_id),
        )


def _update(
    conn: sqlite3.Connection,
    table: str,
    existing: sqlite3.Row,
    values: dict[str, Any],
    now: str | None,
) -> str:
    changed = {k: v for k, v in values.items() if existing[k] != v}
    if not changed:
        return "unchanged"
    conn.execute(
        f"UPDATE {table} SET {', '.join(f'{k} = ?' for k in changed)}, updated_at = ? WHERE id = ?",
        (*changed.values(), now, existing["id"]),
    )
    return "updated"


def subscription(db: Database, subscription_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT s.*, o.issue_id, o.subscriber_id, o.token FROM subscriptions s"
        " LEFT JOIN subscription_origins o ON o.subscription_id = s.id WHERE s.id = ?",
        (subscription_id,),
    ).fetchone()
    return row


def live_subscription_ids(db: Database) -> list[str]:
    """The outlet's subscriptions not ended yet, to re-read on every sync (their status
    changes later); other subscriptions of the account are not re-read."""
    rows = db.execute(
        "SELECT s.id FROM subscriptions s JOIN subscription_origins o ON o.subscription_id = s.id"
        f" WHERE s.status NOT IN {ENDED!r} ORDER BY s.id"
    ).fetchall()
    return [r["id"] for r in rows]


# -- invoices -----------------------------------------------------------------------------


def record_invoice(db: Database, facts: Mapping[str, Any]) -> str:
    """Upsert one subscription invoice; each failed attempt (all of ``attempt_count`` but a
    paying last one) is also kept as a failure row, dated by the invoice. ``facts``:
    invoice_id, subscription_id, livemode, billing_reason, status, amount_minor, currency,
    payment_intent, attempt_count, created, paid_at (Unix)."""
    now = to_db_time(utcnow())
    values = {
        "subscription_id": facts["subscription_id"],
        "livemode": int(bool(facts["livemode"])),
        "billing_reason": facts["billing_reason"],
        "status": facts["status"],
        "amount_minor": int(facts["amount_minor"]),
        "currency": str(facts["currency"]).lower(),
        "payment_intent": facts.get("payment_intent"),
        "attempt_count": int(facts.get("attempt_count") or 0),
        "created_at": from_unix(facts["created"]),
        "paid_at": _when(facts.get("paid_at")),
    }
    with db.transaction() as conn:
        _claim_mode(conn, bool(facts["livemode"]))
        # Every attempt but a paying last one failed: a paid invoice with attempt_count 2 is a
        # card that failed once and recovered (seen so by a sync that missed the failure).
        failed = values["attempt_count"] - (1 if facts["status"] == "paid" else 0)
        for attempt in range(1, failed + 1):
            conn.execute(
                "INSERT INTO invoice_failures (invoice_id, attempt, subscription_id, failed_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (invoice_id, attempt) DO NOTHING",
                (
                    facts["invoice_id"],
                    attempt,
                    facts["subscription_id"],
                    from_unix(facts["created"]),
                ),
            )
        if values["payment_intent"] is None:
            known = conn.execute(
                "SELECT payment_intent FROM invoice_intents WHERE invoice_id = ?",
                (facts["invoice_id"],),
            ).fetchone()
            values["payment_intent"] = known["payment_intent"] if known else None
        existing = conn.execute(
            "SELECT * FROM subscription_invoices WHERE id = ?", (facts["invoice_id"],)
        ).fetchone()
        if existing is None:
            conn.execute(
                f"INSERT INTO subscription_invoices ({', '.join(values)}, id, first_seen_at,"
                f" updated_at) VALUES ({', '.join('?' for _ in values)}, ?, ?, ?)",
                (*values.values(), facts["invoice_id"], now, now),
            )
            _settle_subscription(conn, facts["subscription_id"], facts["invoice_id"], now)
            return "new"
        if _INVOICE_RANK.get(existing["status"], 0) > _INVOICE_RANK.get(values["status"], 0):
            return "unchanged"  # never back from paid (a stale copy)
        values["attempt_count"] = max(values["attempt_count"], existing["attempt_count"])
        for key in ("payment_intent", "paid_at"):
            if values[key] is None:
                values[key] = existing[key]
        outcome = _update(conn, "subscription_invoices", existing, values, now)
        _settle_subscription(conn, facts["subscription_id"], facts["invoice_id"], now)
        return outcome


def record_invoice_payment(db: Database, invoice_id: str, payment_intent: str) -> str:
    """The PaymentIntent that paid an invoice (``invoice_payment.paid``; invoices carry their
    payments only when expanded), kept even when the invoice is not recorded yet."""
    with db.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO invoice_intents (invoice_id, payment_intent) VALUES (?, ?)"
            " ON CONFLICT (invoice_id) DO NOTHING",
            (invoice_id, payment_intent),
        )
        updated = conn.execute(
            "UPDATE subscription_invoices SET payment_intent = ?, updated_at = ?"
            " WHERE id = ? AND payment_intent IS NULL",
            (payment_intent, to_db_time(utcnow()), invoice_id),
        )
        return "new" if cur.rowcount or updated.rowcount else "unchanged"


def open_invoice_ids(db: Database) -> list[str]:
    rows = db.execute(
        "SELECT id FROM subscription_invoices WHERE status IN ('draft', 'open') ORDER BY id"
    ).fetchall()
    return [r["id"] for r in rows]


# -- disputes -----------------------------------------------------------------------------


def record_dispute(db: Database, facts: Mapping[str, Any]) -> str:
    """Upsert a dispute and the balance transactions it carries. ``facts``: dispute_id,
    livemode, payment_intent, charge, amount_minor, currency, status, reason, created,
    transactions [(id, amount_minor, fee_minor, net_minor, currency, created)]."""
    now = to_db_time(utcnow())
    values = {
        "livemode": int(bool(facts["livemode"])),
        "payment_intent": facts.get("payment_intent"),
        "charge": facts.get("charge"),
        "amount_minor": int(facts["amount_minor"]),
        "currency": str(facts["currency"]).lower(),
        "status": facts["status"],
        "reason": facts.get("reason"),
        "created_at": from_unix(facts["created"]),
    }
    with db.transaction() as conn:
        _claim_mode(conn, bool(facts["livemode"]))
        added = 0
        for txn_id, amount, fee, net, currency, created in facts.get("transactions", ()):
            cur = conn.execute(
                "INSERT INTO dispute_transactions (id, dispute_id, amount_minor, fee_minor,"
                " net_minor, currency, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (
                    txn_id,
                    facts["dispute_id"],
                    int(amount),
                    int(fee),
                    int(net),
                    str(currency).lower(),
                    from_unix(created),
                ),
            )
            added += cur.rowcount
        existing = conn.execute(
            "SELECT * FROM disputes WHERE id = ?", (facts["dispute_id"],)
        ).fetchone()
        if existing is None:
            conn.execute(
                f"INSERT INTO disputes ({', '.join(values)}, id, updated_at)"
                f" VALUES ({', '.join('?' for _ in values)}, ?, ?)",
                (*values.values(), facts["dispute_id"], now),
            )
            return "new"
        if existing["status"] in ("won", "lost") and values["status"] not in ("won", "lost"):
            values["status"] = existing["status"]
        outcome = _update(conn, "disputes", existing, values, now)
        return "updated" if added and outcome == "unchanged" else outcome


def open_dispute_ids(db: Database) -> list[str]:
    rows = db.execute(
        "SELECT id FROM disputes WHERE status NOT IN ('won', 'lost', 'prevented') ORDER BY id"
    ).fetchall()
    return [r["id"] for r in rows]
