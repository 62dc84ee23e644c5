"""Subscribers and the suppression list.

Emails are stored normalised and lower-cased (the subscribers module does that), so equality
is case-insensitive. A person who unsubscribed, bounced or complained keeps that status
whatever a later import says; a forgotten person leaves only the SHA-256 of their address in
``suppressions``, which every import checks.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dispatch.models import (
    SUPPRESSED_STATUSES,
    StatusActor,
    Subscriber,
    SubscriberStatus,
    statuses_from,
)
from dispatch.store import Database, to_db_time, utcnow


def address_hash(email: str) -> str:
    """The one-way form of a (normalised, lower-cased) address kept after ``forget``."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def new_unsub_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class ImportCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0


def _subscriber(row: sqlite3.Row) -> Subscriber:
    return Subscriber(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        status=SubscriberStatus(row["status"]),
        tags=tuple(json.loads(row["tags"] or "[]")),
        unsub_token=row["unsub_token"],
    )


def import_subscribers(
    db: Database, rows: Iterable[tuple[str, str, tuple[str, ...]]], source: str
) -> ImportCounts:
    """Add or update (email, name, tags) rows in one transaction; suppression always wins.

    An existing subscriber keeps their status; a new one is active. A row with no name or no
    tags keeps what the store has.
    """
    counts = ImportCounts()
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        for email, name, tags in rows:
            existing = conn.execute(
                "SELECT id, name, tags, status FROM subscribers WHERE email = ?", (email,)
            ).fetchone()
            if existing is None:
                if conn.execute(
                    "SELECT 1 FROM suppressions WHERE email_hash = ?", (address_hash(email),)
                ).fetchone():
                    counts.suppressed += 1
                    continue
                conn.execute(
                    "INSERT INTO subscribers (email, name, tags, status, unsub_token, source,"
                    " created_at, updated_at, status_changed_at)"
                    " VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?)",
                    (
                        email,
                        name,
                        json.dumps(list(tags), ensure_ascii=False),
                        new_unsub_token(),
                        source,
                        now,
                        now,
                        now,
                    ),
                )
                counts.added += 1
                continue
            if existing["status"] in SUPPRESSED_STATUSES:
                counts.suppressed += 1
                continue
            new_name = name or existing["name"]
            new_tags = json.dumps(list(tags), ensure_ascii=False) if tags else existing["tags"]
            if new_name == existing["name"] and new_tags == existing["tags"]:
                counts.unchanged += 1
                continue
            conn.execute(
                "UPDATE subscribers SET name = ?, tags = ?, updated_at = ? WHERE id = ?",
                (new_name, new_tags, now, existing["id"]),
            )
            counts.updated += 1
    return counts


def get_subscriber(db: Database, email: str) -> Subscriber | None:
    row = db.execute("SELECT * FROM subscribers WHERE email = ?", (email,)).fetchone()
    return _subscriber(row) if row else None


def iter_subscribers(db: Database, status: str | None = None) -> Iterator[Subscriber]:
    """Every subscriber (or those in one status) in id order, streamed from the database."""
    if status:
        cursor = db.execute("SELECT * FROM subscribers WHERE status = ? ORDER BY id", (status,))
    else:
        cursor = db.execute("SELECT * FROM subscribers ORDER BY id")
    for row in cursor:
        yield _subscriber(row)


def first_active(db: Database, limit: int | None) -> Iterator[Subscriber]:
    cursor = db.execute(
        "SELECT * FROM subscribers WHERE status = 'active' ORDER BY id LIMIT ?",
        (-1 if limit is None else limit,),
    )
    for row in cursor:
        yield _subscriber(row)


def status_counts(db: Database) -> dict[str, int]:
    counts = {s.value: 0 for s in SubscriberStatus}
    for row in db.execute("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status"):
        counts[row["status"]] = row["n"]
    return counts


def set_status(db: Database, email: str, status: SubscriberStatus) -> Subscriber | None:
    """Force one subscriber's status, bypassing the table of changes: for arranging tests and
    repairs only; every product path uses ``change_status``."""
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        conn.execute(
            "UPDATE subscribers SET status = ?, updated_at = ?, status_changed_at = ?"
            " WHERE email = ? AND status != ?",
            (status.value, now, now, email, status.value),
        )
    return get_subscriber(db, email)


_STATUS_KEYS = frozenset({"id", "email", "unsub_token"})


def apply_status_change(
    conn: sqlite3.Connection,
    actor: StatusActor,
    new: SubscriberStatus | str,
    key: str,
    value: object,
    only_from: Iterable[str] | None = None,
) -> int:
    """Inside a transaction: move the subscriber whose ``key`` column is ``value`` to ``new``
    if models.STATUS_CHANGES lets ``actor`` make that change from their status (and, when
    given, their status is in ``only_from``). Returns 1 when it changed, else 0."""
    if key not in _STATUS_KEYS:
        raise ValueError(f"unknown subscriber key {key!r}")
    allowed = statuses_from(actor, new)
    if only_from is not None:
        narrowed = set(only_from)
        allowed = tuple(s for s in allowed if s in narrowed)
    if not allowed:
        return 0
    now = to_db_time(utcnow())
    marks = ", ".join("?" for _ in allowed)
    return conn.execute(
        f"UPDATE subscribers SET status = ?, updated_at = ?, status_changed_at = ?"
        f" WHERE {key} = ? AND status IN ({marks})",
        (SubscriberStatus(new).value, now, now, value, *allowed),
    ).rowcount


def change_status(
    db: Database, actor: StatusActor, new: SubscriberStatus | str, email: str
) -> tuple[Subscriber | None, bool]:
    """Apply one status change the table allows (see ``apply_status_change``).

    Returns (the subscriber afterwards or None when unknown, whether the status changed).
    """
    with db.transaction() as conn:
        changed = apply_status_change(conn, actor, new, "email", email)
    return get_subscriber(db, email), bool(changed)


def is_suppressed(db: Database, email: str) -> bool:
    return (
        db.execute(
            "SELECT 1 FROM suppressions WHERE email_hash = ?", (address_hash(email),)
        ).fetchone()
        is not None
    )


def forget(db: Database, email: str, reason: str = "forgotten on request") -> bool:
    """Erase a person (row, name, tokens, ledger addresses), keep the hash on the suppression list.

    Returns whether there was a subscriber to erase; the hash is recorded either way.
    """
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        row = conn.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
        if row is not None:
            # Server replies and bounce diagnostics quote the address: they go too.
            conn.execute(
                "UPDATE deliveries SET email = NULL, subscriber_id = NULL, last_reply = NULL"
                " WHERE subscriber_id = ?",
                (row["id"],),
            )
            conn.execute(
                "UPDATE bounces SET diagnostic = '', subscriber_id = NULL WHERE subscriber_id = ?",
                (row["id"],),
            )
            conn.execute("DELETE FROM subscribers WHERE id = ?", (row["id"],))
        conn.execute(
            "UPDATE deliveries SET email = NULL, last_reply = NULL WHERE email = ?", (email,)
        )
        conn.execute("DELETE FROM confirmations WHERE email = ?", (email,))  # web signups
        conn.execute(
            "INSERT OR IGNORE INTO suppressions (email_hash, reason, created_at) VALUES (?, ?, ?)",
            (address_hash(email), reason, now),
        )
    return row is not None
