"""Unsubscribe and resubscribe by a reader's token (the links in every email, and the mail
provider's one-click POST). Every status change is a guarded UPDATE (only what
models.STATUS_CHANGES lets a reader do), so a repeated or late request repeats what was done.
Unsubscribes that met a locked database wait in ``store.unsubscribe_spool``.
"""

from __future__ import annotations

from collections.abc import Iterable

from dispatch.models import StatusActor, Subscriber
from dispatch.store import Database
from dispatch.store.subscribers import apply_status_change, get_subscriber


def subscriber_by_unsub_token(db: Database, token: str) -> Subscriber | None:
    row = db.execute("SELECT email FROM subscribers WHERE unsub_token = ?", (token,)).fetchone()
    return get_subscriber(db, row["email"]) if row else None


def change_status_by_token(
    db: Database, token: str, new_status: str, from_statuses: Iterable[str]
) -> tuple[Subscriber | None, bool]:
    """Move the subscriber holding ``token`` to ``new_status`` if their status is one of
    ``from_statuses``. Returns (the subscriber afterwards, whether anything changed)."""
    with db.transaction() as conn:  # only what models.STATUS_CHANGES lets a reader do
        changed = apply_status_change(
            conn, StatusActor.READER, new_status, "unsub_token", token, from_statuses
        )
    return subscriber_by_unsub_token(db, token), bool(changed)
