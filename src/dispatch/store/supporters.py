"""Who gives (issue 11): a donor's recurring state for donor-aware mail, the reader behind a
delivery token for the donation page, and the subscription a monthly gift started for its
thank-you. Reads only; the records are written by ``store.recurring``."""

from __future__ import annotations

from dispatch.store import Database

#: Stripe statuses of a subscription whose donor is giving now, and of one that ended.
ACTIVE = ("active", "trialing")
ENDED = ("canceled", "incomplete_expired")
FAILING = ("past_due", "unpaid")


def reader_of_token(db: Database, token: str) -> tuple[str, str | None] | None:
    """(issue id, the reader's address while still a subscriber) of a delivery token, or None
    for an unknown one; nothing is counted (the donation page's POST)."""
    row = db.execute(
        "SELECT issue_id, email, subscriber_id FROM deliveries WHERE token = ?", (token,)
    ).fetchone()
    if row is None:
        return None
    return row["issue_id"], (row["email"] if row["subscriber_id"] is not None else None)


#: Each subscription with the reader who gives through it: the link's recipient, unless the
#: Checkout Session that started it was paid by someone else (a forwarded copy); then the
#: subscriber whose address paid, if any. The forwarder is never made a supporter.
_GIVERS = (
    "SELECT giver AS subscriber_id, {columns} FROM ("
    " SELECT s.*, CASE WHEN COALESCE(d.possibly_forwarded, 0) = 0 THEN o.subscriber_id"
    "  ELSE (SELECT p.id FROM subscribers p WHERE p.email = lower(d.payer_email)) END AS giver"
    " FROM subscriptions s JOIN subscription_origins o ON o.subscription_id = s.id"
    " LEFT JOIN donations d ON d.session_id = o.session_id) s"
    " WHERE giver IS NOT NULL"
)


def donor_states(db: Database) -> dict[int, str]:
    """Subscriber id -> their recurring giving as Stripe last reported it: 'active' (any gift
    still running), else 'failing' (past due: the card keeps failing), else 'cancelled'."""
    rank = {"cancelled": 0, "failing": 1, "active": 2}
    states: dict[int, str] = {}
    for row in db.execute(_GIVERS.format(columns="s.status")):
        status = row["status"]
        state = (
            "active"
            if status in ACTIVE
            else "failing"
            if status in FAILING
            else "cancelled"
            if status in ENDED
            else None
        )
        sub_id = int(row["subscriber_id"])
        if state and rank[state] > rank.get(states.get(sub_id, ""), -1):
            states[sub_id] = state
    return states


def subscription_of_donation(db: Database, donation_id: int) -> str | None:
    """The subscription a monthly gift's Checkout Session started, once its origin is known."""
    row = db.execute(
        "SELECT o.subscription_id FROM donations d"
        " JOIN subscription_origins o ON o.session_id = d.session_id WHERE d.id = ?",
        (donation_id,),
    ).fetchone()
    return row["subscription_id"] if row else None


def gift_subscriptions(db: Database) -> dict[int, str]:
    """Subscriber id -> the monthly gift their manage link names: a running one, else one whose
    card keeps failing (the supporter and card_failing copies)."""
    found: dict[int, tuple[int, str]] = {}
    for row in db.execute(_GIVERS.format(columns="s.id, s.status") + " ORDER BY s.id"):
        rank = 2 if row["status"] in ACTIVE else 1 if row["status"] in FAILING else 0
        sub_id = int(row["subscriber_id"])
        if rank and rank > found.get(sub_id, (0, ""))[0]:
            found[sub_id] = (rank, row["id"])
    return {sub_id: subscription for sub_id, (_, subscription) in found.items()}


def language_of_subscription(db: Database, subscription_id: str) -> str:
    """The language of the subscriber who gives through a subscription (the payer when the
    link was forwarded; see _GIVERS), "" when none is known."""
    row = db.execute(
        "SELECT r.language FROM (" + _GIVERS.format(columns="s.id") + ") g"
        " JOIN subscribers r ON r.id = g.subscriber_id WHERE g.id = ?",
        (subscription_id,),
    ).fetchone()
    return str(row["language"] or "") if row else ""
