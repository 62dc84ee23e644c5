"""One send per SQLite database at a time: an flock on ``<database>.send-lock``.

Rows another live run has in flight are not in doubt, so a second send must not start. On
PostgreSQL several senders share a send (``store.senders``): the lock here (an advisory lock
on the server) covers only a send's setting up (rendering a draft, fixing its ledger, settling
what stopped senders left), and a second sender waits for it, then joins. The
holder removes the file before letting go; a taker checks that the file it locked is still the
one at the path (else it locked a file just removed, which excludes nobody). The OS drops the
lock of a killed send: the file it leaves is simply locked and removed by the next one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dispatch.errors import SendError
from dispatch.store import Database

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]


#: Seconds a PostgreSQL sender waits for another one's setting up before it gives up.
SETUP_WAIT = 600.0


@contextmanager
def send_lock(db: Database, wait: float = SETUP_WAIT) -> Iterator[None]:
    """One send per SQLite database at a time: rows another live run has in flight are not in
    doubt. On PostgreSQL: one sender setting up at a time (``wait`` seconds for the lock)."""
    if db.engine == "postgresql":  # the server holds the lock, across all machines
        with _postgres_send_lock(db, wait):
            yield
        return
    if fcntl is None:
        yield
        return
    path = Path(f"{Path(db.path).resolve()}.send-lock")  # one lock whatever path reached it
    # `dispatch status` holds the lock for an instant to see whether a send runs: a send
    # starting at that moment waits a little rather than refusing.
    deadline = time.monotonic() + 2.0
    while True:
        handle = open(path, "a+")  # noqa: SIM115 - held for the whole send
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            if time.monotonic() > deadline:
                raise SendError(
                    "Another `dispatch send` is running on this database",
                    "Wait for it to finish (or stop it); then rerun to resume.",
                ) from None
            time.sleep(0.05)
            continue
        # Locked, but the file may have been removed (and made anew) by the send that held
        # it before: a lock on a file no longer at the path excludes nobody, so take it again.
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    try:
        yield
    finally:
        # Only the holder removes the file, before letting go of the lock: a file left by a
        # killed send (the OS dropped its lock) is simply locked and removed by the next one.
        try:
            path.unlink()
        except OSError:
            pass
        finally:
            handle.close()


@contextmanager
def _postgres_send_lock(db: Database, wait: float) -> Iterator[None]:
    """A session-level advisory lock on a connection of its own (released by the server if the
    process dies)."""
    from dispatch.store.postgres_db import SEND_LOCK, session_lock

    with session_lock(db, SEND_LOCK, wait=wait) as got:
        if not got:
            raise SendError(
                f"Another `dispatch send` has been setting up a send on this database (on this "
                f"or another machine) for more than {wait:.0f} s",
                "Wait for it (a big list's ledger takes a while to fix), or stop it; then "
                "rerun to join the send.",
            )
        yield


def send_running(db: Database) -> bool:
    """Whether a `dispatch send` holds this database's send lock right now (on PostgreSQL:
    or any sender's lease still runs)."""
    if db.engine == "postgresql":
        from dispatch.store import senders
        from dispatch.store.postgres_db import SEND_LOCK, session_lock

        with session_lock(db, SEND_LOCK, wait=0) as got:
            return not got or senders.running(db) > 0
    if fcntl is None:
        return False
    path = Path(f"{Path(db.path).resolve()}.send-lock")
    try:
        handle = open(path)  # noqa: SIM115 - never creates the file the send removes
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
