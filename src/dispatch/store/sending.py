"""One issue's ledger as the send engine sees it (``mailer.engine.Ledger``): rows claimed and
recorded in the database, each message's start and outcome in the crash journal beside it."""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.store import Database, journal, ledger
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

    def close(self) -> None:
        self._journal.close()
        journal.recover(self.db)

    def started(self, row_id: int) -> None:
        self._journal.started(row_id)

    def finished(self, row_id: int, state: str, reply: str) -> tuple[int, int]:
        return self._journal.finished(row_id, state, reply)
