"""Recurring revenue and retention (issue 11): monthly recurring revenue now and month by month,
which issues bring monthly donors who stay (active after 1, 3, 6 and 12 months), and the
matching-campaign export (NewsMatch counts a new recurring donor at 12x the monthly gift).

Computed from the store's subscription rows (``store.retention``), never from Stripe directly.
Amounts are integers in each currency's minor unit, per currency, never added across
currencies; a yearly gift counts for a twelfth of its amount in MRR.
"""

from __future__ import annotations

import calendar
import csv
from collections.abc import Iterable
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from dispatch.errors import InputError
from dispatch.store import Database, from_db_time, utcnow
from dispatch.store import retention as q

#: Months after the start at which a cohort's donors are counted still giving.
MILESTONES = (1, 3, 6, 12)
#: Stripe statuses that still bring money (past_due: Stripe is retrying the card).
_GIVING = ("active", "trialing", "past_due")
_PER_MONTH = {
    "month": Fraction(1),
    "year": Fraction(1, 12),
    "week": Fraction(52, 12),
    "day": Fraction(365, 12),
}


def add_months(when: datetime, months: int) -> datetime:
    """``when`` moved by whole months, the day clamped to the month's last (as Stripe bills)."""
    year, month = divmod(when.month - 1 + months, 12)
    year += when.year
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return when.replace(year=year, month=month + 1, day=day)


def monthly_value(amount_minor: int, interval: str) -> Fraction:
    return amount_minor * _PER_MONTH.get(interval, Fraction(1))


def _giving_at(row: Any, point: datetime) -> bool:
    started = from_db_time(row["started_at"])
    ended = from_db_time(row["ended_at"])
    return started is not None and started <= point and (ended is None or ended > point)


def _sum(rows: Iterable[Any]) -> dict[str, int]:
    totals: dict[str, Fraction] = {}
    for row in rows:
        value = monthly_value(int(row["amount_minor"]), row["billing_interval"])
        totals[row["currency"]] = totals.get(row["currency"], Fraction(0)) + value
    return {cur: round(v) for cur, v in sorted(totals.items())}


def mrr(db: Database, now: datetime | None = None) -> dict[str, Any]:
    """``{"now": {currency: minor}, "months": [{"month": "2026-05", "mrr": {...}}, ...]}``.

    Now: every subscription Stripe reports as still giving (active, or past due while Stripe
    retries the card). Each past month: subscriptions started by its end and not ended by it.
    """
    now = now or utcnow()
    rows = q.subscription_rows(db)
    current = _sum(r for r in rows if r["status"] in _GIVING)
    months: list[dict[str, Any]] = []
    starts = [from_db_time(r["started_at"]) for r in rows]
    first = min((s for s in starts if s is not None), default=None)
    if first is not None:
        cursor = datetime(first.year, first.month, 1, tzinfo=UTC)
        while cursor <= now:
            end = min(add_months(cursor, 1), now)
            months.append(
                {
                    "month": cursor.strftime("%Y-%m"),
                    "mrr": _sum(r for r in rows if _giving_at(r, end)),
                }
            )
            cursor = add_months(cursor, 1)
    return {"now": current, "months": months}


def retention(db: Database, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per issue, monthly donors who started from it and how many still gave N months later.

    ``[{"issue", "started", "after": {"1": {"eligible", "active"}, ...}}]``: eligible = donors
    who started at least N months ago; active = those of them not ended N months after their
    start. A cohort too young for a milestone has eligible 0 there."""
    now = now or utcnow()
    cohorts: dict[str, list[Any]] = {}
    for row in q.subscription_rows(db):
        if row["billing_interval"] == "month" and row["issue_id"]:
            cohorts.setdefault(row["issue_id"], []).append(row)
    table = []
    for issue_id, rows in sorted(cohorts.items()):
        after = {}
        for months in MILESTONES:
            eligible = active = 0
            for row in rows:
                started = from_db_time(row["started_at"])
                assert started is not None
                point = add_months(started, months)
                if point > now:
                    continue
                eligible += 1
                ended = from_db_time(row["ended_at"])
                active += ended is None or ended >= point
            after[str(months)] = {"eligible": eligible, "active": active}
        table.append({"issue": issue_id, "started": len(rows), "after": after})
    return table


def recurring_donors(db: Database) -> list[dict[str, Any]]:
    """Each recurring gift with its donor's history: issue, status as Stripe reports it,
    amount per interval, start, end and Stripe's cancellation reason, failed charges and
    whether the card recovered (failures, yet still giving), paid invoices; and the donor's
    payments and failures oldest first (``history``)."""
    found = []
    for row in q.subscription_rows(db):
        history = [
            {
                "kind": h["kind"],
                "issue": h["issue_id"],
                "amount_minor": int(h["amount_minor"]),
                "currency": h["currency"],
                "at": h["at"],
            }
            for h in (
                q.donor_history(db, int(row["subscriber_id"]))
                if row["subscriber_id"] is not None
                else []
            )
        ]
        found.append(
            {
                "subscription": row["id"],
                "email": row["email"] or "",
                "issue": row["issue_id"],
                "status": row["status"],
                "amount_minor": int(row["amount_minor"]),
                "currency": row["currency"],
                "interval": row["billing_interval"],
                "started": row["started_at"],
                "ended": row["ended_at"],
                "cancel_reason": row["cancel_reason"],
                "failures": int(row["failures"]),
                "recovered": bool(row["failures"]) and row["status"] in ("active", "trialing"),
                "paid_invoices": int(row["paid_invoices"]),
                "history": history,
            }
        )
    return found


def recurring_figures(db: Database, issue_id: str) -> dict[str, Any]:
    """The report's ``recurring`` object of one issue and its ``lifetime`` amounts."""
    figures = q.issue_figures(db, issue_id)
    recurring = {
        k: figures[k] for k in ("donors_started", "active", "past_due", "cancelled", "renewals")
    }
    recurring["one_time_gifts"] = figures["one_time_gifts"]
    recurring["first_payments"] = figures["first_payments"]
    recurring["renewal_amounts"] = figures["renewals_amounts"]
    return {"recurring": recurring, "lifetime": q.lifetime(db, issue_id)}


def new_recurring_donors(db: Database, start: date, end: date) -> list[dict[str, Any]]:
    """Donors whose subscription started between two dates (inclusive, UTC), with the
    annualised value a matching campaign credits: 12x a monthly gift, a yearly gift once."""
    if end < start:
        raise InputError(
            f"The range ends ({end}) before it starts ({start})", "Give --since before --until."
        )
    found = []
    for row in q.new_subscriptions(db, start.isoformat(), end.isoformat()):
        annual = monthly_value(int(row["amount_minor"]), row["billing_interval"]) * 12
        found.append(
            {
                "email": row["email"] or "",
                "name": row["name"] or "",
                "issue": row["issue_id"] or "",
                "started": (row["started_at"] or "")[:10],
                "interval": row["billing_interval"],
                "amount_minor": int(row["amount_minor"]),
                "currency": row["currency"],
                "annualised_minor": round(annual),
                "status": row["status"],
            }
        )
    return found


def write_newsmatch_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """The matching-campaign export: one row per new recurring donor (minor units)."""
    fields = [
        "email",
        "name",
        "issue",
        "started",
        "interval",
        "amount_minor",
        "currency",
        "annualised_minor",
        "status",
    ]
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise InputError(f"Cannot write {path}: {exc.strerror}", "Check the path.") from exc
