"""Unsubscribe and resubscribe from the link in every email. An unsubscribe that meets a
database kept locked by another writer is kept in the spool on disk (store.unsubscribe_spool)
and applied once the lock is free, so it is never lost."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from dispatch.models import StatusActor, Subscriber, statuses_from
from dispatch.store import Database, unsubscribe_spool, unsubscribes
from dispatch.store.locking import WritePatience, retry_when_locked
from dispatch.store.tokens import valid_token

log = logging.getLogger("dispatch.web")

#: Statuses a reader may leave from the unsubscribe link, and come back to.
UNSUBSCRIBABLE = statuses_from(StatusActor.READER, "unsubscribed")  # models.STATUS_CHANGES
RESUBSCRIBABLE = statuses_from(StatusActor.READER, "active")


def mask_address(email: str) -> str:
    """``an***@example.org``: enough for a reader to recognise, not to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}" if domain else "***"


def subscriber_for_token(db: Database, token: str) -> Subscriber | None:
    """Who an unsubscribe link belongs to (None for a forged, altered or outdated token)."""
    return unsubscribes.subscriber_by_unsub_token(db, token) if valid_token(token) else None


def unsubscribe(db: Database, token: str) -> Subscriber | None:
    """Unsubscribe the holder of ``token`` (idempotent); None when the token is unknown."""
    if not valid_token(token):
        return None
    subscriber, changed = unsubscribes.change_status_by_token(
        db, token, "unsubscribed", UNSUBSCRIBABLE
    )
    if changed:
        log.info("unsubscribed subscriber %s from the web", subscriber.id if subscriber else "?")
    return subscriber


def defer_unsubscribe(db: Database, token: str) -> Subscriber | None:
    """For when another writer keeps the database locked: check the token (a read, which a
    writer does not block) and keep the unsubscribe in the spool, on disk, to be applied by
    ``apply_deferred_unsubscribes``. None when the token is unknown (nothing kept)."""
    subscriber = subscriber_for_token(db, token)
    if subscriber is not None:
        unsubscribe_spool.spool_unsubscribe(db.path, token)
        log.info(
            "unsubscribe of subscriber %s kept in the spool: the database is busy", subscriber.id
        )
    return subscriber


def has_deferred_unsubscribes(db_path: Path) -> bool:
    return unsubscribe_spool.has_spooled(db_path)


def apply_deferred_unsubscribes(open_db: Callable[[], Database], patience: WritePatience) -> int:
    """Apply the spooled unsubscribes (on the outbox thread), waiting for the lock as long as
    ``patience`` says; what still cannot be written stays spooled for the next attempt."""
    with open_db() as db:
        done = retry_when_locked(
            lambda: unsubscribe_spool.apply_spooled_unsubscribes(
                db.path, lambda t: unsubscribe(db, t)
            ),
            patience,
            "spooled unsubscribes",
        )
    if done:
        log.info("applied %d spooled unsubscribe(s)", done)
    return done


def apply_spool_before_send(db: Database) -> int:
    """Apply this machine's spooled unsubscribes now (a send, about to fix or resume its
    ledger, must not mail a reader who has already asked to leave). Raises as the store does
    when the database is still busy; what was not applied stays spooled."""
    if not unsubscribe_spool.has_spooled(db.path):
        return 0
    done = unsubscribe_spool.apply_spooled_unsubscribes(db.path, lambda t: unsubscribe(db, t))
    if done:
        log.info("applied %d spooled unsubscribe(s) before a send", done)
    return done


def resubscribe(db: Database, token: str) -> Subscriber | None:
    """Undo an unsubscribe; bounced, complained and forgotten addresses stay as they are."""
    if not valid_token(token):
        return None
    subscriber, changed = unsubscribes.change_status_by_token(db, token, "active", RESUBSCRIBABLE)
    if changed:
        log.info("resubscribed subscriber %s from the web", subscriber.id if subscriber else "?")
    return subscriber
