"""Campaign use cases and the donation listing (issue 4)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from dispatch.config import Settings
from dispatch.errors import InputError
from dispatch.money import to_minor_units
from dispatch.store import Database, utcnow
from dispatch.store import campaigns as store
from dispatch.store import donations as donation_store


def create(
    db: Database,
    settings: Settings,
    *,
    name: str,
    goal: str,
    currency: str | None,
    starts_on: date,
    ends_on: date,
) -> Any:
    name = name.strip()
    if not name:
        raise InputError("A campaign needs a name", 'Give one, e.g. "Winter drive".')
    code = (currency or settings.currency).lower()
    store.create_campaign(
        db,
        name=name,
        goal_minor=to_minor_units(goal, code),
        currency=code,
        starts_on=starts_on,
        ends_on=ends_on,
    )
    row = store.get_campaign(db, name)
    assert row is not None
    return row


def overview(db: Database, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every campaign with its progress and whether it is upcoming, running or ended."""
    today = (now or utcnow()).date().isoformat()
    out = []
    for row in store.list_campaigns(db):
        progress = store.progress(db, row)
        state = (
            "upcoming"
            if row["starts_on"] > today
            else "ended"
            if row["ends_on"] < today
            else "running"
        )
        out.append(
            {
                "name": row["name"],
                "goal_minor": row["goal_minor"],
                "currency": row["currency"],
                "starts_on": row["starts_on"],
                "ends_on": row["ends_on"],
                "raised_minor": progress.raised_minor,
                "donors": progress.donors,
                "percent": progress.percent,
                "state": state,
            }
        )
    return out


def donation_rows(db: Database, issue_id: str | None, limit: int) -> list[dict[str, Any]]:
    """Donations for `donations list`: amounts and attribution, never the payer's address
    or the link token."""
    return [
        {
            "session": r.session_id,
            "created": r.session_created_at,
            "status": r.status,
            "amount_minor": r.amount_minor,
            "refunded_minor": r.refunded_minor,
            "net_minor": r.amount_minor - r.refunded_minor,
            "currency": r.currency,
            "issue": r.issue_id,
            "subscriber_id": r.subscriber_id,
            "possibly_forwarded": r.possibly_forwarded,
            "source": r.source,
        }
        for r in donation_store.list_donations(db, issue_id, limit)
    ]
