"""Several sending threads, each with its own reused connection, behind shared rate limits.

The caller submits jobs (an envelope and a function that builds the bytes, run in the worker
so that building overlaps with other threads' network waits) and reads ``results``: for each
job first a ``MarkRequest`` (when the pool is gated), then one ``JobResult``. A gated worker
does not let a byte of the message go until the caller has granted the request, which is
where the caller commits the row as ``sending``: so a crash leaves at most one row per
connection in doubt. Workers never touch the database: the caller owns the ledger.

Rates: a global token bucket (``rate``, adapted down when the relay throttles, see
``AdaptiveRate``) and one bucket per connection (``rate_per_connection``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dispatch.errors import DispatchError
from dispatch.mailer.connection import DeliveryStatus, Outcome, SmtpConnection
from dispatch.mailer.rate import AdaptiveRate, TokenBucket
from dispatch.mailer.url import SmtpTarget


@dataclass
class Job:
    key: Any  # the caller's handle (a ledger row id)
    sender: str
    recipient: str
    payload: Callable[[], bytes]
    dot_safe: bool = False  # the payload never has a line starting with "." (no stuffing)


class MarkRequest:
    """A worker asks for leave to send ``job``: granted once the caller's ledger says so.

    Exactly one of the caller (``resolve(True/False)``) and a stopping worker
    (``resolve(False)``) decides; ``resolve`` says whether this call was the one.
    """

    __slots__ = ("job", "granted", "_decided", "_lock")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.granted: bool | None = None
        self._lock = threading.Lock()
        self._decided = threading.Lock()  # held until decided (lighter than an Event)
        self._decided.acquire()

    def resolve(self, granted: bool) -> bool:
        with self._lock:
            if self.granted is not None:
                return False
            self.granted = granted
        self._decided.release()
        return True

    def wait(self, stopping: threading.Event) -> bool:
        while not self._decided.acquire(timeout=0.05):
            if stopping.is_set() and self.resolve(False):
                return False
        return bool(self.granted)


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
        gated: bool = False,
        adaptive: AdaptiveRate | None = None,
    ) -> None:
        self.target = target
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.gated = gated
        self.adaptive = adaptive or AdaptiveRate(rate)
        self.limiter = RateLimiter(self.adaptive.rate)
        self.rate_per_connection = rate_per_connection
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.results: queue.Queue[JobResult | MarkRequest] = queue.Queue()
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
        elif status.outcome in (Outcome.SENT, Outcome.PERMANENT):
            rate = self.adaptive.on_success()
        else:
            return
        if rate != self.limiter.rate:
            self.limiter.set_rate(rate)

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
                request = MarkRequest(job) if self.gated else None
                if request is not None:
                    self.results.put(request)
                try:
                    data = job.payload()
                    gate = (lambda r=request: r.wait(self.stopping)) if request else None
                    status = conn.send(
                        job.sender, job.recipient, data, gate=gate, dot_safe=job.dot_safe
                    )
                except BaseException as exc:  # a bug or a fatal relay error: stop the run
                    self.fatal = self.fatal or exc
                    if request is not None:
                        request.resolve(False)
                    self.results.put(
                        JobResult(
                            job,
                            DeliveryStatus(
                                Outcome.TEMPORARY, 0, f"not sent: {exc}", connection_lost=True
                            ),
                        )
                    )
                    self.stopping.set()
                    break
                self.results.put(JobResult(job, status))
                self._adapt(status, started)
                if status.aborted:  # refused by the caller: stopping, or no longer wanted
                    if self.stopping.is_set():
                        break
                    continue
                if status.connection_lost:
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
