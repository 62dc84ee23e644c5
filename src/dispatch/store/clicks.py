"""Clicks on personal donation links (``/d/<token>``), counted per delivery token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dispatch.store import Database, to_db_time, utcnow


@dataclass(frozen=True)
class ClickTarget:
    """What the redirect needs of a delivery: the address it went to (None once forgotten)."""

    issue_id: str
    email: str | None


def record_click(db: Database, token: str, at: datetime | None = None) -> ClickTarget | None:
    """Count one click on a donation link; None (and nothing stored) for an unknown token."""
    when = to_db_time(at or utcnow())
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT d.issue_id, d.email, d.subscriber_id FROM deliveries d WHERE d.token = ?",
            (token,),
        ).fetchone()
        if row is None:
            return None
        conn.execute("INSERT INTO clicks (token, clicked_at) VALUES (?, ?)", (token, when))
    email = row["email"] if row["subscriber_id"] is not None else None
    return ClickTarget(row["issue_id"], email or None)


def click_count(db: Database, token: str) -> int:
    return int(db.execute("SELECT COUNT(*) FROM clicks WHERE token = ?", (token,)).fetchone()[0])
