"""Waiting for other writers: a web request's writes meet an import or a send holding the
SQLite write lock. ``connect_web`` waits a short while for the lock, and ``retry_when_locked``
tries a few more times before giving up with DatabaseBusyError (the web service answers 503
with Retry-After, never a 500; the signup and spool work on the outbox thread waits longer).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dispatch.errors import StoreError
from dispatch.store import Database, PostgresURL, connect, open_db

log = logging.getLogger("dispatch.web")
T = TypeVar("T")


class DatabaseBusyError(StoreError):
    """Another writer held the database through every attempt of a web request's write."""

    default_hint = "Try again in a few seconds."


@dataclass(frozen=True)
class WritePatience:
    """How long a web write waits for another writer: SQLite's own busy wait per attempt
    (``busy_ms``), then a pause before each further attempt. The defaults give up after about
    five seconds, well inside gunicorn's 30-second worker timeout."""

    busy_ms: int = 1500
    pauses: tuple[float, ...] = (0.1, 0.4)
    retry_after: int = 10  # seconds, said to the client with the 503


#: PostgreSQL's codes for "another transaction held what we waited for": lock_timeout ran out,
#: a serialization failure, a deadlock. Each is safe to retry as a whole transaction.
POSTGRES_LOCKED = ("55P03", "40001", "40P01")


def connect_web(path: Path | PostgresURL, patience: WritePatience) -> Database:
    """A connection for one web request, waiting at most ``busy_ms`` per attempt for a lock."""
    if isinstance(path, PostgresURL):  # pooled; a lock waits lock_timeout, as busy_timeout
        db = open_db(path)
        db.execute(f"SET lock_timeout = {int(patience.busy_ms)}")
        return db
    conn = connect(path)
    conn.execute(f"PRAGMA busy_timeout={int(patience.busy_ms)}")
    return Database(conn, path)


def is_locked(exc: BaseException) -> bool:
    """Whether a SQLite error is another connection's lock (SQLITE_BUSY or SQLITE_LOCKED), or a
    PostgreSQL one of POSTGRES_LOCKED."""
    if type(exc).__module__.startswith("psycopg"):
        return getattr(exc, "sqlstate", None) in POSTGRES_LOCKED
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def retry_when_locked(call: Callable[[], T], patience: WritePatience, what: str) -> T:
    """``call()``, tried again after a short pause while the database is locked by another
    writer; DatabaseBusyError when every attempt met the lock. ``call`` must be safe to
    repeat (each write is one transaction, or guarded so that repeating it changes nothing)."""
    for attempt, pause in enumerate((*patience.pauses, None), start=1):
        try:
            return call()
        except Exception as exc:
            if not is_locked(exc):
                raise
            if pause is None:
                log.warning(
                    "%s: the database stayed locked by another writer through %d "
                    "attempts; giving up",
                    what,
                    attempt,
                )
                raise DatabaseBusyError(
                    "The database is busy with another writer (an import or a send)"
                ) from exc
            log.info(
                "%s: the database is locked by another writer; retrying (attempt %d)",
                what,
                attempt + 1,
            )
            time.sleep(pause * random.uniform(1.0, 1.5))  # jitter: workers do not retry in step
    raise AssertionError("unreachable")
