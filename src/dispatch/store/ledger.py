"""The send ledger (``deliveries``): fixed once per issue, then moved row by row as mail goes out.

Every state change is a guarded UPDATE (``WHERE state = <expected>``), so a late or repeated
result can never move a row backwards. Recipients are claimed in small batches and marked
``sending`` (committed) before their bytes are handed to SMTP; results are written in batches
in the same transaction as the next claim, so a crash leaves only the in-flight rows in doubt.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dispatch.store import Database, to_db_time, utcnow

#: States that keep an issue from counting as sent.
OPEN_STATES = ("pending", "sending", "uncertain")
ALL_STATES = ("pending", "sending", "sent", "failed", "uncertain", "skipped")


@dataclass(frozen=True)
class Claimed:
    """A ledger row marked ``sending``, with what its copy needs."""

    id: int
    subscriber_id: int
    email: str
    name: str
    token: str
    unsub_token: str
    variant: str
    attempts: int


@dataclass(frozen=True)
class Outcome:
    """A result to record: state is ``sent``, ``failed`` or ``pending`` (retry later)."""

    delivery_id: int
    state: str
    reply: str


def secret_key(db: Database) -> bytes:
    """This database's own random key (for Message-ID HMACs when DISPATCH_SECRET_KEY is unset)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'message_key'").fetchone()
    if row is None:
        with db.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('message_key', ?)",
                (secrets.token_hex(32),),
            )
        row = db.execute("SELECT value FROM meta WHERE key = 'message_key'").fetchone()
    return bytes.fromhex(row["value"])


def fix_deliveries(
    db: Database, issue_id: str, personas: dict[int, str], default_persona: str
) -> int | None:
    """Fix the ledger of a draft issue: one row per active subscriber, and mark it ``sending``.

    Runs in one transaction, streaming inside SQLite (no list in Python memory). Returns the
    number of rows, or None when the issue was no longer a draft (the ledger was fixed before:
    later subscribers are never added, a rerun only resumes).
    """
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        changed = conn.execute(
            "UPDATE issues SET status = 'sending', send_started_at = COALESCE(send_started_at, ?)"
            " WHERE id = ? AND status = 'draft'",
            (now, issue_id),
        ).rowcount
        if not changed:
            return None
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS fix_personas"
            " (subscriber_id INTEGER PRIMARY KEY, persona TEXT NOT NULL)"
        )
        conn.execute("DELETE FROM temp.fix_personas")
        conn.executemany(
            "INSERT INTO temp.fix_personas (subscriber_id, persona) VALUES (?, ?)",
            personas.items(),
        )
        # 128 random bits as 32 hex digits: random, unique, and valid for Stripe's
        # client_reference_id (^[A-Za-z0-9_-]{1,200}$).
        added = conn.execute(
            "INSERT INTO deliveries (issue_id, subscriber_id, email, token, variant, state,"
            " created_at, updated_at)"
            " SELECT ?, s.id, s.email, lower(hex(randomblob(16))), COALESCE(p.persona, ?),"
            " 'pending', ?, ? FROM subscribers s"
            " LEFT JOIN temp.fix_personas p ON p.subscriber_id = s.id"
            " WHERE s.status = 'active' ORDER BY s.id",
            (issue_id, default_persona, now, now),
        ).rowcount
        conn.execute("DELETE FROM temp.fix_personas")
    return added


def mark_uncertain(db: Database, issue_id: str) -> int:
    """Rows a previous run left in ``sending`` (it crashed mid-message) become ``uncertain``."""
    with db.transaction() as conn:
        return conn.execute(
            "UPDATE deliveries SET state = 'uncertain', updated_at = ?"
            " WHERE issue_id = ? AND state = 'sending'",
            (to_db_time(utcnow()), issue_id),
        ).rowcount


def resolve_uncertain(db: Database, issue_id: str, *, resend: bool) -> int:
    """The editor's choice for rows in doubt: send them again (pending) or skip them."""
    state = "pending" if resend else "skipped"
    with db.transaction() as conn:
        return conn.execute(
            "UPDATE deliveries SET state = ?, updated_at = ?"
            " WHERE issue_id = ? AND state = 'uncertain'",
            (state, to_db_time(utcnow()), issue_id),
        ).rowcount


def retry_failed(db: Database, issue_id: str) -> int:
    """Put permanently failed rows back to pending, on purpose."""
    with db.transaction() as conn:
        return conn.execute(
            "UPDATE deliveries SET state = 'pending', updated_at = ?"
            " WHERE issue_id = ? AND state = 'failed'",
            (to_db_time(utcnow()), issue_id),
        ).rowcount


def record_and_claim(
    db: Database,
    issue_id: str,
    outcomes: Sequence[Outcome],
    *,
    claim_after: int | None = None,
    claim_limit: int = 0,
    claim_ids: Sequence[int] = (),
) -> tuple[list[Claimed], int]:
    """In one transaction: record results, then claim rows to send next (marked ``sending``).

    Claims the given ``claim_ids`` (retries that are due) and up to ``claim_limit`` pending rows
    with an id above ``claim_after``. A row whose subscriber is gone or no longer active is
    marked ``skipped`` instead of claimed. Returns the claimed rows and the highest id looked at
    (the next ``claim_after``).
    """
    now = to_db_time(utcnow())
    claimed: list[Claimed] = []
    last_id = claim_after or 0
    with db.transaction() as conn:
        if outcomes:
            conn.executemany(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_reply = ?,"
                " updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END"
                " WHERE id = ? AND state = 'sending'",
                [(o.state, o.reply, now, o.state, now, o.delivery_id) for o in outcomes],
            )
        rows = []
        select = (
            "SELECT d.id, d.subscriber_id, d.email, d.token, d.variant, d.attempts,"
            " s.name, s.unsub_token, s.status FROM deliveries d"
            " LEFT JOIN subscribers s ON s.id = d.subscriber_id"
        )
        for start in range(0, len(claim_ids), 500):
            chunk = list(claim_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows += conn.execute(
                f"{select} WHERE d.id IN ({marks}) AND d.state = 'pending'", chunk
            ).fetchall()
        if claim_limit > 0 and claim_after is not None:
            fresh = conn.execute(
                f"{select} WHERE d.issue_id = ? AND d.state = 'pending' AND d.id > ?"
                " ORDER BY d.id LIMIT ?",
                (issue_id, claim_after, claim_limit),
            ).fetchall()
            if fresh:
                last_id = fresh[-1]["id"]
            rows += fresh
        skip, take = [], []
        for r in rows:
            if r["email"] is None or r["status"] != "active":
                skip.append((now, r["id"]))
            else:
                take.append((now, r["id"]))
                claimed.append(
                    Claimed(
                        id=r["id"],
                        subscriber_id=r["subscriber_id"],
                        email=r["email"],
                        name=r["name"] or "",
                        token=r["token"],
                        unsub_token=r["unsub_token"],
                        variant=r["variant"],
                        attempts=r["attempts"],
                    )
                )
        conn.executemany(
            "UPDATE deliveries SET state = 'skipped', updated_at = ?,"
            " last_reply = 'not sent: no longer subscribed' WHERE id = ? AND state = 'pending'",
            skip,
        )
        conn.executemany(
            "UPDATE deliveries SET state = 'sending', updated_at = ? WHERE id = ?"
            " AND state = 'pending'",
            take,
        )
    return claimed, last_id


def release(db: Database, delivery_ids: Sequence[int]) -> None:
    """Rows claimed but never handed to SMTP (a clean stop) go back to pending."""
    if not delivery_ids:
        return
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        conn.executemany(
            "UPDATE deliveries SET state = 'pending', updated_at = ?"
            " WHERE id = ? AND state = 'sending'",
            [(now, i) for i in delivery_ids],
        )


def state_counts(db: Database, issue_id: str) -> dict[str, int]:
    counts = dict.fromkeys(ALL_STATES, 0)
    for row in db.execute(
        "SELECT state, COUNT(*) AS n FROM deliveries WHERE issue_id = ? GROUP BY state", (issue_id,)
    ):
        counts[row["state"]] = row["n"]
    return counts


def rows_in_state(db: Database, issue_id: str, state: str) -> Iterator[tuple[str, str]]:
    """(email, last reply) of each row in a state, in ledger order; forgotten people show as ''."""
    for row in db.execute(
        "SELECT email, last_reply FROM deliveries WHERE issue_id = ? AND state = ? ORDER BY id",
        (issue_id, state),
    ):
        yield row["email"] or "", row["last_reply"] or ""


def has_ledger(db: Database, issue_id: str) -> bool:
    return (
        db.execute("SELECT 1 FROM deliveries WHERE issue_id = ? LIMIT 1", (issue_id,)).fetchone()
        is not None
    )


def open_rows(db: Database, issue_id: str) -> int:
    marks = ",".join("?" * len(OPEN_STATES))
    return db.execute(
        f"SELECT COUNT(*) FROM deliveries WHERE issue_id = ? AND state IN ({marks})",
        (issue_id, *OPEN_STATES),
    ).fetchone()[0]
