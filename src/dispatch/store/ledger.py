"""The send ledger (``deliveries``): fixed once per issue, then moved row by row as mail goes out.

Every state change is a guarded UPDATE (``WHERE state = <expected>``), so a late or repeated
result can never move a row backwards. Recipients are read in small batches (streamed: never
the whole list in memory). Which message is going out right now is written, before its data
goes, to the send journal (``store.journal``: one append-only file per connection, no
waiting for the database); results are committed here in batches. After a crash the journal
turns the rows that were going out into ``uncertain``: at most one per connection.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dispatch.models import DeliveryState, StatusActor, SubscriberStatus
from dispatch.store import Database, to_db_time, utcnow
from dispatch.store.subscribers import apply_status_change

#: States that keep an issue from counting as sent.
OPEN_STATES: tuple[str, ...] = tuple(
    s.value for s in (DeliveryState.PENDING, DeliveryState.SENDING, DeliveryState.UNCERTAIN)
)
ALL_STATES: tuple[str, ...] = tuple(s.value for s in DeliveryState)


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
    first_name: str = ""  # greeted by it (DISPATCH_GREETING=first)


@dataclass(frozen=True)
class Outcome:
    """A result to record: ``sent``, ``failed``, ``pending`` (retry later) or ``uncertain``
    (the message went out but its reply was lost)."""

    delivery_id: int
    state: str
    reply: str
    bounced_subscriber: int | None = None  # a hard bounce: this subscriber becomes bounced


def secret_key(db: Database) -> bytes:
    """This database's own random key (for Message-ID HMACs when DISPATCH_SECRET_KEY is unset)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'message_key'").fetchone()
    if row is None:
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('message_key', ?) ON CONFLICT DO NOTHING",
                (secrets.token_hex(32),),
            )
        row = db.execute("SELECT value FROM meta WHERE key = 'message_key'").fetchone()
    return bytes.fromhex(row["value"])


#: Who of the active subscribers a ledger is fixed for (digests: all; appeals: a segment).
SEGMENT_FILTERS = {
    "all": "",
    "never-donated": " AND s.id NOT IN (SELECT subscriber_id FROM temp.fix_donors)",
    "lapsed": " AND p.persona IN ('lapsed_donor', 'card_failing')",
    "recent": " AND p.persona = 'recent_donor'",
}


class _NobodyToFix(Exception):
    pass


def _language_suffix(conn: Any, issue_id: str) -> tuple[str, list[str]]:
    """SQL for the "@lang" a reader's variant name ends with (issue 14): the languages the
    issue was rendered in besides the default are its variants named "persona@lang"; a reader
    whose language is one of them, or a regional form of one (de-AT for de), gets it, anyone
    else the default's bare persona. Same rule as render.i18n.pick_language."""
    names = conn.execute(
        "SELECT variant FROM issue_variants WHERE issue_id = ? AND variant LIKE ?",
        (issue_id, "%@%"),
    ).fetchall()
    languages = sorted({str(row[0]).partition("@")[2] for row in names} - {""})
    if not languages:
        return "''", []
    tag = "lower(replace(s.language, '_', '-'))"
    whens: list[str] = []
    params: list[str] = []
    for lang in languages:  # the same tag first, then a regional form of it
        whens.append(f"WHEN {tag} = ? THEN ?")
        params += [lang.lower(), f"@{lang}"]
    for lang in languages:
        whens.append(f"WHEN {tag} LIKE ? THEN ?")
        params += [f"{lang.lower()}-%", f"@{lang}"]
    return f"(CASE {' '.join(whens)} ELSE '' END)", params


def fix_deliveries(
    db: Database,
    issue_id: str,
    personas: dict[int, str],
    default_persona: str,
    *,
    segment: str = "all",
    donor_ids: Iterable[int] = (),
    keep_draft_if_empty: bool = False,
    skip_persona: str | None = None,
) -> int | None:
    """Fix the ledger of a draft issue: one row per active subscriber (of ``segment``), and
    mark it ``sending``.

    Runs in one transaction, streaming inside SQLite (no list in Python memory). Returns the
    number of rows, or None when the issue was no longer a draft (the ledger was fixed before:
    later subscribers are never added, a rerun only resumes). With ``keep_draft_if_empty`` a
    segment with nobody in it rolls everything back and returns 0. Readers of ``skip_persona``
    are left out (an appeal never asks current supporters).
    """
    where = SEGMENT_FILTERS[segment]
    if skip_persona:
        where += " AND COALESCE(p.persona, '') <> ?"
    now = to_db_time(utcnow())
    try:
        with db.transaction() as conn:
            changed = conn.execute(
                "UPDATE issues SET status = 'sending',"
                " send_started_at = COALESCE(send_started_at, ?) WHERE id = ? AND status = 'draft'",
                (now, issue_id),
            ).rowcount
            if not changed:
                return None
            for table, columns in (
                ("fix_personas", "subscriber_id INTEGER PRIMARY KEY, persona TEXT NOT NULL"),
                ("fix_donors", "subscriber_id INTEGER PRIMARY KEY"),
            ):
                conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns})")
                conn.execute(f"DELETE FROM temp.{table}")
            conn.executemany("INSERT INTO temp.fix_personas VALUES (?, ?)", personas.items())
            conn.executemany("INSERT INTO temp.fix_donors VALUES (?)", [(i,) for i in donor_ids])
            language_sql, language_params = _language_suffix(conn, issue_id)
            # 128 random bits as 32 hex digits: random, unique, and valid for Stripe's
            # client_reference_id (^[A-Za-z0-9_-]{1,200}$).
            added = conn.execute(
                "INSERT INTO deliveries (issue_id, subscriber_id, email, token, variant, state,"
                " created_at, updated_at)"
                " SELECT ?, s.id, s.email, lower(hex(randomblob(16))),"
                f" COALESCE(p.persona, ?) || {language_sql},"
                " 'pending', ?, ? FROM subscribers s"
                " LEFT JOIN temp.fix_personas p ON p.subscriber_id = s.id"
                f" WHERE s.status = 'active'{where} ORDER BY s.id",
                (
                    issue_id,
                    default_persona,
                    *language_params,
                    now,
                    now,
                    *([skip_persona] if skip_persona else []),
                ),
            ).rowcount
            conn.execute("DELETE FROM temp.fix_personas")
            conn.execute("DELETE FROM temp.fix_donors")
            if not added and keep_draft_if_empty:
                raise _NobodyToFix
    except _NobodyToFix:
        return 0  # rolled back: the issue stays a draft
    return added


def mark_uncertain(db: Database, issue_id: str) -> int:
    """Rows a previous run left in ``sending`` (it crashed mid-message) become ``uncertain``;
    not those a sender of a shared send has in hand (``store.senders.take_over`` settles them)."""
    with db.transaction() as conn:
        return conn.execute(
            "UPDATE deliveries SET state = 'uncertain', updated_at = ?"
            " WHERE issue_id = ? AND state = 'sending' AND sender IS NULL",
            (to_db_time(utcnow()), issue_id),
        ).rowcount


def resolve_uncertain(db: Database, issue_id: str, *, resend: bool) -> int:
    """The editor's choice for rows in doubt: send them again (pending) or skip them."""
    state = DeliveryState.PENDING if resend else DeliveryState.SKIPPED
    with db.transaction() as conn:
        return conn.execute(
            "UPDATE deliveries SET state = ?, sender = NULL, updated_at = ?"
            " WHERE issue_id = ? AND state = 'uncertain'",
            (state, to_db_time(utcnow()), issue_id),
        ).rowcount


def retry_failed(db: Database, issue_id: str) -> int:
    """Put permanently failed rows back to pending, on purpose (not hard bounces: their
    readers are bounced, and the row keeps the reply that said why)."""
    with db.transaction() as conn:
        reopened = conn.execute(
            "UPDATE deliveries SET state = 'pending', sender = NULL, updated_at = ?"
            " WHERE issue_id = ? AND state = 'failed' AND NOT EXISTS (SELECT 1 FROM"
            " subscribers s WHERE s.id = deliveries.subscriber_id AND s.status = 'bounced')",
            (to_db_time(utcnow()), issue_id),
        ).rowcount
        if reopened:  # not 'sent' while rows are pending: weekly resumes it if this run stops
            conn.execute(
                "UPDATE issues SET status = 'sending' WHERE id = ? AND status = 'sent'",
                (issue_id,),
            )
        return reopened


_SELECT = (
    "SELECT d.id, d.subscriber_id, d.email, d.token, d.variant, d.attempts,"
    " s.name, s.first_name, s.unsub_token, s.status FROM deliveries d"
    " LEFT JOIN subscribers s ON s.id = d.subscriber_id"
)


def claim(db: Database, issue_id: str, after: int, limit: int) -> tuple[list[Claimed], int]:
    """The next ``limit`` pending rows with an id above ``after``, in ledger order.

    Reading only: the rows stay ``pending`` here; the send journal (``store.journal``) records
    each one just before its bytes go, so a crash never leaves rows that were merely queued in
    doubt. A row
    whose subscriber is gone or no longer active is marked ``skipped`` here. Returns the rows
    and the highest id looked at (the next ``after``; equal to ``after`` when none is left).
    """
    rows = db.execute(
        f"{_SELECT} WHERE d.issue_id = ? AND d.state = 'pending' AND d.id > ?"
        " ORDER BY d.id LIMIT ?",
        (issue_id, after, limit),
    ).fetchall()
    last_id = rows[-1]["id"] if rows else after
    return claimed_rows(db, rows), last_id


def claimed_rows(db: Database, rows: Sequence[Any]) -> list[Claimed]:
    """Rows read with ``_SELECT``'s columns as ``Claimed``; a row whose subscriber is gone or
    no longer active is marked ``skipped`` instead (shared by ``store.senders``)."""
    claimed, skip = [], []
    for r in rows:
        if r["email"] is None or r["status"] != "active":
            skip.append(r["id"])
            continue
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
                first_name=r["first_name"] or "",
            )
        )
    if skip:
        with db.transaction() as conn:
            _skip(conn, skip, to_db_time(utcnow()) or "")
    return claimed


def _skip(conn: Any, ids: Sequence[int], now: str) -> None:
    conn.executemany(
        "UPDATE deliveries SET state = 'skipped', updated_at = ?,"
        " last_reply = 'not sent: no longer subscribed' WHERE id = ? AND state = 'pending'",
        [(now, i) for i in ids],
    )


def commit_batch(db: Database, outcomes: Sequence[Outcome], sender: int | None = None) -> int:
    """Record a batch of results in one transaction; returns how many rows were sent.

    A result moves a row out of ``sending`` or ``pending`` (the send journal, not this table,
    says which rows are going out right now; see ``store.journal``), never out of ``sent``,
    ``failed``, ``skipped`` or ``uncertain``: a late or repeated result changes nothing. In a
    shared send (``sender``) only the sender's own rows move: one taken over and claimed by
    another sender meanwhile is not this result's any more.
    """
    if not outcomes:
        return 0
    now = to_db_time(utcnow())
    mine = " AND sender = ?" if sender is not None else ""
    extra = (sender,) if sender is not None else ()
    with db.transaction() as conn:
        conn.executemany(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_reply = ?,"
            " updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END"
            f" WHERE id = ? AND state IN ('pending', 'sending'){mine}",
            [(o.state, o.reply, now, o.state, now, o.delivery_id, *extra) for o in outcomes],
        )
        for o in outcomes:  # in the same transaction: a failed row and its bounce go together
            if o.bounced_subscriber is not None:
                apply_status_change(
                    conn,
                    StatusActor.BOUNCE,
                    SubscriberStatus.BOUNCED,
                    "id",
                    o.bounced_subscriber,
                )
    return sum(1 for o in outcomes if o.state == DeliveryState.SENT)


def bounce_reader(conn: Any, delivery_id: int) -> None:
    """Inside a transaction: the reader of this ledger row becomes bounced (a hard bounce
    the send journal recorded but the send did not commit before it stopped)."""
    row = conn.execute(
        "SELECT subscriber_id FROM deliveries WHERE id = ?", (delivery_id,)
    ).fetchone()
    if row is not None and row[0] is not None:
        apply_status_change(conn, StatusActor.BOUNCE, SubscriberStatus.BOUNCED, "id", row[0])


def state_counts(db: Database, issue_id: str) -> dict[str, int]:
    counts = dict.fromkeys(ALL_STATES, 0)
    for row in db.execute(
        "SELECT state, COUNT(*) AS n FROM deliveries WHERE issue_id = ? GROUP BY state", (issue_id,)
    ):
        counts[row["state"]] = row["n"]
    return counts


def rows_in_state(
    db: Database, issue_id: str, state: str, *, bounced: bool | None = None
) -> Iterator[tuple[str, str]]:
    """(email, last reply) of each row in a state, in ledger order; forgotten people show as ''.

    ``bounced`` narrows to rows whose subscriber is now bounced (True) or is not (False): a
    hard bounce is dealt with (never mailed again), unlike a failure still to look at.
    """
    where = ""
    if bounced is not None:
        where = (
            " AND "
            + ("" if bounced else "NOT ")
            + (
                "EXISTS (SELECT 1 FROM subscribers s WHERE s.id = d.subscriber_id"
                " AND s.status = 'bounced')"
            )
        )
    for row in db.execute(
        "SELECT d.email, d.last_reply FROM deliveries d WHERE d.issue_id = ? AND d.state = ?"
        f"{where} ORDER BY d.id",
        (issue_id, state),
    ):
        yield row["email"] or "", row["last_reply"] or ""


def count_bounced(db: Database, issue_id: str) -> int:
    """Failed rows of this issue whose reader is now bounced."""
    count: int = db.execute(
        "SELECT COUNT(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
        " WHERE d.issue_id = ? AND d.state = 'failed' AND s.status = 'bounced'",
        (issue_id,),
    ).fetchone()[0]
    return count


# -- what was learnt about a relay ----------------------------------------------------------

_RATE_KEY = "smtp.rate:"


def relay_rate(db: Database, relay: str) -> float:
    """The sending rate (messages a second) the last send found this relay allows; 0 = none."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (_RATE_KEY + relay,)).fetchone()
    try:
        return max(0.0, float(json.loads(row["value"])["rate"])) if row else 0.0
    except (ValueError, KeyError, TypeError):
        return 0.0  # an unreadable note is no knowledge: start unpaced


def save_relay_rate(db: Database, relay: str, rate: float) -> None:
    value = json.dumps({"rate": round(rate, 3), "at": to_db_time(utcnow())})
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_RATE_KEY + relay, value),
        )


def has_ledger(db: Database, issue_id: str) -> bool:
    return (
        db.execute("SELECT 1 FROM deliveries WHERE issue_id = ? LIMIT 1", (issue_id,)).fetchone()
        is not None
    )


def open_rows(db: Database, issue_id: str) -> int:
    marks = ",".join("?" * len(OPEN_STATES))
    count: int = db.execute(
        f"SELECT COUNT(*) FROM deliveries WHERE issue_id = ? AND state IN ({marks})",
        (issue_id, *OPEN_STATES),
    ).fetchone()[0]
    return count


def count_in_issue(db: Database, issue_id: str, delivery_ids: set[int], state: str) -> int:
    """How many of these rows belong to the issue and are in ``state``."""
    ids = sorted(delivery_ids)
    total = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        total += db.execute(
            f"SELECT COUNT(*) FROM deliveries WHERE issue_id = ? AND state = ? AND id IN ({marks})",
            (issue_id, state, *chunk),
        ).fetchone()[0]
    return total


# -- the running send's marker --------------------------------------------------------------
#
# Results and in-flight rows live in the send journal next to the database until they are
# committed here. A database moved or copied after a crash without its journal would lose
# that knowledge and resend silently; so a running send keeps a marker in the database: its
# journal's path and an id no row handed to a connection exceeds. ``store.journal.recover``
# turns the pending rows up to that id uncertain when the journal is not where the marker says.

RUN_KEY = "send_run"
#: How far ahead of the rows claimed so far the marker's id is set (one commit per this many).
RUN_RESERVE = 1000


def begin_run(db: Database, issue_id: str, journal: str) -> None:
    value = json.dumps({"issue": issue_id, "journal": journal, "high": 0})
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (RUN_KEY, value),
        )


def extend_run(db: Database, issue_id: str, journal: str, high: int) -> None:
    value = json.dumps({"issue": issue_id, "journal": journal, "high": high})
    with db.transaction() as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, RUN_KEY))


def run_marker(db: Database) -> dict[str, Any] | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (RUN_KEY,)).fetchone()
    return json.loads(row["value"]) if row else None


def end_run(db: Database) -> None:
    with db.transaction() as conn:
        conn.execute("DELETE FROM meta WHERE key = ?", (RUN_KEY,))


def doubt_pending_up_to(db: Database, issue_id: str, high: int, reply: str) -> int:
    """Pending rows a lost journal may have known went out: uncertain, never resent silently."""
    with db.transaction() as conn:
        return conn.execute(
            "UPDATE deliveries SET state = 'uncertain', last_reply = ?, updated_at = ?"
            " WHERE issue_id = ? AND state IN ('pending', 'sending') AND id <= ?",
            (reply, to_db_time(utcnow()), issue_id, high),
        ).rowcount


def language_of_token(db: Database, token: str) -> str:
    """The language a delivery's copy went out in (issue 14): what follows "@" in its variant
    ("non_donor@de"), "" for the default language or an unknown token."""
    row = db.execute("SELECT variant FROM deliveries WHERE token = ?", (token,)).fetchone()
    return str(row["variant"]).partition("@")[2] if row is not None else ""
