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
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from dispatch.models import (
    SUPPRESSED_STATUSES,
    StatusActor,
    Subscriber,
    SubscriberStatus,
    status_change_allowed,
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
    longest_write_ms: float = 0.0  # the longest write transaction of the import (bench/)


class ImportRow(Protocol):
    """What an import gives the store for one person (subscribers.CsvRow has these)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def tags(self) -> tuple[str, ...]: ...
    @property
    def first_name(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def status(self) -> SubscriberStatus | None: ...
    @property
    def consent_at(self) -> str: ...
    @property
    def consent_ip(self) -> str: ...
    @property
    def consent_source(self) -> str: ...


#: Rows per write transaction: each commits in milliseconds, so a web request waiting for the
#: write lock (an unsubscribe, a donation click) waits no more than a moment.
IMPORT_BATCH = 500
_DETAILS = ("name", "first_name", "tags", "language", "consent_at", "consent_ip", "consent_source")


def _subscriber(row: sqlite3.Row) -> Subscriber:
    return Subscriber(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        status=SubscriberStatus(row["status"]),
        tags=tuple(json.loads(row["tags"] or "[]")),
        unsub_token=row["unsub_token"],
        first_name=row["first_name"],
        language=row["language"],
        consent_at=row["consent_at"],
        consent_ip=row["consent_ip"],
        consent_source=row["consent_source"],
    )


def import_subscribers(
    db: Database,
    rows: Iterable[ImportRow],
    source: str,
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
) -> ImportCounts:
    """Add or update rows in short transactions of ``batch_size`` rows; suppression wins.

    A new address is active unless its row says otherwise (an import never makes anyone
    active who is not: unsubscribed, bounced and complained stay, a status the file gives is
    applied only where models.STATUS_CHANGES lets an import make it). Empty fields keep what
    the store has. Each batch is complete in itself, so an interrupted import leaves every
    stored row whole; ``dry_run`` reads and counts, and writes nothing.
    """
    counts = ImportCounts()
    it = iter(rows)
    while batch := list(islice(it, batch_size or IMPORT_BATCH)):
        started = time.perf_counter()
        if dry_run:
            with db.lock:
                _import_batch(db.conn, batch, source, counts, write=False)
            continue
        with db.transaction() as conn:
            _import_batch(conn, batch, source, counts, write=True)
        elapsed = (time.perf_counter() - started) * 1000
        counts.longest_write_ms = max(counts.longest_write_ms, elapsed)
    return counts


def _import_batch(
    conn: sqlite3.Connection,
    batch: list[ImportRow],
    source: str,
    counts: ImportCounts,
    *,
    write: bool,
) -> None:
    now = to_db_time(utcnow())
    marks = ",".join("?" * len(batch))
    emails = [r.email for r in batch]
    known = {
        r["email"]: r
        for r in conn.execute(
            f"SELECT id, email, status, {', '.join(_DETAILS)} FROM subscribers"
            f" WHERE email IN ({marks})",
            emails,
        )
    }
    hashes = {address_hash(r.email): r.email for r in batch if r.email not in known}
    forgotten = (
        {
            hashes[h[0]]
            for h in conn.execute(
                f"SELECT email_hash FROM suppressions WHERE email_hash IN"
                f" ({','.join('?' * len(hashes))})",
                list(hashes),
            )
        }
        if hashes
        else set()
    )
    # The writes are collected and made set by set (one executemany per kind): PostgreSQL then
    # pipelines each set instead of waiting a round trip per row; SQLite does the same work.
    inserts: list[tuple[object, ...]] = []
    moves: dict[SubscriberStatus, list[int]] = {}
    updates: list[tuple[object, ...]] = []
    for row in batch:
        existing = known.get(row.email)
        if existing is None:
            if row.email in forgotten:
                counts.suppressed += 1
                continue
            counts.added += 1
            if write:
                status = row.status.value if row.status else SubscriberStatus.ACTIVE.value
                inserts.append(
                    (
                        row.email, row.name, _tags_json(row.tags), status, new_unsub_token(),
                        source, now, now, now, row.first_name, row.language, row.consent_at,
                        row.consent_ip, row.consent_source,
                    )
                )  # fmt: skip
            continue
        if existing["status"] in SUPPRESSED_STATUSES:
            counts.suppressed += 1
            continue
        details = _merged(existing, row)
        moves_to = row.status  # the status the file gives, when an import may make that move
        if moves_to and not status_change_allowed(StatusActor.IMPORT, existing["status"], moves_to):
            moves_to = None
        if moves_to is None and all(details[k] == existing[k] for k in _DETAILS):
            counts.unchanged += 1
            continue
        counts.updated += 1
        if not write:
            continue
        if moves_to is not None:
            moves.setdefault(moves_to, []).append(existing["id"])
        updates.append((*(details[k] for k in _DETAILS), now, existing["id"]))
    if inserts:
        conn.executemany(
            "INSERT INTO subscribers (email, name, tags, status, unsub_token, source,"
            " created_at, updated_at, status_changed_at, first_name, language,"
            " consent_at, consent_ip, consent_source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            inserts,
        )
    for new, ids in moves.items():
        apply_status_changes(conn, StatusActor.IMPORT, new, "id", ids)
    if updates:
        conn.executemany(
            f"UPDATE subscribers SET {', '.join(f'{k} = ?' for k in _DETAILS)}, updated_at = ?"
            " WHERE id = ?",
            updates,
        )


def _tags_json(tags: tuple[str, ...]) -> str:
    return json.dumps(list(tags), ensure_ascii=False)


def _merged(existing: sqlite3.Row, row: ImportRow) -> dict[str, str]:
    """The stored details after this row: what it gives, else what the store has. A new name
    without a first name drops a first name that belonged to the old name."""
    first = row.first_name
    if not first and (not row.name or row.name == existing["name"]):
        first = existing["first_name"]
    return {
        "name": row.name or existing["name"],
        "first_name": first,
        "tags": _tags_json(row.tags) if row.tags else existing["tags"],
        "language": row.language or existing["language"],
        "consent_at": row.consent_at or existing["consent_at"],
        "consent_ip": row.consent_ip or existing["consent_ip"],
        "consent_source": row.consent_source or existing["consent_source"],
    }


def get_subscriber(db: Database, email: str) -> Subscriber | None:
    row = db.execute("SELECT * FROM subscribers WHERE email = ?", (email,)).fetchone()
    return _subscriber(row) if row else None


def iter_subscribers(db: Database, status: SubscriberStatus | None = None) -> Iterator[Subscriber]:
    """Every subscriber (or those in one status) in id order, streamed from the database."""
    if status:
        cursor = db.execute("SELECT * FROM subscribers WHERE status = ? ORDER BY id", (status,))
    else:
        cursor = db.execute("SELECT * FROM subscribers ORDER BY id")
    for row in cursor:
        yield _subscriber(row)


def first_active(db: Database, limit: int | None) -> Iterator[Subscriber]:
    sql = "SELECT * FROM subscribers WHERE status = 'active' ORDER BY id"
    cursor = db.execute(sql, ()) if limit is None else db.execute(f"{sql} LIMIT ?", (limit,))
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


def _status_change_sql(
    actor: StatusActor, new: SubscriberStatus | str, key: str, only_from: Iterable[str] | None
) -> tuple[str, tuple[str, ...]] | None:
    """The UPDATE that moves one subscriber (by ``key``) to ``new`` when the table allows it,
    and the statuses it may move from; None when it allows none."""
    if key not in _STATUS_KEYS:
        raise ValueError(f"unknown subscriber key {key!r}")
    allowed = statuses_from(actor, new)
    if only_from is not None:
        narrowed = set(only_from)
        allowed = tuple(s for s in allowed if s in narrowed)
    if not allowed:
        return None
    marks = ", ".join("?" for _ in allowed)
    sql = (
        f"UPDATE subscribers SET status = ?, updated_at = ?, status_changed_at = ?"
        f" WHERE {key} = ? AND status IN ({marks})"
    )
    return sql, tuple(allowed)


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
    change = _status_change_sql(actor, new, key, only_from)
    if change is None:
        return 0
    sql, allowed = change
    now = to_db_time(utcnow())
    return conn.execute(sql, (SubscriberStatus(new).value, now, now, value, *allowed)).rowcount


def apply_status_changes(
    conn: sqlite3.Connection,
    actor: StatusActor,
    new: SubscriberStatus | str,
    key: str,
    values: Iterable[object],
) -> None:
    """``apply_status_change`` for many subscribers in one executemany (an import's batch)."""
    change = _status_change_sql(actor, new, key, None)
    if change is None:
        return
    sql, allowed = change
    now = to_db_time(utcnow())
    status = SubscriberStatus(new).value
    conn.executemany(sql, [(status, now, now, value, *allowed) for value in values])


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
            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (address_hash(email), reason, now),
        )
    return row is not None
