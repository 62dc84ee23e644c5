"""Rate limits: token buckets (global and per connection) and the pace the relay allows.

``TokenBucket`` answers "how long until I may send the next message?" from an injectable clock,
so it is tested without sleeping. ``AdaptiveRate`` finds and follows the relay's quota: it
measures what the relay accepts, decreases once per throttling episode to just under that,
climbs back CUBIC-like and probes above; its ``learnt`` rate starts the next send near it.
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
    """Paces the whole send at an estimate of the relay's quota, found from its replies.

    ``rate`` is the pace in messages per second (0 = none: no throttle seen, nothing learnt,
    no ``maximum``). How it moves, after TCP's CUBIC and BBR and Postfix's per-destination
    feedback:

    - *measure*: ``observed`` is the rate the relay actually accepted over the last
      ``window`` seconds (BBR's delivery rate). Above the quota it equals the quota, however
      fast we go; its maximum over the last ``memory`` seconds is the estimate of the quota a
      throttle is taken from;
    - *decrease once per episode*: a throttle sets the pace to ``beta`` x that estimate (not
      half of whatever the pace was) and remembers the estimate as ``w_max``. Replies to
      messages started before that decrease, or within ``gap`` seconds of it, belong to the
      same episode and change nothing (a burst of N throttles is one signal, not N halvings),
      and as the pace follows the measurement, later episodes never compound;
    - *grow back CUBIC-like*: a concave climb that is back at ``w_max`` after ``K`` seconds,
      a plateau there, then a probe above it (convex, doubling every ``probe_double``
      seconds), so a quota that rose is found and one that did not is met briefly again;
    - *start near what was learnt*: ``start`` (last send's ``learnt`` for this relay) begins
      the send at the plateau; without it the send starts unpaced and the first throttle
      measures the quota.

    ``maximum`` (the user's ``--rate``, 0 = none) is never exceeded. Thread-safe; the clock is
    injectable so the arithmetic is tested without sleeping.
    """

    def __init__(
        self,
        maximum: float = 0.0,
        *,
        start: float = 0.0,
        minimum: float = 0.2,
        beta: float = 0.95,
        cubic: float = 0.0125,
        probe_double: float = 2.0,
        window: float = 2.0,
        gap: float = 0.05,
        memory: float = 4.0,
        cycle_messages: float = 15.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.maximum = max(0.0, maximum)
        self.minimum = minimum
        self.beta = beta
        self.cubic = cubic
        self.probe_double = probe_double
        self.window = window
        self.gap = gap
        self._clock = clock
        self._lock = threading.Lock()
        self.throttles = 0  # throttling replies seen
        self.decreases = 0  # of which made the pace go down (one per episode)
        self._last_decrease = float("-inf")
        self._done: deque[float] = deque()
        self._first: float | None = None  # when the first message started
        self.start = max(0.0, start)
        self.peak = 0.0  # the highest full-window accepted rate seen
        self.memory = memory
        self.cycle_messages = cycle_messages
        self._best: deque[tuple[float, float]] = deque()  # (when, accepted rate) samples
        # K: seconds a concave climb from beta x w_max takes to get back to w_max (1.6 s).
        self._k: float = ((1 - beta) / cubic) ** (1 / 3)
        now = clock()
        self.w_max = 0.0
        self._epoch: float | None = None  # start of the current climb (None: not paced)
        if self.start:
            self.w_max = self.start
            self._epoch = now - self._climb()  # on the plateau: probe up from the learnt rate
        self.rate = self._cap(self.start or self.maximum)

    def _cap(self, rate: float) -> float:
        if self.maximum and (not rate or rate > self.maximum):
            return self.maximum
        return max(self.minimum, rate) if rate else 0.0

    def now(self) -> float:
        """The clock (the pool stamps each message's start with it)."""
        now = self._clock()
        if self._first is None:
            self._first = now
        return now

    def observed(self, now: float | None = None) -> float:
        """Messages per second the relay accepted over the last ``window`` seconds.

        Between the first and the last acceptance in the window ((n - 1) / their span), not
        n / window: at 5 a second a 2 s window holds 9 or 10 acceptances depending on where
        its edge falls, and n / window would read 4.5 half the time. But never more than
        n / (now - first): after a burst and a silence the estimate falls as the silence lasts.
        """
        now = self._clock() if now is None else now
        done = self._done
        while done and done[0] < now - self.window:
            done.popleft()
        n = len(done)
        if n >= 2 and done[-1] > done[0]:
            return min((n - 1) / (done[-1] - done[0]), n / max(now - done[0], 1e-3))
        span = self.window if self._first is None else min(self.window, now - self._first)
        return len(done) / max(span, 1e-3)

    def _climb(self) -> float:
        """K: seconds from the pace after a decrease back to ``w_max`` (then the probe)."""
        return max(self._k, self.cycle_messages / max(self.w_max, self.minimum))

    def target(self, now: float) -> float:
        """Where the climb since the last decrease has got to by ``now`` (0 = not paced)."""
        if self._epoch is None:
            return self.rate
        # Each throttle wastes one message's slot, so at a low quota a cycle (climb, probe,
        # throttle) must last some messages, not only some seconds: at 5 a second a 1.6 s
        # climb would waste one slot in eight.
        k = self._climb()
        t = now - self._epoch - k
        rate = self.w_max * (1 + (1 - self.beta) * (t / k) ** 3)
        if t > 0:
            double = self.probe_double * k / self._k
            rate = max(rate, self.w_max * 2 ** (t / double))
            # Not past twice what gets accepted: a pace the connections cannot reach is no
            # information (BBR's application-limited samples), and must not grow unbounded.
            rate = min(rate, max(self.w_max, 2 * self.observed(now)))
        return rate

    def on_success(self) -> float:
        """Record an accepted message; returns the pace now in force."""
        with self._lock:
            now = self._clock()
            self._done.append(now)
            observed = self.observed(now)
            if self._first is not None and now - self._first >= self.window:
                self.peak = max(self.peak, observed)
                best = self._best
                if not best or now - best[-1][0] >= self.window / 8:
                    best.append((now, observed))
                while best and best[0][0] < now - self.memory:
                    best.popleft()
            if self._epoch is not None:
                self.rate = self._cap(self.target(now))
            return self.rate

    def on_throttle(self, started: float | None = None) -> float:
        """Record a throttling reply to a message started at ``started`` (clock time)."""
        with self._lock:
            now = self._clock()
            self.throttles += 1
            if started is not None and started < self._last_decrease:
                return self.rate  # sent at the old pace: already accounted for
            if now - self._last_decrease < self.gap:
                return self.rate  # the same round trip: one signal, not several
            # BBR's windowed maximum: the best rate accepted over the last few seconds, not
            # only the last one, which dips whenever connections are busy reconnecting (a
            # relay that hangs up to throttle) and would read as a lower quota.
            estimate = max([self.observed(now), *(rate for _, rate in self._best)])
            if self._first is not None and now - self._first >= 1.0:
                # Quotas are counted per second: at the moment of a throttle the relay has
                # just accepted its quota's worth over the last second. Counting that second
                # reads 5 at a quota of 5, where an average over a longer stretch that began
                # under the quota reads 4.6.
                last_second = 0
                for accepted in reversed(self._done):
                    if accepted <= now - 1.0:
                        break
                    last_second += 1
                estimate = max(estimate, float(last_second))
            if len(self._done) < 2:
                if not self.rate:
                    # Nothing measured yet (the first replies are throttles): no pace can be
                    # derived, and a guess would be orders of magnitude off. Acceptances come
                    # within a moment at any quota; the next throttle after them decides.
                    return self.rate
                estimate = 0.0
            paced = self.beta * estimate if estimate > 0 else self.beta * self.rate
            if self.rate and (paced >= self.rate or not paced):
                paced = self.rate  # already under what got through: hold, climb from here
            paced = max(self.minimum, paced)
            # The pace follows the measurement, never the previous pace: throttles that keep
            # coming while the relay's window empties cannot compound into a collapse.
            self.w_max = paced / self.beta
            self.rate = self._cap(paced)
            self._epoch = now  # the climb starts where the pace now sits on its curve
            self._last_decrease = now
            self.decreases += 1
            return self.rate

    @property
    def learnt(self) -> float:
        """The quota this send found (0 = none found): next send's ``start`` for this relay."""
        with self._lock:
            if self.decreases:
                return self.w_max
            if self.start:
                return max(self.start, self.peak)
            return 0.0
