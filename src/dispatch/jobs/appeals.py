"""Thank-you emails and standalone appeals, sent through the same engine and ledger as issues.

- ``thank_donors``: one thank-you per paid gift (not refunded in full), naming the issue whose
  link it came through. Each is an issue of kind 'thanks' with one ledger row, fixed together
  with the gift's ``donation_thanks`` row before anything is sent, so a rerun resumes and no
  gift is thanked twice, whatever happens (a crash mid-message leaves it 'uncertain').
- ``send_appeal``: an issue of kind 'appeal' to a segment (all, never-donated, lapsed,
  recent), rendered once per persona (donor-aware, with campaign progress), then sent and
  resumed exactly like a digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from dispatch.config import Settings
from dispatch.errors import InputError, IssueError
from dispatch.jobs.giving import manage_link
from dispatch.jobs.send import SendOptions, send_issue
from dispatch.jobs.status import SendSummary
from dispatch.mailer import check_relay, relay_from_settings
from dispatch.models import DeliveryState, IssueKind, IssueStatus, Persona, RenderedVariant
from dispatch.money import format_money
from dispatch.render.i18n import day_date
from dispatch.render.settings import renderer_from
from dispatch.render.templates import Links, Renderer, variant_name
from dispatch.store import Database, Row, supporters, to_db_time
from dispatch.store import campaigns as campaign_store
from dispatch.store import donations as donation_store
from dispatch.store import issues as issue_store
from dispatch.store import thanks as thanks_store

THANKS_VARIANT = "thanks"
SEGMENTS = campaign_store.SEGMENTS


# -- thank-you emails --------------------------------------------------------------------


class WouldThank(TypedDict):
    """A thank-you a dry run would send: the gift, its issue, and the reader (None: nobody)."""

    donation: int
    issue: str | None
    amount_minor: int
    currency: str
    subscriber_id: int | None


@dataclass
class ThanksResult:
    fixed: int = 0  # thank-yous fixed by this run
    skipped: int = 0  # gifts with nobody to thank (payer not an active subscriber)
    sent: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (donation id, reply)
    uncertain: list[int] = field(default_factory=list)  # donation ids in doubt
    dry_run: list[WouldThank] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "fixed": self.fixed,
            "skipped": self.skipped,
            "sent": self.sent,
            "failed": [{"donation": d, "reply": r} for d, r in self.failed],
            "uncertain": self.uncertain,
            "would_thank": self.dry_run,
        }


def _thanks_subject(renderer: Renderer, settings: Settings, lang: str | None) -> str:
    return renderer.gettext("Thank you for supporting %(name)s", lang) % {
        "name": settings.outlet_name
    }


def _render_thanks(
    renderer: Renderer,
    settings: Settings,
    issue_id: str,
    row: Row,
    now: datetime,
    db: Database,
    lang: str | None = None,
) -> RenderedVariant:
    """The thank-you in the reader's language (one of DISPATCH_LANGUAGES, else the default)."""
    lang = renderer.language_for(lang)
    prompted = None
    if row["issue_id"]:
        prompted = {"id": row["issue_id"], "subject": row["issue_subject"] or row["issue_id"]}
    subject = _thanks_subject(renderer, settings, lang)
    manage_url = None  # the signed "manage your monthly gift" link (issue 11)
    if row["checkout_mode"] == "subscription" and settings.public_url and settings.secret_key:
        sub_id = supporters.subscription_of_donation(db, row["id"])
        manage_url = manage_link(settings, sub_id) if sub_id else None
    amount = format_money(row["amount_minor"], row["currency"], locale=lang, whole=True)
    preheader = renderer.gettext("Your gift of %(amount)s makes our reporting possible.", lang)
    html, text = renderer.render_email(
        "thanks",
        {
            "subject": subject,
            "preheader": preheader % {"amount": amount},
            "greeting": "%%DISPATCH_GREETING%%",
            "links": Links(),  # no "view in your browser": a thank-you is personal, not archived
            "amount": amount,
            "monthly": row["checkout_mode"] == "subscription",
            "prompted_by": prompted,
            "manage_url": manage_url,
            "campaign": donation_store.active_campaign_progress(db, now),
        },
        lang,
    )
    return RenderedVariant(THANKS_VARIANT, subject, html, text)


def thank_donors(
    db: Database,
    settings: Settings,
    *,
    max_age_days: int = 14,
    dry_run: bool = False,
    options: SendOptions | None = None,
    now: datetime | None = None,
) -> ThanksResult:
    """Thank every paid gift of the last ``max_age_days`` not thanked yet, then send (or
    resume) every thank-you that is fixed but not finished."""
    now = now or datetime.now(UTC)
    since = to_db_time(now - timedelta(days=max_age_days)) or ""
    result = ThanksResult()
    renderer = renderer_from(settings)
    for row in thanks_store.candidates(db, since):
        who = thanks_store.recipient_for(db, row["id"])
        if dry_run:
            result.dry_run.append(
                {
                    "donation": row["id"],
                    "issue": row["issue_id"],
                    "amount_minor": row["amount_minor"],
                    "currency": row["currency"],
                    "subscriber_id": who["id"] if who else None,
                }
            )
            continue
        issue_id = f"thanks-{row['id']}"
        if who is not None:
            lang = who["language"]
            if not issue_store.issue_exists(db, issue_id):
                issue_store.create_issue(
                    db,
                    issue_id,
                    kind=IssueKind.THANKS,
                    subject=_thanks_subject(renderer, settings, lang),
                )
            issue_store.save_variants(
                db, issue_id, [_render_thanks(renderer, settings, issue_id, row, now, db, lang)]
            )
        if thanks_store.fix_thanks(
            db,
            row["id"],
            issue_id if who else None,
            who["id"] if who else None,
            who["email"] if who else None,
            THANKS_VARIANT,
        ):
            result.fixed += 1
            if who is None:
                result.skipped += 1
    if dry_run:
        return result
    for open_row in thanks_store.open_thanks(db):
        summary = send_issue(db, settings, open_row["issue_id"], options)
        state = thanks_store.mirror_state(db, open_row["donation_id"])
        if state == DeliveryState.SENT:
            result.sent += summary.sent_now
        elif state == DeliveryState.FAILED:
            result.failed.append(
                (open_row["donation_id"], summary.failed[0][1] if summary.failed else "")
            )
        elif state == DeliveryState.UNCERTAIN:
            result.uncertain.append(open_row["donation_id"])
    return result


# -- standalone appeals --------------------------------------------------------------------


@dataclass
class AppealResult:
    issue_id: str
    fixed: int | None
    summary: SendSummary | None


def _paragraphs(message: str) -> list[str]:
    return [p.strip() for p in message.replace("\r\n", "\n").split("\n\n") if p.strip()]


def _appeal_subject(renderer: Renderer, settings: Settings, lang: str | None = None) -> str:
    return renderer.gettext("Will you support %(name)s?", lang) % {"name": settings.outlet_name}


def render_appeal(
    db: Database,
    settings: Settings,
    issue_id: str,
    subject: str,
    message: str,
    preheader: str,
    now: datetime,
) -> list[RenderedVariant]:
    """One variant per persona and language (DISPATCH_LANGUAGES); the editor's message, subject
    and preheader stay as written, the default subject and preheader are translated."""
    renderer = renderer_from(settings)
    default_subject = subject == _appeal_subject(renderer, settings)
    context = {
        "greeting": "%%DISPATCH_GREETING%%",
        "links": Links(),  # the archive shows digests only: no "view in your browser" link
        "message_paragraphs": _paragraphs(message),
        "campaign": donation_store.active_campaign_progress(db, now),
    }
    variants = []
    for lang in renderer.languages:
        own_subject = _appeal_subject(renderer, settings, lang) if default_subject else subject
        context.update(
            {
                "subject": own_subject,
                "preheader": renderer.gettext(preheader, lang),
                "dateline": day_date(now, lang),
            }
        )
        for persona in Persona:
            html, text = renderer.render_email(
                "appeal", {**context, "persona": persona.value}, lang
            )
            name = variant_name(persona.value, lang, settings.language)
            variants.append(RenderedVariant(name, own_subject, html, text))
    return variants


def send_appeal(
    db: Database,
    settings: Settings,
    *,
    segment: str,
    subject: str | None = None,
    message: str = "",
    issue_id: str | None = None,
    options: SendOptions | None = None,
    now: datetime | None = None,
) -> AppealResult:
    """Create (or resume) an appeal issue for a segment and send it. Rerunning with the same
    ``issue_id`` resumes the send; the segment is fixed when the ledger is."""
    now = now or datetime.now(UTC)
    if segment not in campaign_store.SEGMENTS:
        raise InputError(
            f"Unknown segment {segment!r}", f"Use one of: {', '.join(campaign_store.SEGMENTS)}."
        )
    issue_id = issue_id or f"appeal-{now:%Y-%m-%d}-{segment}"
    existing = issue_store.get_issue(db, issue_id)
    if existing is not None and existing.kind != IssueKind.APPEAL:
        raise IssueError(
            f"{issue_id} is a {existing.kind}, not an appeal", "Choose another --id for the appeal."
        )
    subject = subject or (
        existing.subject if existing else _appeal_subject(renderer_from(settings), settings)
    )
    fixed = None
    if existing is None or existing.status == IssueStatus.DRAFT:
        preheader = settings.appeal_headline
        if existing is None:
            issue_store.create_issue(
                db,
                issue_id,
                kind=IssueKind.APPEAL,
                subject=subject,
                preheader=preheader,
                note=message,
            )
        issue_store.save_variants(
            db, issue_id, render_appeal(db, settings, issue_id, subject, message, preheader, now)
        )
        personas = donation_store.donor_personas(
            db, now, settings.donor_recent_days, settings.donor_lapsed_days
        )
        donors = set(campaign_store.last_gift_by_subscriber(db))
        check_relay(relay_from_settings(settings), settings.smtp_timeout)  # before fixing anything
        fixed = campaign_store.fix_appeal_deliveries(
            db, issue_id, segment, personas, Persona.NON_DONOR.value, donors
        )
        if fixed == 0:
            raise IssueError(
                f"Nobody is in the segment {segment!r}: no appeal was sent",
                "Choose another --segment; the draft appeal is kept and can be sent later.",
            )
    summary = send_issue(db, settings, issue_id, options)
    return AppealResult(issue_id, fixed, summary)
