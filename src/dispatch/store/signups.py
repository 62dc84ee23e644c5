"""Double opt-in: confirmation links (stored as SHA-256 hashes of their tokens), the signup
email limits shared by every worker process, and the pending addresses nobody confirmed.
Every status change is guarded, so a repeated or late request can only repeat what was done.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch.models import StatusActor, SubscriberStatus
from dispatch.store import Database, to_db_time, utcnow
from dispatch.store.subscribers import address_hash, apply_status_change, new_unsub_token


def signup_state(db: Database, email: str) -> str:
    """'new', 'forgotten' (only the suppression hash is left) or the subscriber's status."""
    row = db.execute("SELECT status FROM subscribers WHERE email = ?", (email,)).fetchone()
    if row is not None:
        return str(row["status"])
    suppressed = db.execute(
        "SELECT 1 FROM suppressions WHERE email_hash = ?", (address_hash(email),)
    ).fetchone()
    return "forgotten" if suppressed else "new"


def add_confirmation(
    db: Database, token_hash: str, email: str, name: str, expires_at: datetime
) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO confirmations (token_hash, email, name, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_hash, email, name, to_db_time(utcnow()), to_db_time(expires_at)),
        )


@dataclass(frozen=True)
class MailLimits:
    """Signup emails allowed: per address, one per ``resend`` and ``daily`` a day; for the
    whole service, ``per_hour`` in any hour (0: none)."""

    resend: timedelta
    daily: int
    per_hour: int


@dataclass(frozen=True)
class NewConfirmation:
    """A confirmation link about to be mailed (only its token's hash is stored)."""

    token_hash: str
    name: str
    expires_at: datetime
    add_pending: bool  # a new address: stored as 'pending' until the link is used
    language: str = ""  # the signup form's language (one of DISPATCH_LANGUAGES), kept on it


def reserve_signup_mail(
    db: Database,
    email: str,
    limits: MailLimits,
    now: datetime,
    confirmation: NewConfirmation | None = None,
) -> str:
    """Count one signup email against the limits and, when it may go, store its confirmation,
    all in one transaction shared by every worker process. Returns 'ok' (send it), 'address'
    (this address had its share) or 'global' (the service's hourly cap is reached); nothing is
    stored unless 'ok'. Rows older than a day are dropped on the way."""
    key = address_hash(email)
    when = to_db_time(now)
    with db.transaction() as conn:
        conn.execute(
            "DELETE FROM signup_mail WHERE sent_at < ?", (to_db_time(now - timedelta(days=1)),)
        )
        recent, today = conn.execute(
            "SELECT COUNT(*) FILTER (WHERE sent_at >= ?), COUNT(*) FROM signup_mail"
            " WHERE email_hash = ?",
            (to_db_time(now - limits.resend), key),
        ).fetchone()
        if recent or today >= limits.daily:
            return "address"
        hour = conn.execute(
            "SELECT COUNT(*) FROM signup_mail WHERE sent_at >= ?",
            (to_db_time(now - timedelta(hours=1)),),
        ).fetchone()[0]
        if hour >= limits.per_hour:
            return "global"
        conn.execute(
            "INSERT INTO signup_mail (email_hash, kind, sent_at) VALUES (?, ?, ?)",
            (key, "confirm" if confirmation else "already", when),
        )
        if confirmation is not None:
            if confirmation.add_pending:
                conn.execute(
                    "INSERT INTO subscribers (email, name, status, unsub_token,"
                    " source, created_at, updated_at, status_changed_at, language) VALUES (?, ?,"
                    " 'pending', ?, 'signup', ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        email,
                        confirmation.name,
                        new_unsub_token(),
                        when,
                        when,
                        when,
                        confirmation.language,
                    ),
                )
            conn.execute(
                "INSERT INTO confirmations (token_hash, email, name, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    confirmation.token_hash,
                    email,
                    confirmation.name,
                    when,
                    to_db_time(confirmation.expires_at),
                ),
            )
    return "ok"


def open_confirmation(db: Database, token_hash: str, now: datetime) -> sqlite3.Row | None:
    """The unused, unexpired confirmation with this token hash, if any."""
    row: sqlite3.Row | None = db.execute(
        "SELECT id, email, name, expires_at FROM confirmations"
        " WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        (token_hash, to_db_time(now)),
    ).fetchone()
    return row


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
        if sub["status"] == SubscriberStatus.ACTIVE:
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
