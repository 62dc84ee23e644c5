"""Several sending threads, each with its own reused connection, behind shared rate limits.

The caller submits jobs (an envelope and a function that builds the bytes, run in the worker
so that building overlaps with other threads' network waits) and reads one ``JobResult`` per
job from ``results``. ``hooks`` (optional) are called in the worker right before a message's
data goes out and right after its outcome is known: the caller's crash journal, so that a
kill leaves at most one message per connection in doubt without the worker ever waiting for
another thread. Workers never touch the database: the caller owns the ledger.

Rates: a global token bucket spreads messages evenly across the connections at the pace
``AdaptiveRate`` keeps near the relay's quota, and one bucket per connection
(``rate_per_connection``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from dispatch.errors import DispatchError, SendError
from dispatch.mailer.connection import (
    DeliveryStatus,
    Outcome,
    RelayRefusedSender,
    SmtpConnection,
)
from dispatch.mailer.rate import AdaptiveRate, TokenBucket
from dispatch.mailer.url import SmtpTarget


@dataclass
class Job:
    key: Any  # the caller's handle (a ledger row id)
    sender: str
    recipient: str
    payload: Callable[[], bytes]
    dot_safe: bool = False  # the payload never has a line starting with "." (no stuffing)
    note: Any = None  # the caller's, e.g. where its journal recorded the outcome
    data_started: bool = False  # set once the gate let the message's data go
    held: bool = False  # a hard bounce the run's circuit breaker kept pending (engine.py)


class SendHooks(Protocol):
    """What the caller records around each message, in the worker thread."""

    def before_data(self, job: Job) -> None:
        """The message's data is about to go out (the relay said 354)."""

    def after_reply(self, job: Job, status: DeliveryStatus) -> None:
        """The message's outcome, before it is put on ``results``."""


@dataclass
class JobResult:
    job: Job
    status: DeliveryStatus


class RateLimiter(TokenBucket):
    """Spaces sends ``1/rate`` seconds apart across all threads (0 = no limit)."""

    def wait(self, stop: threading.Event) -> None:
        delay = self.reserve()
        if delay > 0:
            stop.wait(delay)


class SenderPool:
    """``concurrency`` threads draining ``submit``-ted jobs; results arrive on ``results``."""

    #: Pause of a thread whose connection dropped, doubling up to the maximum.
    reconnect_delays = (0.5, 30.0)

    def __init__(
        self,
        target: SmtpTarget,
        *,
        concurrency: int = 1,
        rate: float = 0.0,
        rate_per_connection: float = 0.0,
        timeout: float = 30.0,
        hooks: SendHooks | None = None,
        adaptive: AdaptiveRate | None = None,
    ) -> None:
        self.target = target
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.hooks = hooks
        self.adaptive = adaptive or AdaptiveRate(rate)
        self.limiter = RateLimiter(self.adaptive.rate)
        self.rate_per_connection = rate_per_connection
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.results: queue.Queue[JobResult] = queue.Queue()
        self.stopping = threading.Event()
        self.fatal: DispatchError | BaseException | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.concurrency):
            thread = threading.Thread(target=self._work, name=f"dispatch-smtp-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, job: Job) -> None:
        self.jobs.put(job)

    @property
    def rate(self) -> float:
        """The global rate in force now (0 = no limit)."""
        return self.limiter.rate

    def _pace(self, own: TokenBucket | None) -> bool:
        """Wait for this connection's and the global rate; False when told to stop."""
        for bucket in (own, self.limiter):
            if bucket is None:
                continue
            delay = bucket.reserve()
            if delay > 0 and self.stopping.wait(delay):
                return False
        return not self.stopping.is_set()

    def _adapt(self, status: DeliveryStatus, started: float) -> None:
        if status.throttled:
            rate = self.adaptive.on_throttle(started)
        elif status.outcome == Outcome.SENT:  # what the relay's quota counts
            rate = self.adaptive.on_success()
        else:
            return
        if rate != self.limiter.rate:
            self.limiter.set_rate(rate)

    def _gate(self, job: Job) -> bool:
        """Last check before the data goes: not when stopping; journal it first."""
        if self.stopping.is_set():
            return False
        if self.hooks is not None:
            try:
                self.hooks.before_data(job)
            except OSError as exc:  # the journal cannot be written: nothing may go out
                self.fatal = self.fatal or SendError(
                    f"Cannot record the message in flight: {exc.strerror or exc}",
                    "Check the disk next to the database (space, permissions); nothing was "
                    "sent unrecorded. Rerun to resume.",
                )
                self.stopping.set()
                return False
            except DispatchError as exc:  # the ledger refused it (another sender has it)
                self.fatal = self.fatal or exc
                self.stopping.set()
                return False
        job.data_started = True
        return True

    def _work(self) -> None:
        conn = SmtpConnection(self.target, self.timeout)
        own = TokenBucket(self.rate_per_connection) if self.rate_per_connection > 0 else None
        delay_min, delay_max = self.reconnect_delays
        delay = delay_min
        try:
            while not self.stopping.is_set():
                job = self.jobs.get()
                if job is None or self.stopping.is_set():
                    if job is not None:
                        self.jobs.put(job)  # leave it for stop() to hand back
                    break
                if not self._pace(own):
                    self.jobs.put(job)  # never started: stop() hands it back
                    break
                started = self.adaptive.now()
                try:
                    data = job.payload()
                except Exception as exc:  # noqa: BLE001 - one reader's copy, not the run
                    # A copy that cannot be built (an address no relay can take, say) fails
                    # alone, with the reason, instead of stopping every run at the same row.
                    status = DeliveryStatus(
                        Outcome.PERMANENT, 0, f"Dispatch could not build this copy: {exc}"
                    )
                    self.results.put(JobResult(job, status))
                    continue
                try:
                    status = conn.send(
                        job.sender,
                        job.recipient,
                        data,
                        gate=partial(self._gate, job),
                        dot_safe=job.dot_safe,
                    )
                    if self.hooks is not None and not status.aborted:
                        self.hooks.after_reply(job, status)
                except RelayRefusedSender as exc:  # refused for good, but not for this reader
                    self.fatal = self.fatal or SendError(
                        f"The relay {self.target.describe()} refused the {exc.step} for every "
                        f"message: {exc.status.code} {exc.status.reply}",
                        "This is about the sending account (quota, login, sender address), "
                        "not the readers: fix it with your provider, then rerun to resume.",
                    )
                    status = DeliveryStatus(
                        Outcome.TEMPORARY,
                        exc.status.code,
                        f"not sent: {exc.status.reply}",
                        aborted=True,
                    )
                    if self.hooks is not None and job.data_started:
                        self.hooks.after_reply(job, replace(status, aborted=False))
                    self.results.put(JobResult(job, status))
                    self.stopping.set()
                    break
                except BaseException as exc:  # a bug or a fatal relay error: stop the run
                    self.fatal = self.fatal or exc
                    if job.data_started:  # it may have gone out: in doubt, never resent
                        status = DeliveryStatus(
                            Outcome.UNKNOWN, 0, f"in doubt: {exc}", connection_lost=True
                        )
                        if self.hooks is not None:
                            with contextlib.suppress(Exception):
                                self.hooks.after_reply(job, status)
                    else:
                        status = DeliveryStatus(
                            Outcome.TEMPORARY, 0, f"not sent: {exc}", connection_lost=True
                        )
                    self.results.put(JobResult(job, status))
                    self.stopping.set()
                    break
                self.results.put(JobResult(job, status))
                self._adapt(status, started)
                if status.aborted:  # stopping: the data never went
                    break
                if status.connection_lost and not status.throttled:
                    # A relay that is down is not hammered; one that closed the connection
                    # to say "too fast" (421) is paced by the shared rate instead.
                    self.stopping.wait(delay)
                    delay = min(delay * 2, delay_max)
                else:
                    delay = delay_min
        finally:
            conn.close()

    def stop(self, timeout: float | None = None) -> list[Job]:
        """Stop the threads after their current message; return the jobs never started."""
        self.stopping.set()
        for _ in self._threads:
            self.jobs.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
        unsent: list[Job] = []
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                unsent.append(job)
        return unsent

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)
