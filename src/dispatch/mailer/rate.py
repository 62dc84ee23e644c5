"""Rate limits: token buckets (global and per connection) and an adaptive rate that backs off
when the relay throttles.

``TokenBucket`` answers "how long until I may send the next message?" from an injectable clock,
so it is tested without sleeping. ``AdaptiveRate`` is AIMD (as TCP does with its window): a
throttling reply halves the rate and remembers a ceiling a little under the rate that was
throttled; every success creeps the rate back up towards that ceiling, and the ceiling itself
rises slowly while no throttling is seen. Under a relay that throttles above R messages per
second the rate settles just under R and the throttling replies stop.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]

#: Reply text that means "too fast" whatever the code (providers differ: SES says 454
#: Throttling, others 421 or 451 with "rate limit", "too many messages", "slow down").
_THROTTLE_TEXT = re.compile(
    r"throttl|rate.?limit|too many (messages|mails|connections|recipients)|slow(ing)? down|"
    r"(rate|quota|limit) exceeded|exceeded .*(rate|quota|limit)",
    re.IGNORECASE,
)


def is_throttle(code: int, reply: str) -> bool:
    """Whether a temporary reply asks us to send more slowly (not a per-recipient problem)."""
    if code in (421, 454):
        return True
    return 400 <= code < 500 and bool(_THROTTLE_TEXT.search(reply))


class TokenBucket:
    """``rate`` messages per second with bursts of at most ``burst``; rate 0 means no limit.

    ``reserve()`` takes one token and returns the seconds to wait before using it (0 when one
    was available). Tokens taken ahead make the next callers wait longer, so several threads
    sharing a bucket are spaced out fairly. Thread-safe.
    """

    def __init__(self, rate: float = 0.0, burst: float = 1.0, clock: Clock = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = max(0.0, rate)
        self.burst = max(1.0, burst)
        self._tokens = self.burst
        self._last = clock()

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self._refill(self._clock())
            self._rate = max(0.0, rate)

    def _refill(self, now: float) -> None:
        if self._rate > 0:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self._rate)
        else:
            self._tokens = self.burst
        self._last = now

    def reserve(self) -> float:
        with self._lock:
            if self._rate <= 0:
                return 0.0
            now = self._clock()
            self._refill(now)
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._rate


class AdaptiveRate:
    """AIMD rate control driven by the relay's replies.

    ``rate`` is 0 (no limit) until the first throttling reply; ``maximum`` (the user's
    ``--rate``, 0 = none) is never exceeded. On a throttle the rate halves, from the lower of
    the current limit and the rate actually achieved over the last ``window`` seconds, and
    the ceiling becomes ``ceiling_factor`` of it. Throttles of messages that started before
    the last decrease are ignored (they were sent at the old rate). Each success adds
    ``increase`` x ceiling / rate messages per second (about ``increase`` x ceiling per
    second), up to the ceiling; the ceiling grows by ``probe`` (a fraction) every
    ``probe_every`` seconds without a throttle, so a relay that stops throttling is used fully
    again.
    """

    def __init__(
        self,
        maximum: float = 0.0,
        *,
        minimum: float = 0.2,
        ceiling_factor: float = 0.9,
        increase: float = 0.25,
        probe: float = 0.01,
        probe_every: float = 5.0,
        window: float = 2.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.maximum = max(0.0, maximum)
        self.minimum = minimum
        self.ceiling_factor = ceiling_factor
        self.increase = increase
        self.probe = probe
        self.probe_every = probe_every
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self.rate = self.maximum  # 0 = unlimited
        self.ceiling = self.maximum
        self.throttles = 0  # throttling replies seen
        self.decreases = 0  # of which made the rate go down
        self._last_decrease = float("-inf")
        self._last_probe = clock()
        self._done: deque[float] = deque()
        self._started = clock()

    def observed(self, now: float | None = None) -> float:
        """Messages per second actually accepted over the last ``window`` seconds."""
        now = self._clock() if now is None else now
        while self._done and self._done[0] < now - self.window:
            self._done.popleft()
        span = min(self.window, max(now - self._started, 1e-3))
        return len(self._done) / span

    def now(self) -> float:
        return self._clock()

    def on_success(self) -> float:
        """Record an accepted (or refused for good) message; returns the new rate."""
        with self._lock:
            now = self._clock()
            done = self._done
            done.append(now)
            while done[0] < now - self.window:  # keep only the window (memory stays flat)
                done.popleft()
            if not self.rate:
                return self.rate
            if now - self._last_probe >= self.probe_every and self.ceiling:
                top = self.maximum or float("inf")
                self.ceiling = min(top, self.ceiling * (1 + self.probe))
                self._last_probe = now
            if self.rate < self.ceiling:
                step = self.increase * self.ceiling / max(self.rate, self.minimum)
                self.rate = min(self.ceiling, self.rate + step)
            return self.rate

    def on_throttle(self, started: float | None = None) -> float:
        """Record a throttling reply to a message started at ``started`` (clock time)."""
        with self._lock:
            now = self._clock()
            self.throttles += 1
            self._last_probe = now
            if started is not None and started < self._last_decrease:
                return self.rate  # sent at the old rate: already accounted for
            achieved = self.observed(now)
            current = (
                min(r for r in (self.rate, achieved) if r > 0)
                if (self.rate > 0 or achieved > 0)
                else self.minimum * 2
            )
            self.ceiling = max(self.minimum, current * self.ceiling_factor)
            self.rate = max(self.minimum, current / 2)
            self._last_decrease = now
            self.decreases += 1
            return self.rate
