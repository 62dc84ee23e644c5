"""The mailer's parts built from settings: the relay (DISPATCH_SMTP_URL) and the sending pool
(DISPATCH_SMTP_CONCURRENCY, _RATE, _RATE_PER_CONNECTION, _TIMEOUT); the DKIM signer is
``mailer.dkim.signer_from_settings``."""

from __future__ import annotations

from dataclasses import replace

from dispatch.config import Settings
from dispatch.mailer.engine import RetryPolicy
from dispatch.mailer.pool import SenderPool
from dispatch.mailer.rate import AdaptiveRate
from dispatch.mailer.url import SmtpTarget, parse_smtp_url


def relay_from_settings(settings: Settings) -> SmtpTarget:
    """The relay of DISPATCH_SMTP_URL (a ConfigError naming it when unset or malformed)."""
    return parse_smtp_url(settings.require("smtp_url"))


def pool_from_settings(
    settings: Settings,
    target: SmtpTarget,
    retry: RetryPolicy,
    *,
    concurrency: int | None = None,
    rate: float | None = None,
    rate_per_connection: float | None = None,
    learnt: float = 0.0,
    adaptive: AdaptiveRate | None = None,
) -> tuple[SenderPool, RetryPolicy]:
    """The sending pool (each setting overridden when given), starting near the pace ``learnt``
    from this relay last time, and the retry policy it calls for: a very slow pace waits longer
    before the run gives up, and a dropped connection waits like a retry."""
    concurrency = concurrency or settings.smtp_concurrency
    rate = settings.smtp_rate if rate is None else rate
    per_connection = (
        settings.smtp_rate_per_connection if rate_per_connection is None else rate_per_connection
    )
    pool = SenderPool(
        target,
        concurrency=concurrency,
        rate=rate,
        rate_per_connection=per_connection,
        timeout=settings.smtp_timeout,
        adaptive=adaptive or AdaptiveRate(rate, start=learnt),
    )
    policy = retry
    slowest = min(r for r in (rate, per_connection * concurrency, float("inf")) if r > 0)
    if policy.give_up_after < 5 / slowest:  # a very slow rate
        policy = replace(policy, give_up_after=5 / slowest)
    pool.reconnect_delays = (retry.base / 2, max(retry.maximum / 2, 0.01))
    return pool, policy
