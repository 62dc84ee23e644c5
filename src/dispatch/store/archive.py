"""The public archive: the digests that went out, and their stored non-donor copy."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from dispatch.store import Database


@dataclass(frozen=True)
class ArchivedIssue:
    id: str
    subject: str
    preheader: str
    sent_at: datetime | None


def _archived(row: sqlite3.Row) -> ArchivedIssue:
    stamp = row["sent_at"] or row["send_started_at"]
    return ArchivedIssue(
        row["id"],
        row["subject"],
        row["preheader"],
        datetime.fromisoformat(stamp) if stamp else None,
    )


_PUBLIC = "kind = 'digest' AND status IN ('sending', 'sent')"


def archived_issues(db: Database) -> list[ArchivedIssue]:
    """Digests that went out (or are going out), newest first."""
    rows = db.execute(
        f"SELECT id, subject, preheader, sent_at, send_started_at FROM issues WHERE {_PUBLIC}"
        " ORDER BY COALESCE(sent_at, send_started_at, created_at) DESC, id DESC"
    ).fetchall()
    return [_archived(r) for r in rows]


def archived_variant(db: Database, issue_id: str, variant: str) -> sqlite3.Row | None:
    """The stored variant of a public digest (None for drafts, appeals and unknown ids)."""
    row: sqlite3.Row | None = db.execute(
        "SELECT i.id, i.subject, v.html FROM issues i JOIN issue_variants v ON v.issue_id = i.id"
        " WHERE i.id = ? AND v.variant = ? AND i.kind = 'digest'"
        " AND i.status IN ('sending', 'sent')",
        (issue_id, variant),
    ).fetchone()
    return row
