"""Read-only queries behind `dispatch report` (issue 4): per-issue ledger counts, bounces,
unsubscribes, clicks and donations, per-donor totals and unattributed gifts.

A gift counts when paid and not refunded in full; amounts are net of refunds, per currency.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from dispatch.store import Database


def issues(db: Database, issue_id: str | None = None) -> list[dict[str, Any]]:
    """Digest and appeal issues that have a ledger (or the one asked for), oldest first."""
    sql = (
        "SELECT id, kind, status, subject, created_at, send_started_at, sent_at FROM issues"
        " WHERE kind IN ('digest', 'appeal')"
    )
    params: tuple[Any, ...] = ()
    if issue_id is not None:
        sql += " AND id = ?"
        params = (issue_id,)
    else:
        sql += " AND EXISTS (SELECT 1 FROM deliveries WHERE issue_id = issues.id)"
    sql += " ORDER BY COALESCE(send_started_at, created_at), id"
    return [dict(zip(r.keys(), tuple(r), strict=True)) for r in db.execute(sql, params)]


def ledger_counts(db: Database) -> dict[str, dict[str, int]]:
    """issue id -> {recipients, sent, failed, ...every state}."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in db.execute(
        "SELECT issue_id, state, COUNT(*) AS n FROM deliveries GROUP BY issue_id, state"
    ):
        out[r["issue_id"]][r["state"]] = int(r["n"])
        out[r["issue_id"]]["recipients"] += int(r["n"])
    return out


def bounced(db: Database) -> dict[str, int]:
    """Distinct recipients of each issue with a bounce (hard or soft) recorded."""
    rows = db.execute(
        "SELECT issue_id, COUNT(DISTINCT COALESCE('d' || delivery_id, 's' || subscriber_id,"
        " 'b' || id)) AS n FROM bounces WHERE issue_id IS NOT NULL GROUP BY issue_id"
    )
    return {r["issue_id"]: int(r["n"]) for r in rows}


def unsubscribed_since(db: Database) -> dict[str, int]:
    """Recipients of each issue who unsubscribed or complained after its send began."""
    rows = db.execute(
        "SELECT l.issue_id, COUNT(*) AS n FROM deliveries l"
        " JOIN issues i ON i.id = l.issue_id"
        " JOIN subscribers s ON s.id = l.subscriber_id"
        " WHERE s.status IN ('unsubscribed', 'complained')"
        " AND s.status_changed_at >= COALESCE(i.send_started_at, i.sent_at, i.created_at)"
        " GROUP BY l.issue_id"
    )
    return {r["issue_id"]: int(r["n"]) for r in rows}


#: Mail security scanners fetch every link within moments of delivery; like Keila, clicks that
#: come this soon after a copy was handed over are not counted as a reader's.
SCANNER_GRACE_SECONDS = 60


def clicks(db: Database) -> dict[str, tuple[int, int]]:
    """issue id -> (donation-link clicks, distinct recipients who clicked), scanners left out."""
    rows = db.execute(
        "SELECT l.issue_id, COUNT(*) AS n, COUNT(DISTINCT l.id) AS who FROM clicks c"
        " JOIN deliveries l ON l.token = c.token"
        " WHERE l.sent_at IS NULL OR julianday(c.clicked_at) >= julianday(l.sent_at) + ? / 86400.0"
        " GROUP BY l.issue_id",
        (SCANNER_GRACE_SECONDS,),
    )
    return {r["issue_id"]: (int(r["n"]), int(r["who"])) for r in rows}


def no_gifts() -> dict[str, Any]:
    """The figures of an issue without any gift (what ``gifts_by_issue`` fills in)."""
    return {
        "donations": 0,
        "donors": 0,
        "amounts": {},
        "refunded": {},
        "pending": 0,
        "forwarded": 0,
    }


def gifts_by_issue(db: Database) -> dict[str | None, dict[str, Any]]:
    """issue id (None = unattributed) -> counts and net amounts per currency."""
    out: dict[str | None, dict[str, Any]] = {}

    def entry(issue: str | None) -> dict[str, Any]:
        return out.setdefault(issue, no_gifts())

    for r in db.execute(
        "SELECT d.issue_id, d.currency, COUNT(*) AS n,"
        " SUM(d.net_minor) AS net, SUM(d.possibly_forwarded) AS fwd"
        " FROM counted_gifts d GROUP BY d.issue_id, d.currency"
    ):
        e = entry(r["issue_id"])
        e["donations"] += int(r["n"])
        e["forwarded"] += int(r["fwd"] or 0)
        e["amounts"][r["currency"]] = int(r["net"])
    for r in db.execute(
        "SELECT d.issue_id, d.currency, SUM(d.refunded_minor) AS refunded FROM donation_totals d"
        " WHERE d.status = 'paid' AND d.refunded_minor > 0 GROUP BY d.issue_id, d.currency"
    ):
        entry(r["issue_id"])["refunded"][r["currency"]] = int(r["refunded"])
    for r in db.execute(
        "SELECT d.issue_id, COUNT(DISTINCT d.subscriber_id) AS donors FROM counted_gifts d"
        " WHERE d.subscriber_id IS NOT NULL GROUP BY d.issue_id"
    ):
        entry(r["issue_id"])["donors"] = int(r["donors"])
    for r in db.execute(
        "SELECT issue_id, COUNT(*) AS n FROM donations WHERE status = 'pending' GROUP BY issue_id"
    ):
        entry(r["issue_id"])["pending"] = int(r["n"])
    return out


def donors(db: Database) -> list[dict[str, Any]]:
    """Per subscriber with counted gifts through their links: count, net amounts per currency,
    the issues that prompted them, first and last gift. Ordered by last gift, newest first."""
    people: dict[int, dict[str, Any]] = {}
    for r in db.execute(
        "SELECT d.subscriber_id, s.email, s.name, d.issue_id, d.currency,"
        " d.net_minor AS net, d.possibly_forwarded, d.given_at"
        " FROM counted_gifts d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
        " WHERE d.subscriber_id IS NOT NULL ORDER BY d.given_at"
    ):
        person = people.setdefault(
            int(r["subscriber_id"]),
            {
                "subscriber_id": int(r["subscriber_id"]),
                "email": r["email"],
                "name": r["name"],
                "donations": 0,
                "amounts": {},
                "issues": [],
                "possibly_forwarded": 0,
                "first_gift": r["given_at"],
                "last_gift": r["given_at"],
            },
        )
        person["donations"] += 1
        person["amounts"][r["currency"]] = person["amounts"].get(r["currency"], 0) + int(r["net"])
        if r["issue_id"] not in person["issues"]:
            person["issues"].append(r["issue_id"])
        person["possibly_forwarded"] += int(r["possibly_forwarded"])
        person["last_gift"] = r["given_at"]
    return sorted(people.values(), key=lambda p: (p["last_gift"], p["subscriber_id"]), reverse=True)
