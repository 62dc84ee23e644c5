"""Bounces and complaints read back from the mailbox and the subscriber status they lead to.

A bounce is recorded once per DSN (``message_key`` is unique), so reading the same mailbox
twice changes nothing. A hard bounce, or ``limit`` soft bounces in a row, moves an active (or
pending) subscriber to ``bounced``, which no import overturns (see store.subscribers). A spam
complaint (``complaints``, once per report) moves them to ``complained``. Both changes go
through store.subscribers.apply_status_change (models.STATUS_CHANGES decides what is allowed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass

from dispatch.models import StatusActor
from dispatch.store import Database, to_db_time, utcnow
from dispatch.store.subscribers import apply_status_change


@dataclass(frozen=True)
class DeliveryRef:
    """The ledger row a bounce belongs to."""

    delivery_id: int | None
    issue_id: str
    subscriber_id: int | None
    email: str | None


def delivery(db: Database, delivery_id: int) -> DeliveryRef | None:
    row = db.execute(
        "SELECT id, issue_id, subscriber_id, email FROM deliveries WHERE id = ?", (delivery_id,)
    ).fetchone()
    if row is None:
        return None
    return DeliveryRef(row["id"], row["issue_id"], row["subscriber_id"], row["email"])


def latest_delivery_to(db: Database, email: str) -> DeliveryRef | None:
    """The most recent ledger row for a subscriber's address (by the subscriber, then the row)."""
    row = db.execute(
        "SELECT d.id, d.issue_id, d.subscriber_id, d.email FROM subscribers s"
        " JOIN deliveries d ON d.subscriber_id = s.id"
        " WHERE s.email = ? ORDER BY d.id DESC LIMIT 1",
        (email,),
    ).fetchone()
    if row is None:
        return None
    return DeliveryRef(row["id"], row["issue_id"], row["subscriber_id"], row["email"])


def subscriber_id_for(db: Database, email: str) -> int | None:
    row = db.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
    return None if row is None else int(row["id"])


def status_of(db: Database, subscriber_id: int) -> str | None:
    row = db.execute("SELECT status FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
    return None if row is None else str(row["status"])


def is_recorded(db: Database, message_key: str) -> bool:
    return (
        db.execute("SELECT 1 FROM bounces WHERE message_key = ?", (message_key,)).fetchone()
        is not None
    )


def is_complaint_recorded(db: Database, message_key: str) -> bool:
    return (
        db.execute("SELECT 1 FROM complaints WHERE message_key = ?", (message_key,)).fetchone()
        is not None
    )


def soft_limit_reached(
    db: Database, subscriber_id: int, limit: int, also_bounced: Collection[str] = ()
) -> bool:
    """``_soft_limit_reached`` for the dry run: ``also_bounced`` are issues whose bounces the
    run would have recorded by now."""
    with db.lock:
        return _soft_limit_reached(db.conn, subscriber_id, limit, also_bounced)


def _insert_once(
    conn: sqlite3.Connection,
    table: str,
    message_key: str,
    ref: DeliveryRef,
    issue_id: str | None,
    now: str | None,
    **fields: str,
) -> int:
    """Insert one bounce or complaint row unless ``message_key`` was recorded before; the
    number of rows inserted (0 or 1). ``table`` is one of this module's two literals."""
    columns = ["message_key", "delivery_id", "issue_id", "subscriber_id", *fields, "received_at"]
    values = (message_key, ref.delivery_id, issue_id, ref.subscriber_id, *fields.values(), now)
    marks = ", ".join("?" * len(columns))
    return int(
        conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING",
            values,
        ).rowcount
    )


def record_bounce(
    db: Database,
    *,
    message_key: str,
    kind: str,
    ref: DeliveryRef,
    diagnostic: str,
    soft_limit: int,
) -> tuple[bool, bool]:
    """Record one bounce and apply its consequence, in one transaction.

    Returns (recorded, suppressed): ``recorded`` is False when this DSN was recorded before;
    ``suppressed`` is True when this bounce moved the subscriber to ``bounced``.
    """
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        inserted = _insert_once(
            conn, "bounces", message_key, ref, ref.issue_id, now, kind=kind, diagnostic=diagnostic
        )
        if not inserted or ref.subscriber_id is None:
            return bool(inserted), False
        if kind == "soft" and not _soft_limit_reached(conn, ref.subscriber_id, soft_limit):
            return True, False
        changed = apply_status_change(  # models.STATUS_CHANGES: active/pending -> bounced
            conn, StatusActor.BOUNCE, "bounced", "id", ref.subscriber_id
        )
    return True, bool(changed)


def _soft_limit_reached(
    conn: sqlite3.Connection, subscriber_id: int, limit: int, also_bounced: Collection[str] = ()
) -> bool:
    """Whether the last ``limit`` issues mailed to this subscriber each bounced (soft or hard).

    "In a row" is over issues, newest first, counting only issues that reached them (rows the
    relay accepted: sent, or still in doubt); several bounces for one issue count once.
    """
    if limit <= 0:
        return False
    recent = conn.execute(
        "SELECT issue_id FROM deliveries WHERE subscriber_id = ?"
        " AND state IN ('sent', 'sending', 'uncertain') ORDER BY id DESC LIMIT ?",
        (subscriber_id, limit),
    ).fetchall()
    if len(recent) < limit:
        return False
    issues = [r["issue_id"] for r in recent]
    marks = ",".join("?" * len(issues))
    bounced = {
        row[0]
        for row in conn.execute(
            f"SELECT DISTINCT issue_id FROM bounces WHERE subscriber_id = ?"
            f" AND issue_id IN ({marks})",
            (subscriber_id, *issues),
        )
    }
    return len((bounced | set(also_bounced)) & set(issues)) >= limit


def record_complaint(
    db: Database,
    *,
    message_key: str,
    ref: DeliveryRef,
    feedback_type: str,
    reporter: str,
) -> tuple[bool, bool]:
    """Record one spam complaint and mark the subscriber ``complained``, in one transaction.

    Returns (recorded, changed): ``recorded`` is False when this report was recorded before;
    ``changed`` is True when this complaint moved the subscriber to ``complained``.
    """
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        inserted = _insert_once(
            conn,
            "complaints",
            message_key,
            ref,
            ref.issue_id or None,
            now,
            feedback_type=feedback_type,
            reporter=reporter,
        )
        if not inserted or ref.subscriber_id is None:
            return bool(inserted), False
        changed = apply_status_change(  # models.STATUS_CHANGES: anything but complained
            conn, StatusActor.COMPLAINT, "complained", "id", ref.subscriber_id
        )
        # A confirmation link mailed before the complaint must not make the reader active again.
        conn.execute(
            "UPDATE confirmations SET used_at = ? WHERE used_at IS NULL"
            " AND email = (SELECT email FROM subscribers WHERE id = ?)",
            (now, ref.subscriber_id),
        )
    return True, bool(changed)


def counts_by_issue(db: Database) -> dict[str, dict[str, int]]:
    """``{issue: {"hard": n, "soft": n}}`` for the report."""
    result: dict[str, dict[str, int]] = {}
    for row in db.execute(
        "SELECT issue_id, kind, COUNT(*) AS n FROM bounces WHERE issue_id IS NOT NULL"
        " GROUP BY issue_id, kind ORDER BY issue_id"
    ):
        result.setdefault(row["issue_id"], {"hard": 0, "soft": 0})[row["kind"]] = row["n"]
    return result


def subscriber_bounces(db: Database, email: str) -> list[tuple[str, str, str]]:
    """(issue, kind, diagnostic) of one subscriber's bounces, oldest first."""
    return [
        (row["issue_id"], row["kind"], row["diagnostic"])
        for row in db.execute(
            "SELECT b.issue_id, b.kind, b.diagnostic FROM bounces b"
            " JOIN subscribers s ON s.id = b.subscriber_id WHERE s.email = ? ORDER BY b.id",
            (email,),
        )
    ]
