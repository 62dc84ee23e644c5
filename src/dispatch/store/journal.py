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
Results also go to SQLite, in batches, from the send loop; each thread writes two files in
turn and clears one only once all its results are committed. At the start of the next send
(and at the end of this one) ``recover`` applies what the files say: a result not yet in the
database is recorded, and a row whose last word is ``S`` (its data was going out when the
process died) becomes ``uncertain``. Only these can be in doubt: at most one per connection.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import mmap
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

from dispatch.errors import StoreError
from dispatch.store import Database, ledger, to_db_time, utcnow

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

#: Each half of a thread's journal: its size, and how full it gets before the thread moves
#: to the other half.
FILE_SIZE = 4 << 20
RESET_AT = 256 << 10

IN_DOUBT = "in doubt: the send stopped while this message was going out"
TAKEN_OVER = (
    "in doubt: its sender stopped while this message was going out (taken over by another "
    "sender; that machine's next `dispatch send` settles it from its journal)"
)
JOURNAL_LOST = (
    "in doubt: a send stopped and its journal was not next to the database (moved or copied "
    "without it?)"
)


def journal_dir(db: Database) -> Path:
    """Next to the database file itself (symlinks resolved: one journal whatever path is used),
    or in DISPATCH_JOURNAL_DIR when set (a PostgreSQL database's ``path`` is a local stand-in)."""
    if db.journal_dir is not None:
        return db.journal_dir.resolve() / f"{Path(db.path).name}.journal"
    return Path(f"{Path(db.path).resolve()}.journal")


class _Half:
    """A fixed-size file mapped into memory (MAP_SHARED): a record is a memory copy into the
    OS's page cache, with no system call, so a thread never gives up the GIL to write it (a
    ``write`` per message made every sending thread queue for the GIL again). Records end at
    the first NUL byte."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # Reserve the blocks now: a full disk is a clean ENOSPC here, not a SIGBUS when a
            # record is copied into a sparse mapping later.
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, FILE_SIZE)
            else:
                os.ftruncate(fd, FILE_SIZE)
            self.mm = mmap.mmap(fd, FILE_SIZE)
        finally:
            os.close(fd)
        self.pos = 0
        self.last_seq = 0  # of the last result written here

    def clear(self) -> None:
        # Zeroing from the top: a kill midway leaves a NUL first, which reads as empty.
        self.mm[0 : self.pos] = bytes(self.pos)
        self.pos = 0


class _File:
    """One thread's journal: two halves used in turn. When the current one is past
    ``RESET_AT`` the thread moves to the other, once every result written there is in the
    database (it was filled a whole half ago), and clears it first.

    The first half is locked (flock) while the send runs: several senders of one PostgreSQL
    database may share a machine and its journal folder, and ``recover`` reads only the files
    of senders that are gone (the OS drops the lock of a killed process)."""

    def __init__(self, folder: Path, stem: str, index: int) -> None:
        self.index = index
        stem = f"{stem}-{index}"
        # Made under a name recovery does not read, locked, then named: a recovery running in
        # another process never sees this file unlocked (and removes it).
        fresh = folder / f"{stem}-a.new"
        self.halves = [_Half(fresh), _Half(folder / f"{stem}-b.log")]
        self._lock = os.open(fresh, os.O_RDWR)
        if fcntl is not None:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        os.rename(fresh, folder / f"{stem}-a.log")
        self.current = self.halves[0]
        self.committed = 0  # seq up to which this thread's results are in the database

    def write(self, line: str, seq: int = 0) -> None:
        data = line.encode("utf-8", "replace")
        half = self.current
        end = half.pos + len(data)
        if end >= FILE_SIZE:
            raise OSError(errno.ENOSPC, "the send journal is full (results are not being saved)")
        half.mm[half.pos : end] = data
        half.pos = end
        if seq:
            half.last_seq = seq

    def maybe_switch(self) -> None:
        if self.current.pos < RESET_AT:
            return
        other = self.halves[1] if self.current is self.halves[0] else self.halves[0]
        if self.committed >= other.last_seq:
            other.clear()
            self.current = other

    def close(self) -> None:
        for half in self.halves:
            half.mm.close()
        os.close(self._lock)


class Journal:
    """One append-only file per sending thread (opened on the thread's first message)."""

    def __init__(self, db: Database) -> None:
        self.dir = journal_dir(db)
        try:
            self.dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the send journal {self.dir}: {exc.strerror or exc}",
                "The folder of the database (or DISPATCH_JOURNAL_DIR) must exist and be "
                "writable by the user running dispatch.",
            ) from exc
        # pid and a random part: a later process given the same pid never truncates the
        # files of a dead one that no run has recovered yet.
        self._stem = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._seq = itertools.count(1)
        self._local = threading.local()
        self._files: list[_File] = []
        self._lock = threading.Lock()

    def _file(self) -> _File:
        file = getattr(self._local, "file", None)
        if file is None:
            with self._lock:
                index = len(self._files)
                file = _File(self.dir, self._stem, index)
                self._files.append(file)
            self._local.file = file
        return file

    def prepare(self) -> None:
        """Make this thread's file now (it takes a few milliseconds), not between a shared
        sender's mark in the database and its line here."""
        self._file()

    def started(self, delivery_id: int) -> None:
        """The message of ``delivery_id`` is about to go out (call before its data)."""
        file = self._file()
        file.maybe_switch()
        file.write(f"S {next(self._seq)} {delivery_id}\n")

    def finished(self, delivery_id: int, state: str, reply: str) -> tuple[int, int]:
        """Its outcome; returns (file, seq) for ``committed`` once the database has it."""
        file = self._file()
        seq = next(self._seq)
        # A NUL ends the records of a journal file: never write one (split() takes the rest).
        reply = " ".join(reply.replace("\x00", " ").split())[:500]
        file.write(f"R {seq} {delivery_id} {state} {reply}\n", seq)
        return file.index, seq

    def committed(self, marks: dict[int, int]) -> None:
        """The results up to these (file -> seq) are in the database."""
        for index, seq in marks.items():
            file = self._files[index]
            file.committed = max(file.committed, seq)

    def close(self) -> None:
        for file in self._files:
            file.close()
        self._files.clear()


def _records(path: Path) -> bytes:
    """A journal file's records: its bytes up to the first NUL (not the whole sparse file)."""
    chunks = []
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            end = chunk.find(b"\0")
            if end >= 0:
                chunks.append(chunk[:end])
                break
            chunks.append(chunk)
    return b"".join(chunks)


@contextlib.contextmanager
def _unowned(folder: Path) -> Iterator[list[Path]]:
    """The journal files of senders that are gone (their lock is free), locked while used."""
    held: list[int] = []
    paths: list[Path] = []
    try:
        for first in sorted(folder.glob("*-a.log")):
            try:
                fd = os.open(first, os.O_RDONLY)
            except FileNotFoundError:
                continue
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a live sender's (on this machine)
                    os.close(fd)
                    continue
            held.append(fd)
            paths.append(first)
            second = first.with_name(first.name[: -len("a.log")] + "b.log")
            if second.exists():
                paths.append(second)
        yield paths
    finally:
        for fd in held:
            os.close(fd)


def _read(paths: list[Path]) -> dict[int, tuple[int, str, str, str]]:
    """The last record of each delivery id: (seq, kind, state, reply)."""
    last: dict[int, tuple[int, str, str, str]] = {}
    for path in paths:
        text = _records(path).decode("utf-8", "replace")
        for line in text.split("\n")[:-1]:  # a last line without its newline was torn
            parts = line.split(" ", 4)
            if len(parts) < 3 or parts[0] not in ("S", "R"):
                continue
            try:
                seq, delivery_id = int(parts[1]), int(parts[2])
            except ValueError:
                continue
            state = parts[3] if len(parts) > 3 else ""
            reply = parts[4] if len(parts) > 4 else ""
            if parts[0] == "R" and state not in (
                "sent",
                "failed",
                "bounced",  # failed, and a hard bounce: the reader becomes bounced
                "pending",
                "uncertain",
            ):
                continue
            if delivery_id not in last or last[delivery_id][0] < seq:
                last[delivery_id] = (seq, parts[0], state, reply)
    return last


def in_flight(db: Database) -> set[int]:
    """Delivery ids a stopped send left going out (read only; ``recover`` settles them)."""
    folder = journal_dir(db)
    if not folder.is_dir():
        return set()
    with _unowned(folder) as paths:
        return {i for i, (_, kind, _, _) in _read(paths).items() if kind == "S"}


def _discard(folder: Path, paths: list[Path]) -> None:
    """Remove journal files whose every result is in the database (and the folder if empty)."""
    for path in paths:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def recover(db: Database) -> int:
    """Apply and remove what a previous send's journal says; returns rows made uncertain.

    Call with the send lock held. Files of senders still running on this machine (a shared
    send on PostgreSQL) are left alone; rows a sender elsewhere took over as ``uncertain``
    (``store.senders.TAKEN_OVER``) get the result this journal knows.
    """
    folder = journal_dir(db)
    marker = ledger.run_marker(db)
    if marker is not None and (marker["journal"] != str(folder) or not folder.is_dir()):
        # A send stopped, and its journal is not next to this database (moved or copied
        # without it): every row it may have had in hand is in doubt.
        doubtful = ledger.doubt_pending_up_to(db, marker["issue"], marker["high"], JOURNAL_LOST)
        ledger.end_run(db)
        return doubtful
    if not folder.is_dir():
        return 0
    with _unowned(folder) as paths:
        doubtful = _apply(db, _read(paths))
        _discard(folder, paths)
    if marker is not None:
        ledger.end_run(db)
    return doubtful


#: A row another live sender (of a shared send on PostgreSQL) has in hand is its business: a
#: dead sender's journal line about it is older than that sender's claim.
_NOT_HELD = (
    "(sender IS NULL OR NOT EXISTS (SELECT 1 FROM send_senders s"
    " WHERE s.id = deliveries.sender AND s.state = 'running'))"
)


def _apply(db: Database, last: dict[int, tuple[int, str, str, str]]) -> int:
    now = to_db_time(utcnow())
    doubtful = 0
    with db.transaction() as conn:
        for delivery_id, (_, kind, state, reply) in last.items():
            if kind == "S":
                doubtful += conn.execute(
                    "UPDATE deliveries SET state = 'uncertain', last_reply = ?, updated_at = ?"
                    f" WHERE id = ? AND state IN ('pending', 'sending') AND {_NOT_HELD}",
                    (IN_DOUBT, now, delivery_id),
                ).rowcount
            elif state != "pending":  # a retry is pending in the database already
                bounced = state == "bounced"
                state = "failed" if bounced else state
                changed = conn.execute(
                    "UPDATE deliveries SET state = ?, attempts = attempts + 1, last_reply = ?,"
                    " updated_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END"
                    " WHERE id = ? AND (state IN ('pending', 'sending')"
                    f" OR (state = 'uncertain' AND last_reply = ?)) AND {_NOT_HELD}",
                    (state, reply, now, state, now, delivery_id, TAKEN_OVER),
                ).rowcount
                if bounced and changed:
                    ledger.bounce_reader(conn, delivery_id)
    return doubtful
