"""Several sending threads, each with its own reused connection, behind one rate limit.

The caller submits jobs (an envelope and a function that builds the bytes, run in the worker
so that building overlaps with other threads' network waits) and reads one result per job from
``results``. Workers never touch the database: the caller owns the ledger.
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
from dispatch.mailer.url import SmtpTarget


@dataclass
class Job:
    key: Any  # the caller's handle (a ledger row id)
    sender: str
    recipient: str
    payload: Callable[[], bytes]


@dataclass
class JobResult:
    job: Job
    status: DeliveryStatus


class RateLimiter:
    """Spaces sends ``1/rate`` seconds apart across all threads (0 = no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            stop.wait(slot - now)


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
        timeout: float = 30.0,
    ) -> None:
        self.target = target
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.limiter = RateLimiter(rate)
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

    def _work(self) -> None:
        conn = SmtpConnection(self.target, self.timeout)
        delay_min, delay_max = self.reconnect_delays
        delay = delay_min
        try:
            while not self.stopping.is_set():
                job = self.jobs.get()
                if job is None or self.stopping.is_set():
                    if job is not None:
                        self.jobs.put(job)  # leave it for stop() to hand back
                    break
                self.limiter.wait(self.stopping)
                if self.stopping.is_set():
                    self.jobs.put(job)  # never started: stop() hands it back
                    break
                try:
                    data = job.payload()
                    status = conn.send(job.sender, job.recipient, data)
                except BaseException as exc:  # a bug or a fatal relay error: stop the run
                    self.fatal = self.fatal or exc
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
