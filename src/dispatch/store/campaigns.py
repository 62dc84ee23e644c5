"""Campaigns, their progress, donor personas and appeal segments (issue 4).

Gifts are read from the ``counted_gifts`` view (migration 0012): the one definition of which
donations count (paid, not refunded in full; a partly refunded gift counts with its net).
A subscriber's gifts are those attributed to them through their link (unless the payer's
address differed: "possibly forwarded") plus any paid with their own address (e.g. a
forwarded link, or the site's link).
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta

from dispatch.errors import InputError
from dispatch.models import CampaignProgress, Persona
from dispatch.store import Database, ledger, to_db_time, utcnow
from dispatch.store.supporters import donor_states

#: Addresses are stored lower-cased, so '= lower(?)' finds a payer on the UNIQUE index (COLLATE
#: NOCASE cannot use it and scanned every subscriber, once per payer).
PAYER_SUBSCRIBER = "SELECT id FROM subscribers WHERE email = lower(?)"


def last_gift_by_subscriber(db: Database) -> dict[int, str]:
    """Subscriber id -> time (ISO UTC text) of their latest counted gift."""
    last: dict[int, str] = {}

    def note(sub_id: int, when: str) -> None:
        if when and (sub_id not in last or when > last[sub_id]):
            last[sub_id] = when

    for row in db.execute(
        "SELECT subscriber_id, MAX(given_at) AS last"
        " FROM counted_gifts WHERE subscriber_id IS NOT NULL"
        " AND possibly_forwarded = 0 GROUP BY subscriber_id"
    ):
        note(int(row["subscriber_id"]), row["last"])
    by_payer = db.execute(
        "SELECT lower(payer_email) AS payer, MAX(given_at) AS last"
        " FROM counted_gifts WHERE payer_email IS NOT NULL GROUP BY payer"
    ).fetchall()
    payers = {r["payer"]: r["last"] for r in by_payer}
    # Donations are few next to subscribers: look each payer up rather than scan the list.
    for payer, when in payers.items():
        for sub in db.execute(PAYER_SUBSCRIBER, (payer,)):
            note(int(sub["id"]), when)
    return last


def personas(db: Database, now: datetime, recent_days: int, lapsed_days: int) -> dict[int, str]:
    """Each donor subscriber's persona, from their latest counted gift:

    - recent_donor: within ``recent_days`` of ``now`` (thanked, not asked again);
    - lapsed_donor: older than that but within ``lapsed_days`` (asked to renew);
    - older than ``lapsed_days``: a non-donor again, so left out like everyone who never gave.

    Recurring gifts (issue 11) come first: a donor with a monthly or yearly gift running is a
    supporter (thanked, never asked, shown the manage link), whenever it started; one whose card
    keeps failing is card_failing (asked to update the card); one whose gift was cancelled is
    asked to renew (unless a recent gift thanks them).
    """
    recent_cutoff = to_db_time(now - timedelta(days=recent_days)) or ""
    lapsed_cutoff = to_db_time(now - timedelta(days=lapsed_days)) or ""
    found: dict[int, str] = {}
    for sub_id, when in last_gift_by_subscriber(db).items():
        if when >= recent_cutoff:
            found[sub_id] = Persona.RECENT_DONOR.value
        elif when >= lapsed_cutoff:
            found[sub_id] = Persona.LAPSED_DONOR.value
    for sub_id, state in donor_states(db).items():
        if state == "active":
            found[sub_id] = Persona.SUPPORTER.value
        elif state == "failing":
            found[sub_id] = Persona.CARD_FAILING.value
        elif found.get(sub_id) != Persona.RECENT_DONOR.value:
            found[sub_id] = Persona.LAPSED_DONOR.value
    return found


# -- campaigns --------------------------------------------------------------------------


def create_campaign(
    db: Database, *, name: str, goal_minor: int, currency: str, starts_on: date, ends_on: date
) -> int:
    if goal_minor <= 0:
        raise InputError("A campaign goal must be more than zero", "Give --goal, e.g. 5000.")
    if ends_on < starts_on:
        raise InputError(
            f"The campaign ends ({ends_on}) before it starts ({starts_on})",
            "Give an --end date on or after --start.",
        )
    with db.transaction() as conn:
        if conn.execute("SELECT 1 FROM campaigns WHERE name = ?", (name,)).fetchone():
            raise InputError(f"A campaign named {name!r} already exists", "Choose another name.")
        cur = conn.execute(
            "INSERT INTO campaigns (name, goal_minor, currency, starts_on, ends_on, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                name,
                goal_minor,
                currency.lower(),
                starts_on.isoformat(),
                ends_on.isoformat(),
                to_db_time(utcnow()),
            ),
        )
        return int(cur.lastrowid or 0)


def get_campaign(db: Database, name: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM campaigns WHERE name = ?", (name,)
    ).fetchone()
    return row


def list_campaigns(db: Database) -> list[sqlite3.Row]:
    return db.execute("SELECT * FROM campaigns ORDER BY starts_on, id").fetchall()


def progress(db: Database, campaign: sqlite3.Row) -> CampaignProgress:
    """Net counted gifts in the campaign's currency, paid between its start and end dates
    (inclusive, UTC). Gifts in other currencies are not converted and do not count."""
    start = f"{campaign['starts_on']}T00:00:00"
    end = (date.fromisoformat(campaign["ends_on"]) + timedelta(days=1)).isoformat() + "T00:00:00"
    row = db.execute(
        "SELECT COALESCE(SUM(net_minor), 0) AS raised,"
        " COUNT(DISTINCT COALESCE(CAST(subscriber_id AS TEXT), lower(payer_email), session_id))"
        " AS donors FROM counted_gifts WHERE currency = ? AND given_at >= ? AND given_at < ?",
        (campaign["currency"], start, end),
    ).fetchone()
    return CampaignProgress(
        name=campaign["name"],
        goal_minor=int(campaign["goal_minor"]),
        currency=campaign["currency"],
        raised_minor=int(row["raised"]),
        donors=int(row["donors"]),
        ends_on=campaign["ends_on"],
    )


def active_progress(db: Database, now: datetime) -> CampaignProgress | None:
    """The campaign running on ``now``'s UTC date (the one ending soonest if several)."""
    today = (to_db_time(now) or "")[:10]
    row = db.execute(
        "SELECT * FROM campaigns WHERE starts_on <= ? AND ends_on >= ?"
        " ORDER BY ends_on, id LIMIT 1",
        (today, today),
    ).fetchone()
    return progress(db, row) if row is not None else None


# -- segments for standalone appeals -----------------------------------------------------

SEGMENTS = tuple(ledger.SEGMENT_FILTERS)


def fix_appeal_deliveries(
    db: Database,
    issue_id: str,
    segment: str,
    personas_by_id: dict[int, str],
    default_persona: str,
    donor_ids: set[int],
) -> int | None:
    """Fix the ledger of a draft appeal for one segment of the active subscribers, in one
    transaction, streaming inside SQLite; the issue leaves draft. Returns the number of rows,
    or None when the issue was no longer a draft (a rerun only resumes).

    all: every active subscriber; never-donated: those not in ``donor_ids`` (anyone with a
    counted gift, however old); lapsed / recent: those whose persona is lapsed / recent donor.
    Current supporters (a monthly gift running) are never asked, whatever the segment.
    """
    if segment not in SEGMENTS:
        raise InputError(f"Unknown segment {segment!r}", f"Use one of: {', '.join(SEGMENTS)}.")
    return ledger.fix_deliveries(
        db,
        issue_id,
        personas_by_id,
        default_persona,
        segment=segment,
        donor_ids=donor_ids,
        keep_draft_if_empty=True,
        skip_persona=Persona.SUPPORTER.value,
    )
