"""The web service's background thread: signups' work and the spooled unsubscribes run there,
after the page has answered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

log = logging.getLogger("dispatch.web")


class Outbox:
    """Runs signups' work (lookups, limits, email) on one background thread per process, so
    the form answers at once and always alike (see jobs.signup)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-outbox")
        self._futures: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], object]) -> None:
        future = self._executor.submit(job)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)
        if future.exception() is not None:
            log.error("a signup's background work failed: %s", future.exception())

    def join(self, timeout: float | None = None) -> None:
        """Wait for every queued email (tests, and shutdown)."""
        with self._lock:
            pending = list(self._futures)
        wait(pending, timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
