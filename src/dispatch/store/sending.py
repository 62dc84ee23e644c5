"""One issue's ledger as the send engine sees it (``mailer.engine.Ledger``): rows claimed and
recorded in the database, each message's start and outcome in the crash journal beside it.

``IssueLedger`` is the one sender of a SQLite database (a lock file keeps it alone);
``SharedIssueLedger`` is one of several senders of a PostgreSQL database (``store.senders``)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence

from dispatch.errors import SendError
from dispatch.models import DeliveryState
from dispatch.store import Database, journal, ledger, senders
from dispatch.store.journal import Journal


class IssueLedger:
    """The SQLite (or PostgreSQL) ledger of ``issue_id``, with the journal of this run."""

    reserve_ahead = ledger.RUN_RESERVE

    def __init__(self, db: Database, issue_id: str) -> None:
        self.db = db
        self.issue_id = issue_id
        self._journal = Journal(db)
        self._path = str(journal.journal_dir(db))

    def begin(self) -> None:
        ledger.begin_run(self.db, self.issue_id, self._path)

    def claim(self, after: int, limit: int) -> tuple[list[ledger.Claimed], int]:
        return ledger.claim(self.db, self.issue_id, after, limit)

    def reserve(self, high: int) -> None:
        ledger.extend_run(self.db, self.issue_id, self._path, high)

    def record(self, outcomes: Sequence[ledger.Outcome], journaled: dict[int, int]) -> None:
        ledger.commit_batch(self.db, outcomes)
        self._journal.committed(journaled)

    def more_to_come(self) -> bool:
        """Alone on its ledger: once nothing is pending, nothing will be."""
        return False

    def close(self) -> None:
        self._journal.close()
        journal.recover(self.db)

    def started(self, row_id: int) -> None:
        self._journal.started(row_id)

    def finished(self, row_id: int, state: str, reply: str) -> tuple[int, int]:
        return self._journal.finished(row_id, state, reply)


class SharedIssueLedger(IssueLedger):
    """One sender among several on a PostgreSQL ledger: rows claimed with ``FOR UPDATE SKIP
    LOCKED``, each marked ``sending`` (the fence) before its data goes, results committed for
    this sender's rows only; dead senders taken over while this one waits for the last rows.
    The journal stays this machine's (a takeover elsewhere cannot read it; its next run here
    applies it)."""

    def __init__(
        self,
        db: Database,
        issue_id: str,
        relay: str,
        lease: float = senders.LEASE_SECONDS,
        learnt: Callable[[], float] = float,
    ) -> None:
        super().__init__(db, issue_id)
        self.sender = senders.Sender(db, issue_id, relay, self._path, lease, learnt)
        self._marker = senders.Marker(db, self.sender)
        self.taken_over = 0  # rows of dead senders this one made uncertain
        self._written: Counter[int] = Counter()  # outcomes threads wrote, not yet recorded
        self._lock = threading.Lock()

    def begin(self) -> None:
        self.sender.start()  # no run marker: the sender's row says where its journal is

    def claim(self, after: int, limit: int) -> tuple[list[ledger.Claimed], int]:
        """The next free rows, now this sender's; the count goes up by the rows looked at (ids
        are not in order across senders: a dead one's rows come back below the others')."""
        rows, looked = self.sender.claim(limit)
        if not looked and not self.sender.still_running():
            raise self._taken_over()
        return rows, after + looked

    def _taken_over(self) -> SendError:
        return SendError(
            "This sender's rows were taken over by another sender (its lease ran out: "
            "it was paused or cut off from the database for longer than "
            f"{self.sender.lease:.0f} s); it stopped, and nobody is mailed twice",
            "The other senders finish the issue. Check the machine's load and network; "
            "rerun `dispatch send` to join again.",
        )

    def reserve(self, high: int) -> None:
        """Nothing to reserve: every row in this sender's hands names it in the database."""

    def record(self, outcomes: Sequence[ledger.Outcome], journaled: dict[int, int]) -> None:
        """The sending threads wrote each outcome as it came (``finished``); what is left to
        commit here is what only the run decides (a hard bounce confirmed: the row fails and
        its reader is bounced) and what no thread wrote (a copy that could not be built, a
        write that failed). Writing a thread's outcome again could move a row back from a
        retry already going out."""
        left = []
        with self._lock:
            for outcome in outcomes:
                if self._written[outcome.delivery_id] and not outcome.bounced_subscriber:
                    self._written[outcome.delivery_id] -= 1
                    if not self._written[outcome.delivery_id]:
                        del self._written[outcome.delivery_id]
                elif outcome.bounced_subscriber or outcome.state != DeliveryState.PENDING:
                    left.append(outcome)
                # else: a retry no thread could write. Left 'sending' (in doubt if this sender
                # stops first): written now it could land after the retry's own mark and put
                # a message going out back in the pool.
        ledger.commit_batch(self.db, left, sender=self.sender.id)
        self.sender.sent += sum(1 for o in outcomes if o.state == DeliveryState.SENT)
        self._journal.committed(journaled)

    def more_to_come(self) -> bool:
        """Take over the senders found dead; then whether rows may still come this way."""
        self.taken_over += senders.take_over(self.db, self.issue_id)
        return self.sender.others_open()

    def started(self, row_id: int) -> None:
        # The database first: a row is in the journal as going out only once it is this
        # sender's 'sending' row (a journal line for a row that then went to another sender
        # would make the other's row uncertain when this machine recovers).
        self._journal.prepare()
        if not self._marker.mark(row_id):
            raise self._taken_over()
        super().started(row_id)

    def finished(self, row_id: int, state: str, reply: str) -> tuple[int, int]:
        # The database first, as for the start: a row the database still has 'sending' is then
        # exactly one whose outcome no one recorded, what a takeover must call uncertain (a
        # journal line written first would leave a result only this machine can see).
        if self._marker.result(row_id, state, " ".join(reply.split())):
            with self._lock:
                self._written[row_id] += 1
        return super().finished(row_id, state, reply)

    def close(self) -> None:
        self._marker.close()
        try:
            super().close()  # this machine's journal: results in, in-flight rows uncertain
        finally:
            self.sender.stop()
