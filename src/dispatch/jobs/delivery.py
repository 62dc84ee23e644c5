"""The send loop: claim ledger rows, hand them to the sending threads, record what the relay said.

Only this loop touches the database during a send (the threads only build bytes and talk SMTP).
Rows are claimed a small window ahead of the threads and committed as ``sending`` before their
bytes leave; results are written in batches together with the next claim. Temporary failures
go back to ``pending`` and are retried here with exponential backoff for as long as the run
lasts; the run gives up (SendError, rows left pending) only when the relay has accepted or
refused nothing at all for ``give_up_after`` seconds.
"""

from __future__ import annotations

import heapq
import queue
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dispatch.errors import DispatchError, SendError
from dispatch.mailer import Job, JobResult, Outcome, SenderPool
from dispatch.render.message import MessageFactory, Recipient
from dispatch.store import Database, ledger
from dispatch.subscribers import envelope_address

FLUSH_EVERY = 50  # results
FLUSH_SECONDS = 0.2


@dataclass
class RetryPolicy:
    base: float = 1.0  # first retry after about this many seconds, doubling per attempt
    maximum: float = 60.0
    give_up_after: float = 300.0  # seconds with no message accepted or refused

    def delay(self, attempt: int) -> float:
        return min(self.base * 2 ** max(0, attempt - 1), self.maximum) * random.uniform(0.5, 1.0)


@dataclass
class RunStats:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    released: int = 0
    in_doubt: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


class DeliveryRun:
    """One pass over an issue's pending rows through a SenderPool."""

    def __init__(
        self,
        db: Database,
        issue_id: str,
        factory: MessageFactory,
        pool: SenderPool,
        sender: str,
        policy: RetryPolicy,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.issue_id = issue_id
        self.factory = factory
        self.pool = pool
        self.sender = sender
        self.policy = policy
        self.progress = progress
        self.window = max(32, pool.concurrency * 8)
        self.stats = RunStats()
        self._outstanding: dict[int, ledger.Claimed] = {}
        self._waiting: list[tuple[float, int, ledger.Claimed]] = []
        self._tries: dict[int, int] = {}
        self._buffer: list[ledger.Outcome] = []
        self._last_flush = time.monotonic()
        self._last_progress = time.monotonic()

    def _job(self, row: ledger.Claimed) -> Job:
        recipient = Recipient(
            email=row.email,
            name=row.name,
            token=row.token,
            unsub_token=row.unsub_token,
            key=str(row.id),
        )
        return Job(
            key=row.id,
            sender=self.sender,
            recipient=envelope_address(row.email),
            payload=lambda: self.factory.build(row.variant, recipient),
        )

    def _handle(self, result: JobResult) -> None:
        row = self._outstanding.pop(result.job.key, None)
        if row is None:
            return
        status = result.status
        if status.outcome == Outcome.SENT:
            self._buffer.append(ledger.Outcome(row.id, "sent", status.describe))
            self.stats.sent += 1
        elif status.outcome == Outcome.PERMANENT:
            self._buffer.append(ledger.Outcome(row.id, "failed", status.describe))
            self.stats.failed += 1
            self.stats.failures.append((row.email, status.describe))
        else:
            self._buffer.append(ledger.Outcome(row.id, "pending", status.describe))
            tries = self._tries.get(row.id, 0) + 1
            self._tries[row.id] = tries
            self.stats.retried += 1
            due = time.monotonic() + self.policy.delay(tries)
            heapq.heappush(self._waiting, (due, row.id, row))
            return
        self._last_progress = time.monotonic()
        if self.progress is not None:
            self.progress(1)

    def _drain(self, wait: float) -> None:
        try:
            self._handle(
                self.pool.results.get(timeout=wait) if wait > 0 else self.pool.results.get_nowait()
            )
        except queue.Empty:
            return
        while True:
            try:
                self._handle(self.pool.results.get_nowait())
            except queue.Empty:
                return

    def run(self) -> RunStats:
        after = 0
        exhausted = False
        self.pool.start()
        try:
            while True:
                if self.pool.fatal is not None:
                    break
                now = time.monotonic()
                due: list[int] = []
                while self._waiting and self._waiting[0][0] <= now:
                    _, row_id, _row = heapq.heappop(self._waiting)
                    due.append(row_id)
                room = self.window - len(self._outstanding) - len(self._waiting) - len(due)
                fresh = not exhausted and room >= max(1, self.window // 2)
                idle = exhausted and not self._outstanding
                flush = bool(self._buffer) and (
                    idle
                    or len(self._buffer) >= FLUSH_EVERY
                    or now - self._last_flush >= FLUSH_SECONDS
                )
                if due or fresh or flush:
                    claimed, last = ledger.record_and_claim(
                        self.db,
                        self.issue_id,
                        self._buffer,
                        claim_after=after if fresh else None,
                        claim_limit=room if fresh else 0,
                        claim_ids=due,
                    )
                    self._buffer = []
                    self._last_flush = now
                    if fresh:
                        exhausted = last == after
                        after = last
                    for row in claimed:
                        self._outstanding[row.id] = row
                        self.pool.submit(self._job(row))
                if exhausted and not self._outstanding and not self._waiting and not self._buffer:
                    break
                if now - self._last_progress > self.policy.give_up_after:
                    raise SendError(
                        f"The relay {self.pool.target.describe()} accepted nothing for "
                        f"{self.policy.give_up_after:.0f} s; stopped with "
                        f"{len(self._waiting) + len(self._outstanding)} recipients still to send",
                        "Check the relay; rerun the same command to resume (nobody is mailed "
                        "twice).",
                    )
                wait = 0.05
                if not self._outstanding and self._waiting:
                    wait = min(max(0.0, self._waiting[0][0] - time.monotonic()), FLUSH_SECONDS)
                self._drain(wait)
        finally:
            self._finish()
        if self.pool.fatal is not None:
            fatal = self.pool.fatal
            if isinstance(fatal, DispatchError):
                raise fatal
            raise SendError(f"Sending stopped: {fatal}", "This is a bug in Dispatch.") from fatal
        return self.stats

    def _finish(self) -> None:
        """Stop the threads, record what they finished, put never-started rows back to pending."""
        self.progress = None
        unsent = self.pool.stop(timeout=self.pool.timeout + 5)
        self._drain(0)
        never_started = [job.key for job in unsent if job.key in self._outstanding]
        for key in never_started:
            self._outstanding.pop(key, None)
        self.stats.released = len(never_started)
        # Still outstanding: a thread did not finish in time; those stay 'sending' and become
        # 'uncertain' on the next run, which is the truth about them.
        self.stats.in_doubt = len(self._outstanding)
        if self._buffer:
            ledger.record_and_claim(self.db, self.issue_id, self._buffer)
            self._buffer = []
        ledger.release(self.db, never_started)
