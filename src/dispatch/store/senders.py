"""Several senders on one ledger (PostgreSQL only; issue 15).

`dispatch send ISSUE` started on several machines against one PostgreSQL database shares the
work. Each sender is a row of ``send_senders`` (migration 0015) and holds two proofs of life:

- a **lease**: ``lease_until`` on the database server's clock (no two machines' clocks are
  compared), renewed every ``HEARTBEAT`` seconds by a thread of its own;
- a **session advisory lock** ``(LOCK_CLASS, id)`` on that thread's connection: the server
  drops it the moment the process dies (its socket closes), so a sender killed with SIGKILL is
  seen dead at once, while a machine that hangs or loses the network is seen dead when its
  lease runs out.

Rows are claimed in small batches with ``FOR UPDATE SKIP LOCKED`` (``deliveries.sender`` names
the claimer; the row stays ``pending``), so senders started together each take what they can
send: a fair share by construction. Right before a message's data goes out its sending thread
moves the row to ``sending`` with a guarded UPDATE on a connection of its own (``Marker``): a
row that is no longer this sender's (it was taken over while this sender was paused past its
lease) refuses, and the message is not sent. That write is the fence that keeps every reader
mailed once; it is committed without waiting for the server's disk (``synchronous_commit =
off``): the server has it (and every other session sees it) before the data goes, which is
what a sender's death needs, and a crash of the database server itself is covered by the
sender's own journal on its machine (``store.journal``).

A sender found dead is taken over (``take_over``): its ``sending`` rows become ``uncertain``
(their messages may have arrived), its ``pending`` ones go back to the common pool. Its journal
stays on its machine: that machine's next run applies it (``store.journal.recover``), turning
the rows it knows were sent or refused from ``uncertain`` into what they are.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from dispatch.errors import StoreError
from dispatch.store import Database, to_db_time, utcnow
from dispatch.store.journal import IN_DOUBT, TAKEN_OVER
from dispatch.store.ledger import Claimed, claimed_rows

#: Seconds a sender's lease lasts without renewal (DISPATCH_SEND_LEASE overrides it).
LEASE_SECONDS = 30.0
#: Seconds between renewals (and between a waiting sender's looks for dead ones).
HEARTBEAT = 1.0
#: First key of the senders' session advisory locks (the second is the sender's id).
LOCK_CLASS = 0x64697370  # "disp"

_NOW = "extract(epoch FROM clock_timestamp())"

#: The fence on the sender's own registration: a sender taken over claims and marks nothing
#: more. FOR SHARE waits for a take_over that is changing the row, so no mark can slip in
#: between its steps. (Its placeholder, the sender's id, in psycopg's or the store's style.)
_STILL_RUNNING = "EXISTS (SELECT 1 FROM send_senders WHERE id = {} AND state = 'running' FOR SHARE)"


def _connect(db: Database, options: str = "") -> psycopg.Connection[Any]:
    """A connection of its own to ``db``'s server (not from the pool: held for the whole send)."""
    from dispatch.store.postgres import CONNECT_TIMEOUT, LOCK_TIMEOUT_MS, _connect_error
    from dispatch.store.postgres_db import PostgresDatabase

    assert isinstance(db, PostgresDatabase)
    try:
        return psycopg.connect(
            db.target.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            application_name="dispatch-send",
            options=f"-c lock_timeout={LOCK_TIMEOUT_MS} {options}".strip(),
        )
    except psycopg.Error as exc:
        raise _connect_error(db.target, exc) from None


class Sender:
    """This process's part in a shared send: its row, its lock and its lease."""

    def __init__(
        self,
        db: Database,
        issue_id: str,
        relay: str,
        journal: str,
        lease: float = LEASE_SECONDS,
        learnt: Callable[[], float] = float,
    ) -> None:
        """``learnt`` tells the pace this sender has found so far (published with each renewal,
        so that the senders of one relay can add up what it allows)."""
        self.db = db
        self.issue_id = issue_id
        self.relay = relay
        self.journal = journal
        self.lease = lease
        self.learnt = learnt
        self.id = 0
        self.sent = 0
        self.lost = False  # the row was taken over: this sender is considered dead
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Take the lock, then show the row (never the row without the lock: another sender
        would find it unlocked and take it over), then keep the lease alive."""
        conn = self._conn = _connect(self.db)
        try:
            while True:
                candidate = secrets.randbelow(2**31 - 1) + 1
                got = conn.execute(
                    "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, candidate)
                ).fetchone()
                if got and got[0]:
                    break
            self.id = candidate
            conn.execute(
                "INSERT INTO send_senders (id, issue_id, host, pid, journal, relay, lease_until,"
                f" began, started_at) VALUES (%s, %s, %s, %s, %s, %s, {_NOW} + %s, {_NOW}, %s)",
                (
                    self.id,
                    self.issue_id,
                    socket.gethostname(),
                    os.getpid(),
                    self.journal,
                    self.relay,
                    self.lease,
                    to_db_time(utcnow()),
                ),
            )
        except BaseException:
            conn.close()
            self._conn = None
            raise
        self._thread = threading.Thread(target=self._beat, name="dispatch-lease", daemon=True)
        self._thread.start()

    def _renew(self, conn: psycopg.Connection[Any]) -> None:
        renewed = conn.execute(
            f"UPDATE send_senders SET lease_until = {_NOW} + %s, sent = %s, learnt = %s"
            " WHERE id = %s AND state = 'running'",
            (self.lease, self.sent, self.learnt(), self.id),
        ).rowcount
        if not renewed:
            self.lost = True

    def _beat(self) -> None:
        conn = self._conn
        assert conn is not None
        while not self._stop.wait(HEARTBEAT) and not self.lost:
            # A missed renewal is no reason to stop sending: the marks are the fence. If the
            # server stays unreachable the marks fail too, and the send stops there.
            with contextlib.suppress(psycopg.Error):
                self._renew(conn)

    def stop(self) -> None:
        """The send is over for this sender (call after its journal was applied): rows it
        still claims go back to the pool, a row still ``sending`` (its journal line was never
        written) is in doubt, its row says how it ended, its lock and lease end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            self._end(conn)
        except psycopg.Error:
            # The heartbeat's connection broke (and its lock with it): end on a new one. If
            # that fails too, the next sender's take_over settles this one's rows.
            with contextlib.suppress(psycopg.Error, StoreError), _connect(self.db) as fresh:
                self._end(fresh)
        finally:
            conn.close()  # and with it the lock

    def _end(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute(
                "UPDATE deliveries SET state = 'uncertain', last_reply = %s, updated_at = %s"
                " WHERE sender = %s AND state = 'sending'",
                (IN_DOUBT, to_db_time(utcnow()), self.id),
            )
            released = conn.execute(
                "UPDATE deliveries SET sender = NULL WHERE sender = %s AND state = 'pending'",
                (self.id,),
            ).rowcount
            conn.execute(
                "UPDATE send_senders SET state = %s, ended_at = %s, sent = %s, learnt = %s"
                " WHERE id = %s AND state = 'running'",
                (
                    "stopped" if released else "finished",
                    to_db_time(utcnow()),
                    self.sent,
                    self.learnt(),
                    self.id,
                ),
            )

    def still_running(self) -> bool:
        """Whether this sender's row still says running (not taken over by another)."""
        row = self.db.execute("SELECT state FROM send_senders WHERE id = ?", (self.id,)).fetchone()
        return row is not None and row["state"] == "running"

    def claim(self, limit: int) -> tuple[list[Claimed], int]:
        """Up to ``limit`` free pending rows, now this sender's, in ledger order; and how many
        rows were looked at. Rows of readers no longer active are marked skipped (as
        ``ledger.claim`` does)."""
        rows = self.db.execute(
            "WITH picked AS (UPDATE deliveries d SET sender = ? FROM (SELECT id FROM deliveries"
            " WHERE issue_id = ? AND state = 'pending' AND sender IS NULL ORDER BY id LIMIT ?"
            " FOR UPDATE SKIP LOCKED) free WHERE d.id = free.id AND "
            + _STILL_RUNNING.format("?")
            + " RETURNING d.id, d.subscriber_id, d.email, d.token, d.variant, d.attempts)"
            " SELECT p.*, s.name, s.first_name, s.unsub_token, s.status FROM picked p"
            " LEFT JOIN subscribers s ON s.id = p.subscriber_id ORDER BY p.id",
            (self.id, self.issue_id, limit, self.id),
        ).fetchall()
        return claimed_rows(self.db, rows), len(rows)

    def others_open(self) -> bool:
        """Whether rows this sender may still get exist: free pending rows, or open rows in
        the hands of other senders (they may die, and their rows come free or in doubt)."""
        row = self.db.execute(
            "SELECT 1 FROM deliveries WHERE issue_id = ? AND state IN ('pending', 'sending')"
            " AND (sender IS NULL OR sender <> ?) LIMIT 1",
            (self.issue_id, self.id),
        ).fetchone()
        return row is not None


class Marker:
    """The sending threads' fence: each thread marks its row ``sending`` on its own connection
    right before the message's data goes out, only if the row is still this sender's."""

    def __init__(self, db: Database, sender: Sender) -> None:
        self.db = db
        self.sender = sender
        self._local = threading.local()
        self._conns: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = _connect(self.db, "-c synchronous_commit=off")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def mark(self, row_id: int) -> bool:
        """Move the row to ``sending``; False when it is not this sender's any more. (It may
        be ``sending`` already: a retry goes out again before the first try's result is
        committed.)"""
        try:
            return bool(
                self._conn()
                .execute(
                    "UPDATE deliveries SET state = 'sending' WHERE id = %s AND sender = %s"
                    " AND state IN ('pending', 'sending') AND " + _STILL_RUNNING.format("%s"),
                    (row_id, self.sender.id, self.sender.id),
                )
                .rowcount
            )
        except psycopg.Error as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(
                f"Could not mark a message as going out in the PostgreSQL database ({reason})",
                "Nothing unrecorded was sent. Check the database server, then rerun to resume.",
            ) from None

    def result(self, row_id: int, state: str, reply: str) -> bool:
        """Record a message's outcome at once (``state`` as the journal has it: a hard bounce
        is ``pending`` until the run confirms it): a sender that dies right after leaves in
        doubt only what it had going out. (A refusal before the data finds the row still
        ``pending``.) False when the row was no longer this sender's (nothing written)."""
        now = to_db_time(utcnow())
        try:
            return bool(
                self._conn()
                .execute(
                    "UPDATE deliveries SET state = %s, attempts = attempts + 1, last_reply = %s,"
                    " updated_at = %s, sent_at = CASE WHEN %s = 'sent' THEN %s ELSE sent_at END"
                    " WHERE id = %s AND sender = %s AND state IN ('pending', 'sending')",
                    (state, reply, now, state, now, row_id, self.sender.id),
                )
                .rowcount
            )
        except psycopg.Error:
            return False  # the send loop commits it (or the journal does, at the next run)

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _alive(db: Database, sender_id: int) -> bool:
    """Whether the sender's lock is held (its process and its connection are alive)."""
    got = db.execute("SELECT pg_try_advisory_lock(?, ?)", (LOCK_CLASS, sender_id)).fetchone()[0]
    if got:
        db.execute("SELECT pg_advisory_unlock(?, ?)", (LOCK_CLASS, sender_id))
    return not got


def take_over(db: Database, issue_id: str) -> int:
    """Take over the senders of this issue found dead (lock free, or lease run out), then
    settle the rows of every sender that is not running any more: in-flight rows become
    uncertain, claimed ones free. Returns the rows made uncertain."""
    running = db.execute(
        f"SELECT id, lease_until < {_NOW} AS expired FROM send_senders"
        " WHERE issue_id = ? AND state = 'running'",
        (issue_id,),
    ).fetchall()
    for row in running:
        if not row["expired"] and _alive(db, row["id"]):
            continue
        with db.transaction() as conn:  # its marks wait for this, then refuse (the fence)
            conn.execute(
                "UPDATE send_senders SET state = 'taken_over', ended_at = ?"
                " WHERE id = ? AND state = 'running'",
                (to_db_time(utcnow()), row["id"]),
            )
    # Every open row of a sender that is not running: whatever left it there (taken over just
    # now or earlier, or a stop whose last writes failed). A sender that began before the
    # database server last started may have lost marks and outcomes in the restart (they are
    # written without waiting for the disk): its claimed rows are in doubt too, not free.
    with db.transaction() as conn:
        doubtful: int = conn.execute(
            "UPDATE deliveries SET state = 'uncertain', last_reply = ?, updated_at = ?"
            " FROM send_senders s WHERE deliveries.sender = s.id AND deliveries.issue_id = ?"
            " AND s.state <> 'running' AND (deliveries.state = 'sending' OR"
            " (deliveries.state = 'pending' AND"
            " s.began < extract(epoch FROM pg_postmaster_start_time())))",
            (TAKEN_OVER, to_db_time(utcnow()), issue_id),
        ).rowcount
        conn.execute(
            "UPDATE deliveries SET sender = NULL FROM send_senders s"
            " WHERE deliveries.sender = s.id AND deliveries.issue_id = ?"
            " AND s.state <> 'running' AND deliveries.state = 'pending'",
            (issue_id,),
        )
    return doubtful


def running(db: Database, issue_id: str | None = None) -> int:
    """Senders alive now (lease running and lock held), of one issue or of any."""
    where = " AND issue_id = ?" if issue_id is not None else ""
    rows = db.execute(
        f"SELECT id FROM send_senders WHERE state = 'running' AND lease_until >= {_NOW}{where}",
        (issue_id,) if issue_id is not None else (),
    ).fetchall()
    return sum(1 for row in rows if _alive(db, row["id"]))


def relay_share(db: Database, relay: str) -> int:
    """How many senders share this relay right now (live leases), to split its learnt pace."""
    count: int = db.execute(
        f"SELECT COUNT(*) FROM send_senders WHERE state = 'running' AND lease_until >= {_NOW}"
        " AND relay = ?",
        (relay,),
    ).fetchone()[0]
    return count


def relay_total(db: Database, issue_id: str, relay: str, lease: float) -> float:
    """The pace the senders of this issue found together on this relay: the sum of what each
    one still running, or ended within a lease, last published (they share one account)."""
    total: float = db.execute(
        "SELECT COALESCE(SUM(learnt), 0) FROM send_senders WHERE issue_id = ? AND relay = ?"
        f" AND (state = 'running' OR lease_until >= {_NOW} - ?)",
        (issue_id, relay, lease),
    ).fetchone()[0]
    return float(total)


def shares(db: Database, issue_id: str) -> list[tuple[str, int, str, int]]:
    """(host, pid, state, messages sent) of each sender that took part in this issue's send."""
    return [
        (row["host"], row["pid"], row["state"], row["sent"])
        for row in db.execute(
            "SELECT host, pid, state, sent FROM send_senders WHERE issue_id = ?"
            " ORDER BY started_at",
            (issue_id,),
        )
    ]
