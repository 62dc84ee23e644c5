"""`dispatch doctor`'s checks that need no other capability: DNS records (SPF, DKIM, DMARC),
the public web address, the bulk-sender rule, and the runner that keeps each check to its own
time limit. ``dispatch.jobs.doctor`` adds the relay, Stripe, templates and the list's size."""

from dispatch.doctor.checks import (
    BULK_THRESHOLD,
    Check,
    CheckResult,
    Status,
    apply_bulk_rule,
    run_checks,
)

__all__ = ["BULK_THRESHOLD", "Check", "CheckResult", "Status", "apply_bulk_rule", "run_checks"]
