"""The send journal: which message is in flight right now, written before its bytes go.

Part of the send ledger (``store.ledger``). Committing every row as ``sending`` in SQLite
before its message leaves costs a transaction per message on the one thread that owns the
database, and every connection waits for it. Instead each sending thread appends to its own
file next to the database, with a plain ``write`` (in the OS's page cache at once, so it
survives a kill -9 of the process; like SQLite's WAL with ``synchronous=NORMAL`` it does not
promise to survive a power cut):

    S <seq> <delivery id>                    before the message's data goes out
    R <seq> <delivery id> <state> <reply>    once the relay answered (or the line dropped)

``seq`` is one counter over all threads, so a row retried on another thread is read in order.
Results also go to SQLite, in batches, from the send loop; a file is emptied by its own
thread once all its results are committed. At the start of the next send (and at the end of
this one) ``recover`` applies what the files say: a result not yet in the database is
recorded, and a row whose last word is ``S`` (its data was going out when the process died)
becomes ``uncertain``. Only these can be in doubt: at most one per connection.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from pathlib import Path

from dispatch.store import Database, to_db_time, utcnow

#: A file is emptied (once all its results are in the database) after this many records.
TRUNCATE_AFTER = 2000

IN_DOUBT = "in doubt: the send stopped while this message was going out"


def journal_dir(db: Database) -> Path:
    return Path(f"{db.path}.journal")


class _File:
    def __init__(self, path: Path, index: int) -> None:
        self.index = index
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.records = 0
        self.written = 0  # seq of the last result written here
        self.committed = 0  # seq up to which this file's results are in the database

    def write(self, line: str) -> None:
        os.write(self.fd, line.encode("utf-8", "replace"))
        self.records += 1

    def maybe_truncate(self) -> None:
        if self.records >= TRUNCATE_AFTER and self.committed >= self.written:
            os.ftruncate(self.fd, 0)
            self.records = 0


class Journal:
    """One append-only file per sending thread (opened on the thread's first message)."""

    def __init__(self, db: Database) -> None:
        self.dir = journal_dir(db)
        self.dir.mkdir(mode=0o700, exist_ok=True)
        self._seq = itertools.count(1)
        self._local = threading.local()
        self._files: list[_File] = []
        self._lock = threading.Lock()

    def _file(self) -> _File:
        file = getattr(self._local, "file", None)
        if file is None:
            with self._lock:
                index = len(self._files)
                file = _File(self.dir / f"{os.getpid()}-{index}.log", index)
                self._files.append(file)
            self._local.file = file
        return file

    def started(self, delivery_id: int) -> None:
        """The message of ``delivery_id`` is about to go out (call before its data)."""
        file = self._file()
        file.maybe_truncate()
        file.write(f"S {next(self._seq)} {delivery_id}\n")

    def finished(self, delivery_id: int, state: str, reply: str) -> tuple[int, int]:
        """Its outcome; returns (file, seq) for ``committed`` once the database has it."""
        file = self._file()
        seq = next(self._seq)
        reply = " ".join(reply.split())[:500]
        file.write(f"R {seq} {delivery_id} {state} {reply}\n")
        file.written = seq
        return file.index, seq

    def committed(self, marks: dict[int, int]) -> None:
        """The results up to these (file -> seq) are in the database."""
        for index, seq in marks.items():
            file = self._files[index]
            file.committed = max(file.committed, seq)

    def close(self) -> None:
        for file in self._files:
            os.close(file.fd)
        self._files.clear()


def _read(folder: Path) -> dict[int, tuple[int, str, str, str]]:
    """The last record of each delivery id: (seq, kind, state, reply)."""
    last: dict[int, tuple[int, str, str, str]] = {}
    for path in sorted(folder.glob("*.log")):
        for line in path.read_text("utf-8", "replace").splitlines():
            parts = line.split(" ", 4)
            if len(parts) < 3 or parts[0] not in ("S", "R"):
                continue  # a torn line: it cannot be the last word on anything
            try:
                seq, delivery_id = int(parts[1]), int(parts[2])
            except ValueError:
                continue
            state = parts[3] if len(parts) > 3 else ""
            reply = parts[4] if len(parts) > 4 else ""
            if parts[0] == "R" and state not in ("sent", "failed", "pending", "uncertain"):
                continue
            if delivery_id not in last or last[delivery_id][0] < seq:
                last[delivery_id] = (seq, parts[0], state, reply)
    return last


def in_flight(db: Database) -> set[int]:
    """Delivery ids a stopped send left going out (read only; ``recover`` settles them)."""
    folder = journal_dir(db)
    if not folder.is_dir():
        return set()
    return {i for i, (_, kind, _, _) in _read(folder).items() if kind == "S"}


def recover(db: Database) -> int:
    """Apply and remove what a previous send's journal says; returns rows made uncertain.

    Call with the send lock held (no other send writing the files).
    """
    folder = journal_dir(db)
    if not folder.is_dir():
        return 0
    last = _read(folder)
    now = to_db_time(utcnow())
    doubtful = 0
    with db.transaction() as conn:
        for delivery_id, (_, kind, state, reply) in last.items():
            if kind == "S":
                doubtful += conn.execute(
                    "UPDATE deliveries SET state = 'uncertain', last_reply = ?, updated_at = ?"
                    " WHERE id = ? AND state IN ('pending', 'sending')",
                    (IN_DOUBT, now, delivery_id),
                ).rowcount
            elif state != "pending":  # a retry is pending in the database already
                conn.execute(
                    "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_reply = ?,"
                    " updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END"
                    " WHERE id = ? AND state IN ('pending', 'sending')",
                    (state, reply, now, state, now, delivery_id),
                )
    for path in folder.glob("*.log"):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
    return doubtful
