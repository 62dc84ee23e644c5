"""The send engine: claim ledger rows, hand them to the sending threads, record what the relay said.

The engine talks to its ledger only through ``Ledger`` (five steps and the journal's two, shaped
after listmonk's manager/store interface); ``store.sending.IssueLedger`` is the SQLite/PostgreSQL
one. Only this loop touches the ledger during a send (the threads only build bytes and talk SMTP).
Rows are read a small window ahead of the threads (still ``pending``). Right before a
message's data goes out its thread writes that to the send journal (``store.journal``, its
own append-only file: no waiting for another thread), and its outcome right after; this loop
commits the outcomes in batches. A crash therefore leaves at most one row per connection in
doubt, which the next run marks ``uncertain``. A message whose final dot went out but whose
reply was lost is recorded ``uncertain``: it may have arrived, so it is never resent silently.
Temporary failures go back to ``pending`` and are retried here with exponential backoff for
as long as the run lasts. A throttling reply is not a failure of its message but a sign of
the pace: the message goes straight back to the queue and the pool's shared pace (see
``AdaptiveRate``) absorbs the wait; only a row throttled over and over (a per-recipient
limit) falls back to the backoff. The run gives up (SendError, rows left pending) only when
the relay has accepted or refused nothing at all for ``give_up_after`` seconds. A hard bounce
(see ``DeliveryStatus.hard_bounce``) fails its row and makes its reader ``bounced`` in the
same commit, unless ``BREAKER_REPEATS`` readers in a row got the same reply (``BounceBreaker``):
then the run stops as a relay problem and none of that run of bounces is applied (they are
held, in memory, until another outcome or the run's end shows them to be real).
"""

from __future__ import annotations

import heapq
import queue
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from dispatch.errors import DispatchError, SendError
from dispatch.mailer.connection import DeliveryStatus, Outcome, without_addresses
from dispatch.mailer.pool import Job, JobResult, SenderPool
from dispatch.models import DeliveryState
from dispatch.store.ledger import Claimed
from dispatch.store.ledger import Outcome as Recorded

FLUSH_EVERY = 100  # results per commit at most
FLUSH_SECONDS = 0.05  # and no result waits longer than this for its commit
#: Throttling replies one row may get, requeued at once, before it waits like any retry.
THROTTLE_REQUEUES = 50
#: Consecutive hard bounces with the same reply that stop a run as a relay problem.
BREAKER_REPEATS = 20
#: Bounced addresses a run keeps to name in its summary (the count is always complete).
BOUNCES_LISTED = 10_000
#: Seconds between looks at a shared ledger whose last rows other senders hold.
OTHERS_POLL = 0.5


class Ledger(Protocol):
    """What the engine needs of one issue's ledger and its crash journal."""

    #: How far ahead of the rows claimed so far ``reserve`` is told (one write per this many).
    reserve_ahead: int

    def begin(self) -> None:
        """A run starts: leave a marker in the database that a crash can be read from."""

    def claim(self, after: int, limit: int) -> tuple[Sequence[Claimed], int]:
        """Up to ``limit`` pending rows above id ``after``, and the last id looked at."""
        ...

    def reserve(self, high: int) -> None:
        """No row above ``high`` goes to a connection before this returns."""

    def record(self, outcomes: Sequence[Recorded], journaled: dict[int, int]) -> None:
        """Commit these outcomes; then tell the journal they are in (file -> last seq)."""

    def more_to_come(self) -> bool:
        """Nothing is left to claim: may rows still come (other senders of a shared ledger
        hold some, and may die)? The run waits and claims again while this is true."""
        ...

    def close(self) -> None:
        """The run is over: close the journal and apply what it holds that the ledger lacks."""

    def started(self, row_id: int) -> None:
        """(From a sending thread) the message of ``row_id`` is about to go out."""

    def finished(self, row_id: int, state: str, reply: str) -> tuple[int, int]:
        """(From a sending thread) its outcome; returns the (file, seq) ``record`` is told."""
        ...


@dataclass
class RetryPolicy:
    base: float = 1.0  # first retry after about this many seconds, doubling per attempt
    maximum: float = 60.0
    give_up_after: float = 300.0  # seconds with no message accepted or refused

    def delay(self, attempt: int) -> float:
        doubled = self.base * 2.0 ** max(0, attempt - 1)
        return min(doubled, self.maximum) * random.uniform(0.5, 1.0)


@dataclass
class RunStats:
    sent: int = 0
    failed: int = 0
    uncertain: int = 0  # sent, but the relay's reply was lost: marked uncertain
    retried: int = 0
    throttled: int = 0  # throttling replies (454, 421, "rate limit", ...)
    released: int = 0
    in_doubt: int = 0
    bounced: list[tuple[str, str]] = field(default_factory=list)  # hard bounces: (email, reply)
    bounced_count: int = 0


_STATE = {
    Outcome.SENT: DeliveryState.SENT,
    Outcome.PERMANENT: DeliveryState.FAILED,
    Outcome.UNKNOWN: DeliveryState.UNCERTAIN,
    Outcome.TEMPORARY: DeliveryState.PENDING,
}


class BounceBreaker:
    """Trips after ``limit`` consecutive hard bounces with the same reply (its addresses
    removed): one relay setting refusing every reader alike is the relay's problem, not theirs.
    Any other settled outcome in between starts the count again. Thread-safe."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = BREAKER_REPEATS if limit is None else limit
        self.tripped: str | None = None  # the repeated reply, once tripped
        self._key = ""
        self._count = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(status: DeliveryStatus) -> str:
        """The reply with its addresses removed: what "the same reply" means."""
        return f"{status.code} " + " ".join(without_addresses(status.reply).lower().split())

    def hold(self, status: DeliveryStatus) -> bool:
        """Count this outcome; True when it is a hard bounce the run must not apply."""
        with self._lock:
            if not status.hard_bounce:
                if status.outcome in (Outcome.SENT, Outcome.PERMANENT):
                    self._key, self._count = "", 0
                return False
            if self.tripped is not None:
                return True
            key = self.key(status)
            self._count = self._count + 1 if key == self._key else 1
            self._key = key
            if self._count >= self.limit:
                self.tripped = status.describe
                return True
            return False


class _JournalHooks:
    """The pool's hooks: write each message's start and outcome to the ledger's crash journal."""

    def __init__(self, journal: Ledger, breaker: BounceBreaker) -> None:
        self.journal = journal
        self.breaker = breaker

    def before_data(self, job: Job) -> None:
        self.journal.started(job.key)

    def after_reply(self, job: Job, status: DeliveryStatus) -> None:
        # A hard bounce is journaled as pending: it is held by the run until the breaker's
        # count shows it real, and only that database commit bounces a reader. A crash in
        # between leaves the row pending (a refused RCPT delivered nothing: a retry is safe).
        state = DeliveryState.PENDING if status.hard_bounce else _STATE[status.outcome]
        job.held = self.breaker.hold(status)
        job.note = self.journal.finished(job.key, state, status.describe)


class DeliveryRun:
    """One pass over an issue's pending rows through a SenderPool."""

    def __init__(
        self,
        ledger: Ledger,
        pool: SenderPool,
        sender: str,
        policy: RetryPolicy,
        compose: Callable[[Claimed], bytes],
        envelope: Callable[[str], str] = str,
        progress: Callable[[int], None] | None = None,
        breaker: bool = True,
    ) -> None:
        """``compose`` builds a row's message (in a sending thread, signed if need be);
        ``envelope`` gives the SMTP form of an address (e.g. its domain in IDNA);
        ``breaker=False`` trusts every hard bounce (the editor knows those readers are gone)."""
        self.ledger = ledger
        self.pool = pool
        self.sender = sender
        self.policy = policy
        self.compose = compose
        self.envelope = envelope
        self.progress = progress
        self.window = max(32, pool.concurrency * 8)
        self.stats = RunStats()
        self.breaker = BounceBreaker() if breaker else BounceBreaker(limit=sys.maxsize)
        pool.hooks = _JournalHooks(ledger, self.breaker)
        self._outstanding: dict[int, Claimed] = {}  # submitted, no result yet
        self._waiting: list[tuple[float, int, Claimed]] = []  # retries, by due time
        self._tries: dict[int, int] = {}
        self._throttles: dict[int, int] = {}
        self._buffer: list[Recorded] = []
        self._journaled: dict[int, int] = {}  # journal file -> last seq in the buffer
        self._done = 0  # final results in the buffer (for ``progress`` after the commit)
        self._last_flush = time.monotonic()
        self._last_progress = time.monotonic()
        self._streak: list[tuple[Claimed, DeliveryStatus]] = []  # same-reply hard bounces held
        self._streak_key = ""
        self._completed = False  # the loop went through every pending row

    def _job(self, row: Claimed) -> Job:
        return Job(
            key=row.id,
            sender=self.sender,
            recipient=self.envelope(row.email),
            payload=partial(self.compose, row),
            dot_safe=True,  # MessageFactory never starts a line with a dot (nor does DKIM)
        )

    def _submit(self, row: Claimed) -> None:
        self._outstanding[row.id] = row
        self.pool.submit(self._job(row))

    def _outcome(self, result: JobResult) -> None:
        row = self._outstanding.pop(result.job.key, None)
        status = result.status
        if row is None or status.aborted:
            return  # never sent: the row is still pending in the ledger
        if result.job.note is not None:
            index, seq = result.job.note
            self._journaled[index] = max(seq, self._journaled.get(index, 0))
        if result.job.held:  # the breaker tripped: the relay, not this reader; stop the run
            self._hold_streak()
            self._buffer.append(Recorded(row.id, DeliveryState.PENDING, status.describe, None))
            self.pool.fatal = self.pool.fatal or SendError(
                f"The relay {self.pool.target.describe()} refused {self.breaker.limit} readers "
                f"in a row with the same reply ({self.breaker.tripped}); stopped with the "
                "rest pending and none of them marked bounced",
                "A setting of the relay (or of the sender address) is refusing everyone: "
                "check it with your provider, then rerun the same command to resume. If "
                "those readers really are gone, rerun with --no-bounce-breaker.",
            )
            self.pool.stopping.set()
            return
        state = _STATE[status.outcome]
        if status.hard_bounce:  # held while the same reply repeats: a tripped breaker bounces none
            key = self.breaker.key(status)
            if key != self._streak_key:
                self._release_streak()
                self._streak_key = key
            self._streak.append((row, status))
            self._throttles.pop(row.id, None)
            self._tries.pop(row.id, None)
            self._last_progress = time.monotonic()
            return
        if status.outcome in (Outcome.SENT, Outcome.PERMANENT):
            self._release_streak()  # another settled outcome between them: they are real
        self._buffer.append(Recorded(row.id, state, status.describe, None))
        if status.throttled:
            self.stats.throttled += 1
        if state == DeliveryState.PENDING:
            self.stats.retried += 1
            if status.throttled:
                throttles = self._throttles.get(row.id, 0) + 1
                self._throttles[row.id] = throttles
                if throttles <= THROTTLE_REQUEUES:
                    self._submit(row)  # at once: the pool's pace is the wait
                    return
            tries = self._tries.get(row.id, 0) + 1
            self._tries[row.id] = tries
            due = time.monotonic() + self.policy.delay(tries)
            heapq.heappush(self._waiting, (due, row.id, row))
            return
        self._throttles.pop(row.id, None)
        self._tries.pop(row.id, None)  # settled: nothing list-sized stays behind
        if state == DeliveryState.SENT:
            self.stats.sent += 1
        elif state == DeliveryState.FAILED:
            self.stats.failed += 1
        else:
            self.stats.uncertain += 1
        self._last_progress = time.monotonic()
        self._done += 1

    def _release_streak(self) -> None:
        """The held hard bounces are real: fail their rows and bounce their readers (never once
        the breaker has tripped: then they stay pending)."""
        if self.breaker.tripped is not None:
            self._hold_streak()
            return
        for row, status in self._streak:
            self._buffer.append(
                Recorded(row.id, DeliveryState.FAILED, status.describe, row.subscriber_id)
            )
            self.stats.bounced_count += 1
            if len(self.stats.bounced) < BOUNCES_LISTED:
                self.stats.bounced.append((row.email, status.describe))
            self.stats.failed += 1
            self._done += 1
        self._streak, self._streak_key = [], ""

    def _hold_streak(self) -> None:
        """The breaker tripped: the held bounces stay pending, in the ledger and the journal
        (a newer journal entry, so closing the run does not apply the 'bounced' one)."""
        for row, status in self._streak:
            self._buffer.append(Recorded(row.id, DeliveryState.PENDING, status.describe, None))
            self.ledger.finished(row.id, DeliveryState.PENDING, status.describe)
        self._streak, self._streak_key = [], ""

    def _drain(self, wait: float) -> None:
        results = self.pool.results
        try:
            self._outcome(results.get(timeout=wait) if wait > 0 else results.get_nowait())
        except queue.Empty:
            return
        while True:
            try:
                self._outcome(results.get_nowait())
            except queue.Empty:
                return

    def _flush(self) -> None:
        """Commit the buffered results, tell the journal, then report progress."""
        if self._buffer:
            self.ledger.record(self._buffer, self._journaled)
            self._buffer = []
            self._journaled = {}
        self._last_flush = time.monotonic()
        done, self._done = self._done, 0
        if done and self.progress is not None:
            self.progress(done)  # after the commit: a Ctrl-C here loses nothing

    def run(self) -> RunStats:
        after = 0
        high = 0  # no row above this id is handed to a connection before the marker says so
        exhausted = False
        try:
            self.ledger.begin()
            self.pool.start()
            while True:
                if self.pool.fatal is not None:
                    break
                now = time.monotonic()
                while self._waiting and self._waiting[0][0] <= now:
                    _, _row_id, row = heapq.heappop(self._waiting)
                    self._submit(row)
                room = self.window - len(self._outstanding) - len(self._waiting)
                if not exhausted and room >= self.window // 2:
                    claimed, last = self.ledger.claim(after, room)
                    exhausted, after = last == after, last
                    if last > high:
                        high = last + self.ledger.reserve_ahead
                        self.ledger.reserve(high)
                    for row in claimed:
                        self._submit(row)
                idle = not self._outstanding
                if self._buffer and (
                    idle
                    or len(self._buffer) >= FLUSH_EVERY
                    or now - self._last_flush > FLUSH_SECONDS
                ):
                    self._flush()
                if exhausted and idle and not self._waiting and not self._buffer:
                    if not self.ledger.more_to_come():
                        self._completed = True
                        break
                    # Other senders hold the last rows: wait for them, or for their rows to
                    # come free when one is found dead. Waiting is no lack of progress.
                    exhausted = False
                    self._last_progress = time.monotonic()
                    self.pool.stopping.wait(OTHERS_POLL)
                    continue
                if now - self._last_progress > self.policy.give_up_after:
                    left = [row.email for _, _, row in self._waiting]
                    left += [row.email for row in self._outstanding.values()]
                    named = ", ".join(left[:5]) + (
                        f" and {len(left) - 5} more" if len(left) > 5 else ""
                    )
                    raise SendError(
                        f"The relay {self.pool.target.describe()} accepted nothing for "
                        f"{self.policy.give_up_after:.0f} s; stopped with "
                        f"{len(left)} recipients still to send ({named})",
                        "Check the relay (a mailbox that stays full keeps its reader pending); "
                        "rerun the same command to resume (nobody is mailed twice).",
                    )
                wait = 0.05
                if idle and self._waiting:
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
        """Stop the threads, record what they finished, settle the journal."""
        self.progress = None
        try:
            unsent = self.pool.stop(timeout=self.pool.timeout + 5)
            self._drain(0)
            if self._completed and self.pool.fatal is None:
                self._release_streak()  # the list went through without the breaker tripping
            else:
                self._hold_streak()  # stopped, interrupted or tripped: they stay pending
            self._flush()
            for job in unsent:
                if self._outstanding.pop(job.key, None) is not None:
                    self.stats.released += 1
            # Still outstanding: a thread did not finish in time. If its message's data was
            # going out, the journal says so and the row becomes 'uncertain' now, the truth.
            self.stats.in_doubt = len(self._outstanding)
        finally:
            # The ledger always reads the journal back, even when every result looks
            # committed (an interrupt between taking a result off the queue and buffering it
            # leaves the journal as the only record that the message went out), and even when
            # a commit failed just now (a shared ledger must also end its sender's lease).
            self.ledger.close()
