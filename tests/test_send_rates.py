"""Rate limits as units, on an injected clock (no sleeping): the token bucket, AIMD, and which
replies count as throttling."""

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


def test_aimd_halves_on_throttle_and_creeps_back_up_to_a_ceiling():
    clock = Clock()
    rate = AdaptiveRate(clock=clock, increase=0.1, probe_every=1e9)
    assert rate.rate == 0  # no limit until the relay complains
    for _ in range(200):  # 100 messages per second accepted for two seconds
        clock.advance(0.01)
        rate.on_success()
    clock.advance(0.01)
    assert rate.on_throttle(started=clock.now) == pytest.approx(50, rel=0.05)
    assert rate.ceiling == pytest.approx(90, rel=0.05)
    for _ in range(1000):
        clock.advance(1 / max(rate.rate, 1))
        rate.on_success()
    assert rate.rate == pytest.approx(rate.ceiling)  # back up, but not above the ceiling
    assert rate.decreases == 1


def test_aimd_ignores_throttles_of_messages_sent_before_it_slowed_down():
    clock = Clock()
    rate = AdaptiveRate(40, clock=clock)
    first_started = clock.now
    clock.advance(0.5)
    rate.on_throttle(started=first_started)
    assert rate.rate == pytest.approx(20)
    # Three more connections report throttles of messages started before the decrease.
    for _ in range(3):
        rate.on_throttle(started=first_started)
    assert rate.rate == pytest.approx(20) and rate.throttles == 4 and rate.decreases == 1
    clock.advance(0.1)
    rate.on_throttle(started=clock.now)  # a message sent at the new rate: slow down again
    assert rate.rate == pytest.approx(10)


def test_aimd_converges_under_a_relay_that_throttles_above_r():
    """A simulated relay: a token bucket at R per second; the sender paced by AIMD."""
    clock = Clock()
    limit_r = 50.0
    relay = {"tokens": 5.0, "last": clock.now}

    def relay_accepts() -> bool:  # the relay's own bucket: R per second, bursts of 5
        relay["tokens"] = min(5.0, relay["tokens"] + (clock.now - relay["last"]) * limit_r)
        relay["last"] = clock.now
        if relay["tokens"] >= 1:
            relay["tokens"] -= 1
            return True
        return False

    rate = AdaptiveRate(clock=clock)
    pace = TokenBucket(0, clock=clock)
    throttles_by_second: dict[int, int] = {}
    start = clock.now
    for _ in range(6000):
        clock.advance(max(pace.reserve(), 1 / 300))  # the sender alone does ~300/s
        started = clock.now
        if not relay_accepts():  # 454 Throttling
            new = rate.on_throttle(started)
            second = int(clock.now - start)
            throttles_by_second[second] = throttles_by_second.get(second, 0) + 1
        else:
            new = rate.on_success()
        if new != pace.rate:
            pace.set_rate(new)
    elapsed = clock.now - start
    assert elapsed > 60
    assert 0.8 * limit_r <= rate.rate <= limit_r
    late = sum(n for s, n in throttles_by_second.items() if s >= elapsed / 2)
    assert late <= 2, throttles_by_second  # the throttling stopped (or all but)
    assert sum(throttles_by_second.values()) >= 1


def test_aimd_never_exceeds_the_users_maximum():
    clock = Clock()
    rate = AdaptiveRate(10, clock=clock, probe_every=0.1)
    assert rate.rate == 10
    for _ in range(500):
        clock.advance(0.1)
        rate.on_success()
    assert rate.rate == 10
    rate.on_throttle(started=clock.now)
    for _ in range(5000):
        clock.advance(0.1)
        rate.on_success()
    assert rate.rate <= 10


def test_aimd_keeps_only_its_window_of_history():
    clock = Clock()
    rate = AdaptiveRate(clock=clock, window=2.0)
    for _ in range(100_000):  # a long send at 1,000 per second
        clock.advance(0.001)
        rate.on_success()
    assert len(rate._done) <= 2001  # two seconds' worth, not the whole send
    assert rate.observed() == pytest.approx(1000, rel=0.01)
