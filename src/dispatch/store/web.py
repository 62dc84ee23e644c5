"""Queries of the web service: unsubscribe tokens, donation clicks, double opt-in, the archive.

Every status change is a guarded UPDATE (``WHERE status IN (...)``), so a repeated or late
request can only repeat what was done. Confirmation tokens are stored as SHA-256 hashes.

A request's writes meet other writers (an import, a send): ``connect_web`` waits a short while
for the lock, and ``retry_when_locked`` tries a few more times before giving up with
DatabaseBusyError (the web service answers 503 with Retry-After, never a 500).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from dispatch.errors import StoreError
from dispatch.models import StatusActor, Subscriber
from dispatch.store import Database, connect, to_db_time, utcnow
from dispatch.store.subscribers import (
    address_hash,
    apply_status_change,
    get_subscriber,
    new_unsub_token,
)

log = logging.getLogger("dispatch.web")
T = TypeVar("T")

# -- waiting for other writers ---------------------------------------------------------------


class DatabaseBusyError(StoreError):
    """Another writer held the database through every attempt of a web request's write."""

    default_hint = "Try again in a few seconds."


@dataclass(frozen=True)
class WritePatience:
    """How long a web write waits for another writer: SQLite's own busy wait per attempt
    (``busy_ms``), then a pause before each further attempt. The defaults give up after about
    five seconds, well inside gunicorn's 30-second worker timeout."""

    busy_ms: int = 1500
    pauses: tuple[float, ...] = (0.1, 0.4)
    retry_after: int = 10  # seconds, said to the client with the 503


def connect_web(path: Path, patience: WritePatience) -> Database:
    """A connection for one web request, waiting at most ``busy_ms`` per attempt for a lock."""
    conn = connect(path)
    conn.execute(f"PRAGMA busy_timeout={int(patience.busy_ms)}")
    return Database(conn, path)


def is_locked(exc: BaseException) -> bool:
    """Whether a SQLite error is another connection's lock (SQLITE_BUSY or SQLITE_LOCKED)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def retry_when_locked(call: Callable[[], T], patience: WritePatience, what: str) -> T:
    """``call()``, tried again after a short pause while the database is locked by another
    writer; DatabaseBusyError when every attempt met the lock. ``call`` must be safe to
    repeat (each write is one transaction, or guarded so that repeating it changes nothing)."""
    for attempt, pause in enumerate((*patience.pauses, None), start=1):
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not is_locked(exc):
                raise
            if pause is None:
                log.warning("%s: the database stayed locked by another writer through %d "
                            "attempts; giving up", what, attempt)
                raise DatabaseBusyError(
                    "The database is busy with another writer (an import or a send)"
                ) from exc
            log.info("%s: the database is locked by another writer; retrying (attempt %d)",
                     what, attempt + 1)
            time.sleep(pause * random.uniform(1.0, 1.5))  # jitter: workers do not retry in step
    raise AssertionError("unreachable")


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


def reserve_signup_mail(
    db: Database, email: str, limits: MailLimits, now: datetime,
    confirmation: NewConfirmation | None = None,
) -> str:
    """Count one signup email against the limits and, when it may go, store its confirmation,
    all in one transaction shared by every worker process. Returns 'ok' (send it), 'address'
    (this address had its share) or 'global' (the service's hourly cap is reached); nothing is
    stored unless 'ok'. Rows older than a day are dropped on the way."""
    key = address_hash(email)
    when = to_db_time(now)
    with db.transaction() as conn:
        conn.execute("DELETE FROM signup_mail WHERE sent_at < ?",
                     (to_db_time(now - timedelta(days=1)),))
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
        conn.execute("INSERT INTO signup_mail (email_hash, kind, sent_at) VALUES (?, ?, ?)",
                     (key, "confirm" if confirmation else "already", when))
        if confirmation is not None:
            if confirmation.add_pending:
                conn.execute(
                    "INSERT OR IGNORE INTO subscribers (email, name, status, unsub_token,"
                    " source, created_at, updated_at, status_changed_at) VALUES (?, ?,"
                    " 'pending', ?, 'signup', ?, ?, ?)",
                    (email, confirmation.name, new_unsub_token(), when, when, when),
                )
            conn.execute(
                "INSERT INTO confirmations (token_hash, email, name, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (confirmation.token_hash, email, confirmation.name, when,
                 to_db_time(confirmation.expires_at)),
            )
    return "ok"


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
