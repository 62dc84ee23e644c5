"""The thank-you ledger (issue 4): one ``donation_thanks`` row per paid donation, fixed together
with its send-ledger row, so each gift is thanked at most once whatever happens.

Each thank-you is its own issue of kind 'thanks' (``thanks-<donation id>``) with one
``deliveries`` row, sent by the normal send engine: pending -> sending -> sent | failed, and a
crash mid-message leaves it 'uncertain', never resent by itself. ``donation_thanks.state``
mirrors the delivery's state after each send (or 'skipped' when nobody can be thanked).
"""

from __future__ import annotations

import sqlite3

from dispatch.models import DeliveryState
from dispatch.store import Database, to_db_time, utcnow

_CANDIDATES = """
SELECT d.id, d.amount_minor, d.refunded_minor, d.currency, d.checkout_mode, d.issue_id,
       d.subscriber_id, d.possibly_forwarded, d.given_at, i.subject AS issue_subject
FROM counted_gifts d
LEFT JOIN issues i ON i.id = d.issue_id
WHERE d.given_at >= ?
  AND NOT EXISTS (SELECT 1 FROM donation_thanks t WHERE t.donation_id = d.id)
ORDER BY given_at, d.id
"""


#: Addresses are stored lower-cased: '= lower(?)' uses the UNIQUE index (NOCASE scanned).
ACTIVE_PAYER = (
    "SELECT id, email, language FROM subscribers WHERE email = lower(?) AND status = 'active'"
)


def candidates(db: Database, since: str) -> list[sqlite3.Row]:
    """Paid, not fully refunded donations given at or after ``since`` not thanked yet."""
    return db.execute(_CANDIDATES, (since,)).fetchall()


def recipient_for(db: Database, donation_id: int) -> sqlite3.Row | None:
    """The active subscriber to thank: the one whose address paid, else the link's recipient
    unless someone else paid through it (possibly forwarded). None when neither exists."""
    row = db.execute(
        "SELECT payer_email, subscriber_id, possibly_forwarded FROM donations WHERE id = ?",
        (donation_id,),
    ).fetchone()
    if row is None:
        return None
    found: sqlite3.Row | None = None
    if row["payer_email"]:
        found = db.execute(ACTIVE_PAYER, (row["payer_email"],)).fetchone()
        if found is not None:
            return found
    if row["subscriber_id"] is not None and not row["possibly_forwarded"]:
        found = db.execute(
            "SELECT id, email, language FROM subscribers WHERE id = ? AND status = 'active'",
            (row["subscriber_id"],),
        ).fetchone()
    return found


def fix_thanks(
    db: Database,
    donation_id: int,
    issue_id: str | None,
    subscriber_id: int | None,
    email: str | None,
    variant: str,
) -> bool:
    """Fix the thank-you of one donation in one transaction: its donation_thanks row and, when
    there is someone to thank, the issue's single ledger row (and the issue leaves draft).
    Returns False when the donation already had one (nothing changes)."""
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        if conn.execute(
            "SELECT 1 FROM donation_thanks WHERE donation_id = ?", (donation_id,)
        ).fetchone():
            return False
        state = (
            DeliveryState.PENDING
            if subscriber_id is not None and issue_id
            else DeliveryState.SKIPPED
        )
        conn.execute(
            "INSERT INTO donation_thanks (donation_id, issue_id, state, last_reply, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                donation_id,
                issue_id if state == DeliveryState.PENDING else None,
                state,
                None
                if state == DeliveryState.PENDING
                else "nobody to thank: the payer is not a subscriber",
                now,
                now,
            ),
        )
        if state == DeliveryState.PENDING:
            conn.execute(
                "UPDATE issues SET status = 'sending', send_started_at = COALESCE("
                "send_started_at, ?) WHERE id = ? AND status = 'draft'",
                (now, issue_id),
            )
            conn.execute(
                "INSERT INTO deliveries (issue_id, subscriber_id, email, token, variant, state,"
                " created_at, updated_at) VALUES (?, ?, ?, lower(hex(randomblob(16))), ?,"
                " 'pending', ?, ?)",
                (issue_id, subscriber_id, email, variant, now, now),
            )
    return True


def open_thanks(db: Database) -> list[sqlite3.Row]:
    """Thank-yous fixed but not finished (pending, or left mid-send by an earlier run)."""
    return db.execute(
        "SELECT donation_id, issue_id FROM donation_thanks"
        " WHERE state IN ('pending', 'sending', 'uncertain') AND issue_id IS NOT NULL"
        " ORDER BY donation_id"
    ).fetchall()


def mirror_state(db: Database, donation_id: int) -> str:
    """Copy the thank-you's delivery state (and reply) into donation_thanks; return it."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT l.state, l.last_reply FROM donation_thanks t"
            " JOIN deliveries l ON l.issue_id = t.issue_id WHERE t.donation_id = ?",
            (donation_id,),
        ).fetchone()
        if row is None:
            found = conn.execute(
                "SELECT state FROM donation_thanks WHERE donation_id = ?", (donation_id,)
            ).fetchone()
            return found["state"] if found else "missing"
        conn.execute(
            "UPDATE donation_thanks SET state = ?, last_reply = ?, updated_at = ?"
            " WHERE donation_id = ?",
            (row["state"], row["last_reply"], to_db_time(utcnow()), donation_id),
        )
        return str(row["state"])


def state_counts(db: Database) -> dict[str, int]:
    return {
        r["state"]: int(r["n"])
        for r in db.execute("SELECT state, COUNT(*) AS n FROM donation_thanks GROUP BY state")
    }
