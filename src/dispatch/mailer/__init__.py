"""Moving bytes to an SMTP relay (smtplib only): URL parsing, connections, a sending pool.

The mailer never builds a message; it hands finished bytes over, one envelope recipient per
message, and reports each recipient's outcome (code, reply, temporary or permanent). The send
engine (``engine.DeliveryRun``) drives the pool over a ``Ledger`` (``store.sending``).
"""

from dispatch.mailer.connection import (
    DeliveryStatus,
    Outcome,
    SmtpConnection,
    check_relay,
)
from dispatch.mailer.engine import DeliveryRun, Ledger, RetryPolicy, RunStats
from dispatch.mailer.pool import Job, JobResult, RateLimiter, SenderPool, SendHooks
from dispatch.mailer.rate import AdaptiveRate, TokenBucket, is_throttle
from dispatch.mailer.settings import pool_from_settings, relay_from_settings
from dispatch.mailer.url import SmtpTarget, parse_smtp_url

__all__ = [
    "AdaptiveRate",
    "DeliveryRun",
    "Ledger",
    "RetryPolicy",
    "RunStats",
    "pool_from_settings",
    "relay_from_settings",
    "SendHooks",
    "TokenBucket",
    "is_throttle",
    "DeliveryStatus",
    "Job",
    "JobResult",
    "Outcome",
    "RateLimiter",
    "SenderPool",
    "SmtpConnection",
    "SmtpTarget",
    "check_relay",
    "parse_smtp_url",
]
