"""Donations, refunds, Payment Links, sync cursors and Stripe events (issue 4).

A donation is one Stripe Checkout Session, keyed by its id, so the same session recorded twice
(sync rerun, or sync and webhook) is one row. Its status only moves forward:
pending -> paid | failed; a stale 'pending' copy never undoes 'paid'. Refunds are netted out
through the ``donation_totals`` view; which gifts count is the ``counted_gifts`` view (0012).
Campaigns and donor personas live in ``store.campaigns``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from dispatch.errors import DonationError
from dispatch.models import CampaignProgress, Donation, DonationStatus
from dispatch.store import Database, campaigns, to_db_time, utcnow

MODE_KEY = "stripe.mode"
_STATUS_RANK = {DonationStatus.PENDING: 0, DonationStatus.FAILED: 1, DonationStatus.PAID: 2}


def from_unix(seconds: int) -> str:
    return to_db_time(datetime.fromtimestamp(int(seconds), UTC)) or ""


# -- meta and mode ----------------------------------------------------------------------


def get_meta(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row["value"] if row else None


def set_meta(db: Database, key: str, value: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def stripe_mode(db: Database) -> str | None:
    """'test' or 'live' once this database has seen Stripe data, else None."""
    return get_meta(db, MODE_KEY)


def _claim_mode(conn: sqlite3.Connection, livemode: bool) -> None:
    """Fix the database's mode on first use; refuse objects of the other mode afterwards."""
    mode = "live" if livemode else "test"
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (MODE_KEY,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (MODE_KEY, mode))
    elif row["value"] != mode:
        raise DonationError(
            f"This database holds Stripe {row['value']}-mode donations; a {mode}-mode object "
            "was refused",
            "Test and live data never mix in one database: use a key of the same mode, or "
            "point DISPATCH_DB at another database.",
        )


# -- payment links ----------------------------------------------------------------------


def save_payment_link(
    db: Database,
    *,
    link_id: str,
    url: str,
    kind: str,
    livemode: bool,
    amount_minor: int | None = None,
    currency: str = "",
    product_id: str | None = None,
    price_id: str | None = None,
) -> None:
    with db.transaction() as conn:
        _claim_mode(conn, livemode)
        conn.execute(
            "INSERT INTO payment_links (id, url, kind, amount_minor, currency, product_id,"
            " price_id, livemode, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET url = excluded.url",
            (
                link_id,
                url,
                kind,
                amount_minor,
                currency,
                product_id,
                price_id,
                int(livemode),
                to_db_time(utcnow()),
            ),
        )


def payment_links(db: Database) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM payment_links ORDER BY created_at, id").fetchall()


def payment_link_by_url(db: Database, url: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM payment_links WHERE url = ?", (url,)
    ).fetchone()
    return row


def main_payment_link(db: Database) -> sqlite3.Row | None:
    """The pay-what-you-want link made by setup, or else the first one adopted."""
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM payment_links ORDER BY kind != 'custom', kind != 'adopted', created_at"
        " LIMIT 1"
    ).fetchone()
    return row


def is_known_link(db: Database, link_id: str | None) -> bool:
    if not link_id:
        return False
    return db.execute("SELECT 1 FROM payment_links WHERE id = ?", (link_id,)).fetchone() is not None


def is_dispatch_token(db: Database, token: str | None) -> bool:
    """Whether a client_reference_id is one of the tokens Dispatch put in a donation link."""
    if not token:
        return False
    return db.execute("SELECT 1 FROM deliveries WHERE token = ?", (token,)).fetchone() is not None


# -- cursors and events -----------------------------------------------------------------


def get_cursor(db: Database, name: str) -> int | None:
    row = db.execute("SELECT value FROM sync_cursors WHERE name = ?", (name,)).fetchone()
    return int(row["value"]) if row else None


def advance_cursor(db: Database, name: str, value: int) -> None:
    """Move a cursor forward (never back)."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO sync_cursors (name, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = CASE WHEN excluded.value >"
            " sync_cursors.value THEN excluded.value ELSE sync_cursors.value END,"
            " updated_at = excluded.updated_at",
            (name, int(value), to_db_time(utcnow())),
        )


def stripe_event_seen(db: Database, event_id: str) -> bool:
    """Whether the webhook already handled this event."""
    row = db.execute("SELECT 1 FROM stripe_events WHERE id = ?", (event_id,)).fetchone()
    return row is not None


def record_stripe_event(db: Database, event_id: str, event_type: str) -> bool:
    """Remember a webhook event id; False when it was handled before (a redelivery)."""
    with db.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO stripe_events (id, type, received_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (event_id, event_type, to_db_time(utcnow())),
        )
        return cur.rowcount == 1


# -- donations --------------------------------------------------------------------------


def record_donation(db: Database, facts: Mapping[str, Any], source: str) -> tuple[str, int]:
    """Upsert one Checkout Session; returns ('new'|'updated'|'unchanged', donation id).

    ``facts`` has session_id, livemode, payment_link, payment_intent, checkout_mode, status
    (pending/paid/failed), amount_minor, currency, token, payer_email, created (Unix seconds).
    The token is looked up in the send ledger to find the subscriber and issue.
    """
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        _claim_mode(conn, bool(facts["livemode"]))
        delivery = None
        if facts.get("token"):
            delivery = conn.execute(
                "SELECT id, issue_id, subscriber_id, email FROM deliveries WHERE token = ?",
                (facts["token"],),
            ).fetchone()
        payer = facts.get("payer_email") or None
        forwarded = bool(
            delivery is not None
            and payer
            and delivery["email"]
            and payer.strip().casefold() != delivery["email"].strip().casefold()
        )
        existing = conn.execute(
            "SELECT * FROM donations WHERE session_id = ?", (facts["session_id"],)
        ).fetchone()
        status = facts["status"]
        if existing is not None and _STATUS_RANK[existing["status"]] > _STATUS_RANK[status]:
            status = existing["status"]  # never move backwards (a stale copy of the session)
        paid_at = existing["paid_at"] if existing is not None else None
        if status == DonationStatus.PAID and paid_at is None:
            paid_at = from_unix(facts["created"]) if existing is None else now
        values = {
            "livemode": int(bool(facts["livemode"])),
            "payment_link": facts.get("payment_link"),
            "payment_intent": facts.get("payment_intent"),
            "checkout_mode": facts.get("checkout_mode") or "payment",
            "status": status,
            "amount_minor": int(facts["amount_minor"]),
            "currency": str(facts["currency"]).lower(),
            "token": facts.get("token"),
            "delivery_id": delivery["id"] if delivery else None,
            "issue_id": delivery["issue_id"] if delivery else None,
            "subscriber_id": delivery["subscriber_id"] if delivery else None,
            "payer_email": payer,
            "possibly_forwarded": int(forwarded),
            "session_created_at": from_unix(facts["created"]),
            "paid_at": paid_at,
        }
        if existing is None:
            cols = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            cur = conn.execute(
                f"INSERT INTO donations ({cols}, session_id, source, first_seen_at, updated_at)"
                f" VALUES ({marks}, ?, ?, ?, ?)",
                (*values.values(), facts["session_id"], source, now, now),
            )
            return "new", int(cur.lastrowid or 0)
        if existing["delivery_id"] is not None and values["delivery_id"] is None:
            # The ledger row was deleted since (issue removed): keep the attribution we had.
            for key in ("delivery_id", "issue_id", "subscriber_id", "possibly_forwarded"):
                values[key] = existing[key]
        changed = {k: v for k, v in values.items() if existing[k] != v}
        if not changed:
            return "unchanged", int(existing["id"])
        assignments = ", ".join(f"{k} = ?" for k in changed)
        conn.execute(
            f"UPDATE donations SET {assignments}, updated_at = ? WHERE id = ?",
            (*changed.values(), now, existing["id"]),
        )
        return "updated", int(existing["id"])


def oldest_session_time(db: Database) -> int | None:
    """Unix time of the oldest Checkout Session recorded (refunds cannot be older)."""
    row = db.execute("SELECT MIN(session_created_at) AS oldest FROM donations").fetchone()
    if row is None or row["oldest"] is None:
        return None
    return int(datetime.fromisoformat(row["oldest"]).timestamp())


def pending_session_ids(db: Database) -> list[str]:
    """Sessions still waiting for a delayed payment method, to re-check on every sync."""
    rows = db.execute(
        "SELECT session_id FROM donations WHERE status = 'pending' ORDER BY id"
    ).fetchall()
    return [r["session_id"] for r in rows]


def record_refund(db: Database, facts: Mapping[str, Any]) -> str:
    """Upsert one refund; returns 'new', 'updated' or 'unchanged'."""
    now = to_db_time(utcnow())
    values = (
        facts.get("payment_intent"),
        facts.get("charge"),
        int(facts["amount_minor"]),
        str(facts["currency"]).lower(),
        facts["status"],
        int(bool(facts["livemode"])),
        from_unix(facts["created"]),
    )
    with db.transaction() as conn:
        _claim_mode(conn, bool(facts["livemode"]))
        existing = conn.execute(
            "SELECT payment_intent, charge, amount_minor, currency, status, livemode, created_at"
            " FROM refunds WHERE id = ?",
            (facts["refund_id"],),
        ).fetchone()
        if existing is None:
            conn.execute(
                "INSERT INTO refunds (payment_intent, charge, amount_minor, currency, status,"
                " livemode, created_at, id, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, facts["refund_id"], now),
            )
            return "new"
        if tuple(existing) == values:
            return "unchanged"
        conn.execute(
            "UPDATE refunds SET payment_intent = ?, charge = ?, amount_minor = ?, currency = ?,"
            " status = ?, livemode = ?, created_at = ?, updated_at = ? WHERE id = ?",
            (*values, now, facts["refund_id"]),
        )
        return "updated"


def open_refund_ids(db: Database) -> list[str]:
    """Refunds whose outcome is not final yet, to re-check on every sync."""
    rows = db.execute(
        "SELECT id FROM refunds WHERE status IN ('pending', 'requires_action') ORDER BY id"
    ).fetchall()
    return [r["id"] for r in rows]


def _donation(row: sqlite3.Row) -> Donation:
    return Donation(
        id=row["id"],
        session_id=row["session_id"],
        livemode=bool(row["livemode"]),
        status=DonationStatus(row["status"]),
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        refunded_minor=row["refunded_minor"],
        checkout_mode=row["checkout_mode"],
        payment_link=row["payment_link"],
        payment_intent=row["payment_intent"],
        token=row["token"],
        delivery_id=row["delivery_id"],
        issue_id=row["issue_id"],
        subscriber_id=row["subscriber_id"],
        payer_email=row["payer_email"],
        possibly_forwarded=bool(row["possibly_forwarded"]),
        session_created_at=row["session_created_at"],
        paid_at=row["paid_at"],
        source=row["source"],
    )


def list_donations(db: Database, issue_id: str | None = None, limit: int = 0) -> list[Donation]:
    """Donations newest first, with refunds netted (``refunded_minor``)."""
    sql = "SELECT * FROM donation_totals"
    params: tuple[Any, ...] = ()
    if issue_id:
        sql += " WHERE issue_id = ?"
        params = (issue_id,)
    sql += " ORDER BY session_created_at DESC, id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [_donation(row) for row in db.execute(sql, params).fetchall()]


def donation(db: Database, donation_id: int) -> Donation | None:
    row = db.execute("SELECT * FROM donation_totals WHERE id = ?", (donation_id,)).fetchone()
    return _donation(row) if row is not None else None


# -- used by render and send (their signatures are fixed) --------------------------------


def donor_personas(
    db: Database, now: datetime, recent_days: int, lapsed_days: int
) -> dict[int, str]:
    """Persona (models.Persona value) of every subscriber who has ever given; others are non-donors.

    The rule (recent / lapsed / non-donor windows) is documented in store.campaigns.personas.
    """
    return campaigns.personas(db, now, recent_days, lapsed_days)


def active_campaign_progress(db: Database, now: datetime) -> CampaignProgress | None:
    """The campaign running at ``now`` (UTC date) with its progress, or None."""
    return campaigns.active_progress(db, now)
