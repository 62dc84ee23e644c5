"""The send loop: claim ledger rows, hand them to the sending threads, record what the relay said.

Only this loop touches the database during a send (the threads only build bytes and talk SMTP).
Rows are read a small window ahead of the threads (still ``pending``); a thread asks leave
before a message's bytes go, and the loop commits that row ``sending`` together with every
result that came in meanwhile (one commit serves all connections), so a crash leaves at most
one row per connection ``sending``. A message whose final dot went out but whose reply was
lost is recorded ``uncertain``: it may have arrived, so it is never resent silently.
Temporary failures go back to ``pending`` and are retried here with exponential backoff for
as long as the run lasts (throttling replies also slow the pool down, see ``AdaptiveRate``);
the run gives up (SendError, rows left pending) only when the relay has accepted or refused
nothing at all for ``give_up_after`` seconds.
"""

from __future__ import annotations

import heapq
import queue
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from dispatch.errors import DispatchError, SendError
from dispatch.mailer import Job, JobResult, MarkRequest, Outcome, SenderPool
from dispatch.render.message import MessageFactory, Recipient
from dispatch.store import Database, ledger
from dispatch.subscribers import envelope_address


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
    uncertain: int = 0  # sent, but the relay's reply was lost: marked uncertain
    retried: int = 0
    throttled: int = 0  # throttling replies (454, 421, "rate limit", ...)
    released: int = 0
    in_doubt: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


class DeliveryRun:
    """One pass over an issue's pending rows through a (gated) SenderPool."""

    def __init__(
        self,
        db: Database,
        issue_id: str,
        factory: MessageFactory,
        pool: SenderPool,
        sender: str,
        policy: RetryPolicy,
        progress: Callable[[int], None] | None = None,
        sign: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.db = db
        self.issue_id = issue_id
        self.factory = factory
        self.pool = pool
        self.sender = sender
        self.policy = policy
        self.progress = progress
        self.sign = sign
        self.window = max(32, pool.concurrency * 8)
        self.stats = RunStats()
        self._outstanding: dict[int, ledger.Claimed] = {}  # submitted, no result yet
        self._waiting: list[tuple[float, int, ledger.Claimed]] = []  # retries, by due time
        self._tries: dict[int, int] = {}
        self._refused: set[int] = set()
        self._done = 0  # final results not yet reported to ``progress``
        self._last_progress = time.monotonic()

    def _job(self, row: ledger.Claimed) -> Job:
        recipient = Recipient(
            email=row.email,
            name=row.name,
            token=row.token,
            unsub_token=row.unsub_token,
            key=str(row.id),
        )
        build, sign = self.factory.build, self.sign
        if sign is None:
            payload = partial(build, row.variant, recipient)
        else:

            def payload() -> bytes:
                return sign(build(row.variant, recipient))

        return Job(
            key=row.id,
            sender=self.sender,
            recipient=envelope_address(row.email),
            payload=payload,
            dot_safe=True,  # MessageFactory never starts a line with a dot (nor does DKIM)
        )

    def _submit(self, row: ledger.Claimed) -> None:
        self._outstanding[row.id] = row
        self.pool.submit(self._job(row))

    def _outcome(self, result: JobResult, outcomes: list[ledger.Outcome]) -> None:
        key = result.job.key
        row = self._outstanding.pop(key, None)
        status = result.status
        if row is None or status.aborted or key in self._refused:
            self._refused.discard(key)
            return
        if status.throttled:
            self.stats.throttled += 1
        if status.outcome == Outcome.SENT:
            outcomes.append(ledger.Outcome(row.id, "sent", status.describe))
            self.stats.sent += 1
        elif status.outcome == Outcome.PERMANENT:
            outcomes.append(ledger.Outcome(row.id, "failed", status.describe))
            self.stats.failed += 1
            self.stats.failures.append((row.email, status.describe))
        elif status.outcome == Outcome.UNKNOWN:
            outcomes.append(ledger.Outcome(row.id, "uncertain", status.describe))
            self.stats.uncertain += 1
        else:
            outcomes.append(ledger.Outcome(row.id, "pending", status.describe))
            tries = self._tries.get(row.id, 0) + 1
            self._tries[row.id] = tries
            self.stats.retried += 1
            due = time.monotonic() + self.policy.delay(tries)
            heapq.heappush(self._waiting, (due, row.id, row))
            return
        self._last_progress = time.monotonic()
        self._done += 1

    def _events(self, wait: float) -> list[JobResult | MarkRequest]:
        results = self.pool.results
        try:
            events = [results.get(timeout=wait) if wait > 0 else results.get_nowait()]
        except queue.Empty:
            return []
        while len(events) < 1000:
            try:
                events.append(results.get_nowait())
            except queue.Empty:
                break
        return events

    def _process(self, events: list[JobResult | MarkRequest], *, grant: bool = True) -> None:
        """Record results and mark requested rows ``sending``, in one commit; then grant."""
        outcomes: list[ledger.Outcome] = []
        requests: dict[int, MarkRequest] = {}
        for event in events:
            if isinstance(event, MarkRequest):
                if grant and event.job.key in self._outstanding:
                    requests[event.job.key] = event
                else:
                    event.resolve(False)
            else:
                # A result right behind its own request: the worker finished without passing
                # its gate (refused at MAIL or RCPT, or the connection failed first), so the
                # row need not be marked at all.
                early = requests.pop(event.job.key, None)
                if early is not None:
                    early.resolve(False)
                self._outcome(event, outcomes)
        if not outcomes and not requests:
            return
        granted = ledger.commit_batch(self.db, outcomes, list(requests))
        taken_back = []
        for request in requests.values():
            key = request.job.key
            ok = key in granted
            if not ok:
                self._refused.add(key)
            if not request.resolve(ok) and ok:
                taken_back.append(key)  # the worker stopped waiting: never sent
        if taken_back:
            ledger.release(self.db, taken_back)
        done, self._done = self._done, 0
        if done and self.progress is not None:
            self.progress(done)  # after the commit: a Ctrl-C here loses nothing

    def run(self) -> RunStats:
        after = 0
        exhausted = False
        self.pool.start()
        try:
            while True:
                if self.pool.fatal is not None:
                    break
                now = time.monotonic()
                while self._waiting and self._waiting[0][0] <= now:
                    _, _row_id, row = heapq.heappop(self._waiting)
                    self._submit(row)
                room = self.window - len(self._outstanding) - len(self._waiting)
                if not exhausted and room >= self.window // 2:
                    claimed, last = ledger.claim(self.db, self.issue_id, after, room)
                    exhausted, after = last == after, last
                    for row in claimed:
                        self._submit(row)
                if exhausted and not self._outstanding and not self._waiting:
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
                    wait = min(max(0.0, self._waiting[0][0] - time.monotonic()), 0.2)
                self._process(self._events(wait))
        finally:
            self._finish()
        if self.pool.fatal is not None:
            fatal = self.pool.fatal
            if isinstance(fatal, DispatchError):
                raise fatal
            raise SendError(f"Sending stopped: {fatal}", "This is a bug in Dispatch.") from fatal
        return self.stats

    def _finish(self) -> None:
        """Stop the threads and record what they finished; rows never marked stay pending."""
        self.progress = None
        unsent = self.pool.stop(timeout=self.pool.timeout + 5)
        while True:  # everything the threads left, in order
            events = self._events(0)
            if not events:
                break
            self._process(events, grant=False)
        for job in unsent:
            if self._outstanding.pop(job.key, None) is not None:
                self.stats.released += 1
        # Still outstanding: a thread did not finish in time. A row it had marked stays
        # 'sending' and becomes 'uncertain' on the next run, which is the truth about it.
        self.stats.in_doubt = len(self._outstanding)
