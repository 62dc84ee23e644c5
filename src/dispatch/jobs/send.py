"""Send an issue: fix the ledger, resume it, and report (test copies and dry runs are in
``jobs.copies``, the summary and ``dispatch status`` in ``jobs.status``).

``send_issue`` is safe to rerun at any time: the ledger is fixed once (when the issue leaves
draft), rows a crash left going out (per the send journal, ``store.journal``) become
``uncertain`` (resolved only on purpose), and everything still pending goes out. The issue is
marked sent once no row is pending, sending or uncertain. One send per database at a time (a
lock file next to it, removed by the send that holds it; the OS drops the lock on a kill).
The pace is learnt per relay (``AdaptiveRate.learnt``, kept in ``meta``) and starts the next
send near it. A hard bounce makes its reader ``bounced`` at once (never mailed again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from dispatch.config import Settings
from dispatch.errors import ConfigError, InputError, IssueError
from dispatch.jobs.messages import issue_messages, row_composer
from dispatch.jobs.status import SendSummary, finish_summary
from dispatch.jobs.unsubscribe import apply_spool_before_send
from dispatch.mailer import (
    AdaptiveRate,
    DeliveryRun,
    RetryPolicy,
    SmtpTarget,
    check_relay,
    pool_from_settings,
    relay_from_settings,
)
from dispatch.mailer.dkim import DkimSigner, signer_from_settings
from dispatch.models import DeliveryState, Issue, Persona
from dispatch.render.issue import render_and_store
from dispatch.render.message import MessageConfig, MessageFactory
from dispatch.store import Database, donations, journal, ledger, senders
from dispatch.store import subscribers as subscriber_store
from dispatch.store.issues import require_issue
from dispatch.store.sending import IssueLedger, SharedIssueLedger
from dispatch.store.sendlock import send_lock
from dispatch.subscribers import envelope_address


@dataclass
class SendOptions:
    concurrency: int | None = None  # default DISPATCH_SMTP_CONCURRENCY
    rate: float | None = None  # messages per second; default DISPATCH_SMTP_RATE (0 = no limit)
    rate_per_connection: float | None = None  # default DISPATCH_SMTP_RATE_PER_CONNECTION
    resend_uncertain: bool = False
    skip_uncertain: bool = False
    retry_failed: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    adaptive: AdaptiveRate | None = None  # rate control (tests inject one with their clock)
    without_one_click: bool = False  # send a big list although no https unsubscribe URL is set
    bounce_breaker: bool = True  # False: trust a long run of identical hard bounces


#: Above this many recipients a send without one-click unsubscribe is refused unless asked for:
#: Gmail and Yahoo require RFC 8058 one-click unsubscribe of bulk senders (5,000 a day).
ONE_CLICK_LIMIT = 5_000


def _one_click_check(config: MessageConfig, recipients: int, allowed: bool) -> str | None:
    """The warning for a list send without an https unsubscribe URL; refused above the limit."""
    if config.public_url.startswith("https://"):
        return None
    what = (
        f"DISPATCH_PUBLIC_URL is {'not https' if config.public_url else 'not set'}, so the "
        f"{recipients} copies carry no one-click unsubscribe (RFC 8058), which Gmail and Yahoo "
        "require of bulk senders"
    )
    if recipients > ONE_CLICK_LIMIT and not allowed:
        raise ConfigError(
            f"Refusing to send to {recipients} recipients: {what}",
            "Set DISPATCH_PUBLIC_URL to the https address where `dispatch serve` runs, or pass "
            "--without-one-click-unsubscribe to send anyway.",
        )
    return f"Warning: {what}. Set DISPATCH_PUBLIC_URL to the https address of `dispatch serve`."


# -- the send ---------------------------------------------------------------------------


def send_issue(
    db: Database,
    settings: Settings,
    issue_id: str,
    options: SendOptions | None = None,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> SendSummary:
    """Send (or resume) an issue to its ledger; see the module docstring for the guarantees.

    ``on_start`` receives the number of rows about to be sent (for a progress bar);
    ``notice`` each warning as it arises (they are also in the summary).
    """
    options = options or SendOptions()
    started = time.monotonic()
    _sendable(db, issue_id)
    target = relay_from_settings(settings)
    signer = signer_from_settings(settings)  # None unless DKIM is configured
    # On SQLite the lock covers the whole send (one sender per database); on PostgreSQL only
    # the setting up: later senders wait for it, then share the rows (``store.senders``).
    shared = db.engine == "postgresql"
    with send_lock(db):
        # Read again under the lock: a send that ran meanwhile may have started this issue,
        # and its stored copies must not be rendered anew under it.
        issue = _sendable(db, issue_id)
        if issue.status == "draft" and issue.kind == "digest" and issue.articles:
            # Render the digest once more as its send starts: the campaign's progress as of
            # now, and the "view in browser" link from the settings the send runs with.
            render_and_store(db, settings, issue.id)
        factory = issue_messages(db, settings, issue)
        summary = SendSummary(issue_id, {}, [], [])
        apply_spool_before_send(db)  # unsubscribes the web service kept while the db was busy
        if issue.status == "draft":
            _fix_ledger(db, settings, issue_id, factory.config, target, options, summary, notice)
        _settle_doubts(db, issue_id, options, summary)
        pending = ledger.state_counts(db, issue_id)[DeliveryState.PENDING]
        if pending:
            if summary.fixed is None:
                check_relay(target, settings.smtp_timeout)
            if on_start is not None:
                on_start(pending)
        deliver = partial(
            _send_and_finish, db, settings, issue_id, target, factory, signer, options, summary
        )
        if not shared:
            deliver(progress)
    if shared:
        deliver(progress)
    summary.seconds = time.monotonic() - started
    return summary


def _send_and_finish(
    db: Database,
    settings: Settings,
    issue_id: str,
    target: SmtpTarget,
    factory: MessageFactory,
    signer: DkimSigner | None,
    options: SendOptions,
    summary: SendSummary,
    progress: Callable[[int], None] | None = None,
) -> None:
    if ledger.state_counts(db, issue_id)[DeliveryState.PENDING]:
        sign = signer.sign if signer is not None else None
        _deliver(db, settings, issue_id, target, factory, sign, options, summary, progress)
    finish_summary(db, issue_id, summary)


def _sendable(db: Database, issue_id: str) -> Issue:
    """The issue, unless it is a draft digest that a build (which always sets the window) left
    with no stories: `build --force` may keep an empty draft, and an editor may drop every
    story; mailing every reader an empty digest is never what the editor meant."""
    issue = require_issue(db, issue_id)
    if (
        issue.status == "draft"
        and issue.kind == "digest"
        and issue.window_start is not None
        and not issue.articles
    ):
        raise IssueError(
            f"Issue {issue_id} has no articles, so it is not sent",
            f"Restore stories into it (see dispatch issue show {issue_id}), or run "
            "dispatch build when there is news.",
        )
    return issue


def _fix_ledger(
    db: Database,
    settings: Settings,
    issue_id: str,
    config: MessageConfig,
    target: SmtpTarget,
    options: SendOptions,
    summary: SendSummary,
    notice: Callable[[str], None] | None,
) -> None:
    """A draft's first send: one ledger row per active reader, each with their persona."""
    active = subscriber_store.status_counts(db)["active"]
    if not active:
        raise IssueError(
            f"Issue {issue_id} has nobody to go to: there are no active subscribers",
            "Import some first: dispatch subscribers import subscribers.csv",
        )
    warning = _one_click_check(config, active, options.without_one_click)
    if warning:
        summary.warnings.append(warning)
        if notice is not None:
            notice(warning)
    check_relay(target, settings.smtp_timeout)  # fail before fixing anything
    now = datetime.now(UTC)
    personas = donations.donor_personas(
        db, now, settings.donor_recent_days, settings.donor_lapsed_days
    )
    summary.fixed = ledger.fix_deliveries(db, issue_id, personas, Persona.NON_DONOR.value)


def _settle_doubts(db: Database, issue_id: str, options: SendOptions, summary: SendSummary) -> None:
    """Rows a stopped run left going out become uncertain (on PostgreSQL also those of senders
    found dead, wherever they ran); then the editor's choices apply."""
    summary.newly_uncertain = journal.recover(db) + ledger.mark_uncertain(db, issue_id)
    if db.engine == "postgresql":
        summary.newly_uncertain += senders.take_over(db, issue_id)
    if options.resend_uncertain and options.skip_uncertain:
        raise InputError("Choose one of --resend-uncertain and --skip-uncertain")
    if options.resend_uncertain or options.skip_uncertain:
        ledger.resolve_uncertain(db, issue_id, resend=options.resend_uncertain)
    if options.retry_failed:
        ledger.retry_failed(db, issue_id)


def _deliver(
    db: Database,
    settings: Settings,
    issue_id: str,
    target: SmtpTarget,
    factory: MessageFactory,
    sign: Callable[[bytes], bytes] | None,
    options: SendOptions,
    summary: SendSummary,
    progress: Callable[[int], None] | None,
) -> None:
    """Run the engine over the pending rows; what it did goes into the summary even when it
    stops with an error, and the pace it learnt into the ledger for the next send."""
    relay = f"{target.host}:{target.port}"
    shared = db.engine == "postgresql"
    learnt = ledger.relay_rate(db, relay)
    if shared:  # senders of one relay share its quota: each starts at its part of it
        # (what the senders already running found, if this relay had nothing learnt: a sender
        # joining them unpaced would only collect throttles)
        found = senders.relay_total(db, issue_id, relay, settings.send_lease)
        learnt = max(learnt, found) / (senders.relay_share(db, relay) + 1)
    pool, policy = pool_from_settings(
        settings,
        target,
        options.retry,
        concurrency=options.concurrency,
        rate=options.rate,
        rate_per_connection=options.rate_per_connection,
        learnt=learnt,
        adaptive=options.adaptive,
    )
    issue_ledger = (
        SharedIssueLedger(db, issue_id, relay, settings.send_lease, lambda: pool.adaptive.learnt)
        if shared
        else IssueLedger(db, issue_id)
    )
    run = DeliveryRun(
        issue_ledger,
        pool,
        sender=envelope_address(factory.config.from_address),
        policy=policy,
        compose=row_composer(factory, sign),
        envelope=envelope_address,
        progress=progress,
        breaker=options.bounce_breaker,
    )
    try:
        stats = run.run()
    finally:
        summary.throttled = run.stats.throttled
        summary.final_rate = pool.rate
        summary.bounced = run.stats.bounced
        summary.bounced_now = run.stats.bounced_count
        summary.learnt_rate = pool.adaptive.learnt
        if isinstance(issue_ledger, SharedIssueLedger):
            summary.newly_uncertain += issue_ledger.taken_over
            if summary.learnt_rate > 0:  # what the senders found together
                summary.learnt_rate = max(
                    summary.learnt_rate,
                    senders.relay_total(db, issue_id, relay, settings.send_lease),
                )
        if summary.learnt_rate > 0:  # next week's send starts near it
            ledger.save_relay_rate(db, relay, summary.learnt_rate)
    summary.sent_now, summary.failed_now = stats.sent, stats.failed
    summary.uncertain_now = stats.uncertain
