"""What a send left in an issue's ledger: the summary ``dispatch send`` and ``dispatch status``
print (counts, failures and uncertain rows by address, whether a send is running now)."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice

from dispatch.models import DeliveryState, IssueStatus
from dispatch.store import Database, journal, ledger, senders
from dispatch.store import issues as issue_store
from dispatch.store.issues import require_issue
from dispatch.store.sendlock import send_running


@dataclass
class SendSummary:
    issue_id: str
    counts: dict[str, int]
    failed: list[tuple[str, str]]
    uncertain: list[tuple[str, str]]
    sent_now: int = 0
    failed_now: int = 0
    fixed: int | None = None  # rows fixed by this run (None: the ledger existed already)
    newly_uncertain: int = 0  # rows a previous run left in flight, marked uncertain now
    uncertain_now: int = 0  # sent by this run, but the relay's reply was lost
    throttled: int = 0  # throttling replies this run got (each slowed it down)
    final_rate: float = 0.0  # the rate limit in force at the end (0 = none)
    learnt_rate: float = 0.0  # the relay's quota as this send found it (0 = none found)
    bounced: list[tuple[str, str]] = field(default_factory=list)  # hard bounces of this run
    bounced_now: int = 0
    bounced_total: int = 0  # failed rows of the issue whose reader is bounced (any run)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    issue_status: str = IssueStatus.SENDING
    running: bool = False  # (status only) a send of this database is running now
    #: (PostgreSQL) each sender that took part: (host, pid, state, messages it sent)
    senders: list[tuple[str, int, str, int]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.issue_status == IssueStatus.SENT

    def as_json(self) -> dict[str, object]:
        return {
            "issue": self.issue_id,
            "status": self.issue_status,
            "counts": self.counts,
            "sent_now": self.sent_now,
            "failed_now": self.failed_now,
            "uncertain_now": self.uncertain_now,
            "throttled": self.throttled,
            "bounced_now": [e for e, _ in self.bounced],
            "bounced": self.bounced_total,
            "failed": [e for e, _ in self.failed],
            "replies": {e: r for e, r in self.failed if e},
            "uncertain": [e for e, _ in self.uncertain],
            "seconds": round(self.seconds, 2),
            "rate": round(self.learnt_rate, 2),
            "warnings": self.warnings,
            "senders": [
                {"host": host, "pid": pid, "state": state, "sent": sent}
                for host, pid, state, sent in self.senders
            ],
        }


#: Failed and uncertain rows a summary carries (the counts are always complete): a list of
#: a million failures must not cost a million rows of memory.
SUMMARY_ROWS = 10_000


def _list_open_cases(db: Database, issue_id: str, summary: SendSummary) -> None:
    """The bounced count and the first failed (not bounced) and uncertain rows of the ledger."""
    summary.bounced_total = ledger.count_bounced(db, issue_id)
    if db.engine == "postgresql":
        summary.senders = senders.shares(db, issue_id)
    summary.failed = list(
        islice(
            ledger.rows_in_state(db, issue_id, DeliveryState.FAILED, bounced=False), SUMMARY_ROWS
        )
    )
    summary.uncertain = list(
        islice(ledger.rows_in_state(db, issue_id, DeliveryState.UNCERTAIN), SUMMARY_ROWS)
    )


def finish_summary(db: Database, issue_id: str, summary: SendSummary) -> None:
    """Mark the issue sent when nothing is left open, and fill in the ledger's counts."""
    if ledger.open_rows(db, issue_id) == 0:
        issue_store.set_issue_status(db, issue_id, IssueStatus.SENT)
    summary.counts = ledger.state_counts(db, issue_id)
    # Hard bounces are dealt with (bounced, never mailed again): the run that meets them
    # names them (``bounced``), later ones only count them, and they are no failure to fix.
    _list_open_cases(db, issue_id, summary)
    issue = issue_store.get_issue(db, issue_id)
    summary.issue_status = issue.status if issue else IssueStatus.SENDING


def issue_status(db: Database, issue_id: str) -> SendSummary:
    """The ledger of an issue, as ``dispatch status`` shows it."""
    issue = require_issue(db, issue_id)
    summary = SendSummary(issue_id, ledger.state_counts(db, issue_id), [], [])
    _list_open_cases(db, issue_id, summary)
    summary.issue_status = issue.status
    summary.running = send_running(db)
    if not summary.running:  # rows a killed send left going out (in its journal, not here)
        stopped = ledger.count_in_issue(db, issue_id, journal.in_flight(db), DeliveryState.PENDING)
        summary.counts[DeliveryState.PENDING] -= stopped
        summary.counts[DeliveryState.SENDING] += stopped
    return summary
