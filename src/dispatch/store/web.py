"""Queries of the web service: unsubscribe tokens, donation clicks, double opt-in, the archive.

Every status change is a guarded UPDATE (``WHERE status IN (...)``), so a repeated or late
request can only repeat what was done. Confirmation tokens are stored as SHA-256 hashes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch.models import StatusActor, Subscriber
from dispatch.store import Database, to_db_time, utcnow
from dispatch.store.subscribers import (
    address_hash,
    apply_status_change,
    get_subscriber,
    new_unsub_token,
)

# -- unsubscribe / resubscribe -------------------------------------------------------------


def subscriber_by_unsub_token(db: Database, token: str) -> Subscriber | None:
    row = db.execute("SELECT email FROM subscribers WHERE unsub_token = ?", (token,)).fetchone()
    return get_subscriber(db, row["email"]) if row else None


def change_status_by_token(
    db: Database, token: str, new_status: str, from_statuses: Iterable[str]
) -> tuple[Subscriber | None, bool]:
    """Move the subscriber holding ``token`` to ``new_status`` if their status is one of
    ``from_statuses``. Returns (the subscriber afterwards, whether anything changed)."""
    with db.transaction() as conn:  # only what models.STATUS_CHANGES lets a reader do
        changed = apply_status_change(
            conn, StatusActor.READER, new_status, "unsub_token", token, from_statuses
        )
    return subscriber_by_unsub_token(db, token), bool(changed)


# -- donation clicks -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClickTarget:
    """What the redirect needs of a delivery: the address it went to (None once forgotten)."""

    issue_id: str
    email: str | None


def record_click(db: Database, token: str, at: datetime | None = None) -> ClickTarget | None:
    """Count one click on a donation link; None (and nothing stored) for an unknown token."""
    when = to_db_time(at or utcnow())
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT d.issue_id, d.email, d.subscriber_id FROM deliveries d WHERE d.token = ?",
            (token,),
        ).fetchone()
        if row is None:
            return None
        conn.execute("INSERT INTO clicks (token, clicked_at) VALUES (?, ?)", (token, when))
    email = row["email"] if row["subscriber_id"] is not None else None
    return ClickTarget(row["issue_id"], email or None)


def click_count(db: Database, token: str) -> int:
    return int(db.execute("SELECT COUNT(*) FROM clicks WHERE token = ?", (token,)).fetchone()[0])


# -- double opt-in ---------------------------------------------------------------------------


def signup_state(db: Database, email: str) -> str:
    """'new', 'forgotten' (only the suppression hash is left) or the subscriber's status."""
    row = db.execute("SELECT status FROM subscribers WHERE email = ?", (email,)).fetchone()
    if row is not None:
        return str(row["status"])
    suppressed = db.execute(
        "SELECT 1 FROM suppressions WHERE email_hash = ?", (address_hash(email),)
    ).fetchone()
    return "forgotten" if suppressed else "new"


def add_pending_subscriber(db: Database, email: str, name: str) -> bool:
    """Insert a pending subscriber (source 'signup'); False when the address already exists."""
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        cur = conn.execute(
            "INSERT OR IGNORE INTO subscribers (email, name, status, unsub_token, source,"
            " created_at, updated_at, status_changed_at) VALUES (?, ?, 'pending', ?, 'signup',"
            " ?, ?, ?)",
            (email, name, new_unsub_token(), now, now, now),
        )
        return cur.rowcount == 1


def confirmations_since(db: Database, email: str, since: datetime) -> int:
    row = db.execute(
        "SELECT COUNT(*) FROM confirmations WHERE email = ? AND created_at >= ?",
        (email, to_db_time(since)),
    ).fetchone()
    return int(row[0])


def add_confirmation(
    db: Database, token_hash: str, email: str, name: str, expires_at: datetime
) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO confirmations (token_hash, email, name, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_hash, email, name, to_db_time(utcnow()), to_db_time(expires_at)),
        )


def open_confirmation(db: Database, token_hash: str, now: datetime) -> sqlite3.Row | None:
    """The unused, unexpired confirmation with this token hash, if any."""
    return db.execute(
        "SELECT id, email, name, expires_at FROM confirmations"
        " WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        (token_hash, to_db_time(now)),
    ).fetchone()


def use_confirmation(
    db: Database, token_hash: str, now: datetime, reactivate: Iterable[str]
) -> str | None:
    """Spend a confirmation token and activate its address, in one transaction.

    Returns None for an unknown, used or expired token (nothing changes); otherwise what
    happened: 'activated' (a new or forgotten address, or one whose status is in
    ``reactivate``), 'already' (active), or 'refused:<status>' (a status that a confirmation
    may not overturn). Every open confirmation of the address is spent with it.
    """
    when = to_db_time(now)
    allowed = tuple(reactivate)
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT email, name FROM confirmations"
            " WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
            (token_hash, when),
        ).fetchone()
        if row is None:
            return None
        email, name = row["email"], row["name"]
        conn.execute(
            "UPDATE confirmations SET used_at = ? WHERE email = ? AND used_at IS NULL",
            (when, email),
        )
        sub = conn.execute(
            "SELECT id, status, name FROM subscribers WHERE email = ?", (email,)
        ).fetchone()
        if sub is None:
            # New, or forgotten and now asking again: the person proved the address and asked.
            conn.execute("DELETE FROM suppressions WHERE email_hash = ?", (address_hash(email),))
            conn.execute(
                "INSERT INTO subscribers (email, name, status, unsub_token, source, created_at,"
                " updated_at, status_changed_at) VALUES (?, ?, 'active', ?, 'signup', ?, ?, ?)",
                (email, name, new_unsub_token(), when, when, when),
            )
            return "activated"
        if sub["status"] == "active":
            return "already"
        if not apply_status_change(
            conn, StatusActor.CONFIRMATION, "active", "id", sub["id"], allowed
        ):
            return f"refused:{sub['status']}"
        conn.execute(
            "UPDATE subscribers SET name = ? WHERE id = ?", (name or sub["name"], sub["id"])
        )
        return "activated"


def purge_confirmations(db: Database, now: datetime) -> int:
    """Delete expired confirmations (used or not) and the pending signups left without one:
    an address someone typed into the form and nobody confirmed is not kept. Returns the
    number of pending subscribers removed."""
    when = to_db_time(now)
    with db.transaction() as conn:
        conn.execute("DELETE FROM confirmations WHERE expires_at <= ?", (when,))
        return conn.execute(
            "DELETE FROM subscribers WHERE status = 'pending' AND source = 'signup'"
            " AND created_at <= ? AND NOT EXISTS"
            " (SELECT 1 FROM confirmations c WHERE c.email = subscribers.email)",
            (to_db_time(now - timedelta(hours=1)),),
        ).rowcount


# -- Stripe webhook events -------------------------------------------------------------------


def stripe_event_seen(db: Database, event_id: str) -> bool:
    """Whether the webhook already handled this event (store.donations records it)."""
    return db.execute(
        "SELECT 1 FROM stripe_events WHERE id = ?", (event_id,)
    ).fetchone() is not None


# -- the archive -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchivedIssue:
    id: str
    subject: str
    preheader: str
    sent_at: datetime | None


def _archived(row: sqlite3.Row) -> ArchivedIssue:
    stamp = row["sent_at"] or row["send_started_at"]
    return ArchivedIssue(
        row["id"], row["subject"], row["preheader"],
        datetime.fromisoformat(stamp) if stamp else None,
    )


_PUBLIC = "kind = 'digest' AND status IN ('sending', 'sent')"


def archived_issues(db: Database) -> list[ArchivedIssue]:
    """Digests that went out (or are going out), newest first."""
    rows = db.execute(
        f"SELECT id, subject, preheader, sent_at, send_started_at FROM issues WHERE {_PUBLIC}"
        " ORDER BY COALESCE(sent_at, send_started_at, created_at) DESC, id DESC"
    ).fetchall()
    return [_archived(r) for r in rows]


def archived_variant(db: Database, issue_id: str, variant: str) -> sqlite3.Row | None:
    """The stored variant of a public digest (None for drafts, appeals and unknown ids)."""
    return db.execute(
        "SELECT i.id, i.subject, v.html FROM issues i JOIN issue_variants v ON v.issue_id = i.id"
        " WHERE i.id = ? AND v.variant = ? AND i.kind = 'digest'"
        " AND i.status IN ('sending', 'sent')",
        (issue_id, variant),
    ).fetchone()
