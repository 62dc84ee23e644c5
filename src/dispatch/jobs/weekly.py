"""`dispatch weekly`: the one command cron runs, safe to run any number of times.

In order: resume an issue whose send was interrupted; else do nothing if a digest already went
out this ISO week; else send the editor's latest unsent draft, as the editor left it (built or
edited in any week: rebuilding it would bring back the stories the editor dropped); else build
this week's issue and, if there was anything new, send it. Older drafts are named, not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dispatch.config import Settings
from dispatch.jobs.build import build_issue
from dispatch.jobs.send import SendOptions, send_issue
from dispatch.jobs.status import SendSummary
from dispatch.models import DeliveryState, IssueKind, IssueStatus
from dispatch.store import Database, ledger
from dispatch.store import issues as issue_store


@dataclass
class WeeklyResult:
    action: str  # "resumed" | "already_sent" | "nothing_new" | "sent"
    issue_id: str | None = None
    messages: list[str] = field(default_factory=list)
    summary: SendSummary | None = None
    from_draft: bool = False  # "sent" an unsent draft the editor had prepared, not a new build

    def as_json(self) -> dict[str, object]:
        return {
            "action": self.action,
            "issue": self.issue_id,
            "messages": self.messages,
            "send": self.summary.as_json() if self.summary else None,
            "from_draft": self.from_draft,
        }


def _same_week(a: datetime, b: datetime) -> bool:
    return a.astimezone(UTC).isocalendar()[:2] == b.astimezone(UTC).isocalendar()[:2]


def run_weekly(
    db: Database,
    settings: Settings,
    *,
    now: datetime | None = None,
    options: SendOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> WeeklyResult:
    now = now or datetime.now(UTC)
    notes: list[str] = []
    interrupted = []
    digests = issue_store.list_issues(db, kind=IssueKind.DIGEST)
    for stuck in (i for i in digests if i.status == IssueStatus.SENDING):
        counts = ledger.state_counts(db, stuck.id)
        if counts.get(DeliveryState.PENDING, 0) or counts.get(DeliveryState.SENDING, 0):
            interrupted.append(stuck)
        elif counts.get(DeliveryState.UNCERTAIN, 0):
            # Only the editor can decide these; they must not hold up every later week.
            notes.append(
                f"Warning: {stuck.id} still has {counts['uncertain']} uncertain copies from an "
                f"interrupted send; decide with `dispatch send {stuck.id} --skip-uncertain` or "
                "`--resend-uncertain`."
            )
    if interrupted:
        issue = interrupted[0]
        summary = send_issue(db, settings, issue.id, options, progress=progress)
        return WeeklyResult(
            "resumed",
            issue.id,
            [*notes, f"Resumed the interrupted send of {issue.id}: {summary.sent_now} sent now."],
            summary,
        )
    last = issue_store.last_sent_issue(db)
    drafts = [d for d in issue_store.unsent_drafts(db) if d.articles]
    # An issue still sending (uncertain rows after a crash) has no sent_at: its week is the one
    # its send began in, not the one its draft was built in.
    if last is not None and _same_week(
        last.sent_at or last.send_started_at or last.created_at, now
    ):
        if drafts:
            notes.append(
                f"The draft {drafts[0].id} waits: the next weekly run in another week sends it "
                f"as it stands, unless you discard it (dispatch issue delete {drafts[0].id} --yes)."
            )
        return WeeklyResult(
            "already_sent",
            last.id,
            [*notes, f"This week's digest ({last.id}) has gone out already; nothing to do."],
        )
    if drafts:
        draft, older = drafts[0], drafts[1:]
        if older:
            notes.append(
                f"Note: older unsent drafts remain ({', '.join(d.id for d in older)}); "
                "discard each with `dispatch issue delete ISSUE --yes`."
            )
        notes.append(
            f"Sending the editor's draft {draft.id} as it stands ({len(draft.articles)} articles, "
            f"built {draft.created_at:%Y-%m-%d %H:%M} UTC): {draft.subject}"
        )
        summary = send_issue(db, settings, draft.id, options, progress=progress)
        notes.append(
            f"Sent {summary.sent_now}, failed {summary.failed_now}, in {summary.seconds:.1f} s."
        )
        return WeeklyResult("sent", draft.id, notes, summary, from_draft=True)
    built = build_issue(db, settings, now=now)
    messages = [*notes, *(f"Warning: {w}" for w in built.warnings)]
    if built.issue is None:
        messages.append(
            f"Nothing new since {built.since:%Y-%m-%d %H:%M} UTC ({built.found} articles found, "
            f"{built.already_sent} already sent); no issue this week."
        )
        return WeeklyResult("nothing_new", None, messages)
    issue = built.issue
    messages.append(f"Built {issue.id} with {len(issue.articles)} articles: {issue.subject}")
    summary = send_issue(db, settings, issue.id, options, progress=progress)
    messages.append(
        f"Sent {summary.sent_now}, failed {summary.failed_now}, in {summary.seconds:.1f} s."
    )
    return WeeklyResult("sent", issue.id, messages, summary)
