"""Rate limits as units, on an injected clock (no sleeping): the token bucket, the paced rate
that finds the relay's quota, and which replies count as throttling. A controller proven here
is not proven: bench/throttle.py runs it against a real throttling relay on a real clock."""

from __future__ import annotations

import pytest

from dispatch.mailer.rate import AdaptiveRate, TokenBucket, is_throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_without_a_rate_never_waits():
    clock = Clock()
    bucket = TokenBucket(0, clock=clock)
    assert [bucket.reserve() for _ in range(1000)] == [0.0] * 1000


def test_bucket_spaces_messages_one_interval_apart():
    clock = Clock()
    bucket = TokenBucket(10, clock=clock)  # 10/s, burst 1
    waits = [bucket.reserve() for _ in range(4)]  # four callers at the same instant
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])
    clock.advance(0.4)  # all of them went; the next one is due now
    assert bucket.reserve() == pytest.approx(0.0)
    assert bucket.reserve() == pytest.approx(0.1)


def test_bucket_allows_its_burst_then_the_rate():
    clock = Clock()
    bucket = TokenBucket(5, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.2)
    clock.advance(10)  # a long pause refills to the burst, no more
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() > 0


def test_bucket_rate_over_a_long_run_matches_the_rate():
    clock = Clock()
    bucket = TokenBucket(14, clock=clock)  # an SES-like quota
    sent = 0
    for _ in range(5000):
        wait = bucket.reserve()
        clock.advance(wait)
        sent += 1
    elapsed = clock.now - 100.0
    assert sent / elapsed == pytest.approx(14, rel=0.01)


def test_bucket_rate_can_change_midway():
    clock = Clock()
    bucket = TokenBucket(10, clock=clock)
    bucket.reserve()
    bucket.set_rate(2)
    assert bucket.reserve() == pytest.approx(0.5)
    bucket.set_rate(0)
    assert bucket.reserve() == 0.0


@pytest.mark.parametrize(
    ("code", "reply", "throttle"),
    [
        (454, "4.7.0 Throttling failure: Maximum sending rate exceeded.", True),
        (421, "4.7.0 Too many connections, try later", True),
        (451, "4.7.1 Rate limit exceeded for this sender", True),
        (450, "4.2.1 Too many messages, slow down", True),
        (451, "4.7.1 Greylisted, please try again later", False),
        (452, "4.2.2 Mailbox full", False),
        (550, "5.7.1 Rate limit exceeded", False),  # permanent is permanent
        (250, "2.0.0 Ok", False),
    ],
)
def test_which_replies_are_throttling(code, reply, throttle):
    assert is_throttle(code, reply) is throttle


def _accept(rate: AdaptiveRate, clock: Clock, per_second: float, seconds: float) -> None:
    for _ in range(int(per_second * seconds)):
        clock.advance(1 / per_second)
        rate.on_success()


def test_unpaced_until_the_relay_throttles_then_paced_under_what_it_accepted():
    clock = Clock()
    rate = AdaptiveRate(clock=clock)
    rate.now()  # the first message starts
    assert rate.rate == 0  # no limit until the relay complains
    _accept(rate, clock, 100, 2.0)  # the relay took 100 a second
    assert rate.on_throttle(started=clock.now) == pytest.approx(95, rel=0.02)
    assert rate.w_max == pytest.approx(100, rel=0.05)  # the estimate of its quota


def test_a_burst_of_throttles_is_one_decrease_not_one_halving_each():
    clock = Clock()
    rate = AdaptiveRate(clock=clock)
    rate.now()
    _accept(rate, clock, 40, 2.0)
    started = clock.now
    clock.advance(0.005)  # its reply comes a round trip later
    rate.on_throttle(started=started)
    after = rate.rate
    for _ in range(12):  # the other connections' replies in the same round trip
        clock.advance(0.003)
        rate.on_throttle(started=clock.now)
    assert rate.rate == after and rate.throttles == 13 and rate.decreases == 1
    clock.advance(0.6)
    rate.on_throttle(started=started)  # a message started before the decrease: still one
    assert rate.decreases == 1


def test_repeated_episodes_follow_what_is_accepted_and_do_not_compound():
    clock = Clock()
    rate = AdaptiveRate(clock=clock)
    rate.now()
    _accept(rate, clock, 50, 2.0)
    for _ in range(6):  # six more episodes while the relay keeps taking 50 a second
        clock.advance(0.02)
        rate.on_throttle(started=clock.now)
        _accept(rate, clock, 50, 0.6)
    assert rate.decreases == 6
    assert rate.rate >= 0.85 * 50  # halving six times would leave 0.8 a second


def test_climbs_back_to_the_quota_then_probes_above_it():
    clock = Clock()
    rate = AdaptiveRate(clock=clock)
    rate.now()
    _accept(rate, clock, 100, 2.0)
    rate.on_throttle(started=clock.now)
    low = rate.rate
    _accept(rate, clock, 97, 0.8)  # concave: most of the way back at once
    assert low < rate.rate < 100
    _accept(rate, clock, 100, 0.8)  # back at the quota after K (1.6 s)
    assert rate.rate == pytest.approx(100, rel=0.03)
    _accept(rate, clock, 100, 2.0)  # then probe above it: has the quota risen?
    assert rate.rate > 110


def test_a_learnt_rate_starts_the_send_near_it():
    clock = Clock()
    rate = AdaptiveRate(start=14, clock=clock)
    assert rate.rate == pytest.approx(14)
    assert rate.learnt == pytest.approx(14)
    cold = AdaptiveRate(clock=clock)
    assert cold.learnt == 0  # nothing found: nothing to remember
    cold.now()
    _accept(cold, clock, 14, 2.0)
    cold.on_throttle(started=clock.now)
    assert cold.learnt == pytest.approx(14, rel=0.1)


def test_the_users_maximum_caps_the_start_and_the_probe():
    clock = Clock()
    rate = AdaptiveRate(10, start=50, clock=clock)
    assert rate.rate == 10
    rate.now()
    _accept(rate, clock, 10, 30.0)
    assert rate.rate <= 10
    rate.on_throttle(started=clock.now)
    _accept(rate, clock, 9, 30.0)
    assert rate.rate <= 10


def test_converges_under_a_relay_that_throttles_above_r():
    """A simulated relay: a token bucket at R per second; throttled messages retried at once
    (as the send loop does), the sender paced by the controller."""
    for limit_r in (5.0, 50.0, 200.0):
        clock = Clock()
        relay = {"tokens": 5.0, "last": clock.now}

        def relay_accepts(relay=relay, limit_r=limit_r, clock=clock) -> bool:
            relay["tokens"] = min(5.0, relay["tokens"] + (clock.now - relay["last"]) * limit_r)
            relay["last"] = clock.now
            if relay["tokens"] >= 1:
                relay["tokens"] -= 1
                return True
            return False

        rate = AdaptiveRate(clock=clock)
        pace = TokenBucket(0, clock=clock)
        rate.now()
        start, accepted, messages = clock.now, 0, int(limit_r * 60)
        while accepted < messages:
            clock.advance(max(pace.reserve(), 1 / 1000))  # the sender alone does ~1000/s
            started = clock.now
            if relay_accepts():
                accepted += 1
                new = rate.on_success()
            else:
                new = rate.on_throttle(started)
            if new != pace.rate:
                pace.set_rate(new)
        achieved = messages / (clock.now - start)
        assert achieved >= 0.85 * limit_r, (limit_r, achieved)
        assert rate.learnt == pytest.approx(limit_r, rel=0.2)


def test_keeps_only_its_window_of_history():
    clock = Clock()
    rate = AdaptiveRate(clock=clock, window=2.0)
    rate.now()
    for _ in range(100_000):  # a long send at 1,000 per second
        clock.advance(0.001)
        rate.on_success()
    assert len(rate._done) <= 2001  # two seconds' worth, not the whole send
    assert rate.observed() == pytest.approx(1000, rel=0.01)
