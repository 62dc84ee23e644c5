"""`bounces process`: read a bounce mailbox, match each DSN or complaint to (issue, subscriber).

Matching: the bounced message's ``Message-ID`` (``<{issue}.{delivery id}.{hmac}@{domain}>``)
names the ledger row; a test copy's id, a foreign id or no id at all falls back to the failed
address: its subscriber and the most recent delivery to them. A hard bounce suppresses the
subscriber (status ``bounced``); soft ones are counted, and DISPATCH_SOFT_BOUNCE_LIMIT of them
on consecutive issues suppress too. A spam complaint (ARF ``Feedback-Type: abuse``, JMRP) marks
the reader ``complained``; it is matched by the unsubscribe token or the Message-ID (its HMAC
checked: a complaint is the one message that takes a reader off the list for good) in the
included original, else the address the report names. Not a bounce: left alone, counted as
ignored. A message that cannot be read is moved to the ``unreadable`` folder and listed; the
run goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from dispatch.bounces import (
    Bounce,
    Source,
    open_source,
    parse_dispatch_message_id,
)
from dispatch.bounces.arf import Complaint, read_complaint
from dispatch.bounces.mailboxes import UNREADABLE_FOLDER
from dispatch.bounces.parse import classify_message, read_message, unsubscribe_token_of
from dispatch.config import Settings
from dispatch.errors import DispatchError
from dispatch.store import Database, ledger, unsubscribes
from dispatch.store import bounces as bounce_store
from dispatch.store.bounce_effects import DryRun, Recorder

_ATOM_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # as render.message writes ids


@dataclass
class BounceSummary:
    messages: int = 0
    hard: int = 0
    soft: int = 0
    complaints: int = 0  # spam complaints recorded
    complained: int = 0  # subscribers moved to 'complained' by this run
    ignored: int = 0  # not a bounce (auto-replies, people writing back)
    unsubscribed: int = 0  # List-Unsubscribe mailto requests that unsubscribed someone
    unmatched: int = 0  # a bounce or complaint for no known subscriber
    suppressed: int = 0  # subscribers moved to 'bounced' by this run
    already: int = 0  # recorded by an earlier run (or earlier in this one)
    unreadable: int = 0  # could not be read; moved to the unreadable folder
    unreadable_folder: str = ""
    set_aside: int = 0
    by_issue: dict[str, dict[str, int]] = field(default_factory=dict)
    details: list[dict[str, str]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)  # {message, reason, moved}

    def as_dict(self) -> dict[str, object]:
        return {
            "messages": self.messages,
            "hard": self.hard,
            "soft": self.soft,
            "complaints": self.complaints,
            "complained": self.complained,
            "ignored": self.ignored,
            "unmatched": self.unmatched,
            "unsubscribed": self.unsubscribed,
            "suppressed": self.suppressed,
            "already_processed": self.already,
            "unreadable": self.unreadable,
            "unreadable_folder": self.unreadable_folder,
            "unreadable_messages": self.problems,
            "set_aside": self.set_aside,
            "by_issue": self.by_issue,
            "bounces": self.details,
        }

    def _count(self, issue: str, kind: str) -> None:
        if issue:
            per = self.by_issue.setdefault(issue, {"hard": 0, "soft": 0})
            per[kind] = per.get(kind, 0) + 1


@dataclass(frozen=True)
class _Unsubscribe:
    token: str


Reading = _Unsubscribe | Complaint | Bounce | None


def read_one(raw: bytes) -> Reading:
    """What one mailbox message is: an emailed unsubscribe, a complaint, a bounce or None.

    Raises for a message that cannot be read (InputError, or whatever the parsers trip on)."""
    msg: Message = read_message(raw)
    token = unsubscribe_token_of(msg)
    if token:
        return _Unsubscribe(token)
    complaint = read_complaint(msg, raw)
    if complaint is not None:
        return complaint
    return classify_message(msg, raw)


def _reason(exc: Exception) -> str:
    if isinstance(exc, DispatchError):
        return exc.message
    return f"Dispatch could not read it ({type(exc).__name__}: {exc})"[:300]


def _match(db: Database, original_id: str | None, address: str) -> bounce_store.DeliveryRef | None:
    mid = parse_dispatch_message_id(original_id)
    if mid is not None and mid.delivery_id is not None:
        ref = bounce_store.delivery(db, mid.delivery_id)
        if ref is not None and _ATOM_UNSAFE.sub("-", ref.issue_id) == mid.issue:
            return ref
    return _match_address(db, address)


def _match_address(db: Database, address: str) -> bounce_store.DeliveryRef | None:
    ref = bounce_store.latest_delivery_to(db, address)
    if ref is not None:
        return ref
    subscriber_id = bounce_store.subscriber_id_for(db, address)
    if subscriber_id is not None:  # a subscriber never mailed by a send (e.g. a test copy)
        return bounce_store.DeliveryRef(None, "", subscriber_id, address)
    return None


def _match_complaint(
    db: Database, complaint: Complaint, secret: Callable[[], bytes]
) -> bounce_store.DeliveryRef | None:
    """The reader a complaint is about: unsubscribe token, then signed Message-ID, then the
    address the report names (providers often redact it) if Dispatch has mailed it."""
    mid = parse_dispatch_message_id(complaint.original_message_id)
    signed = None
    if mid is not None and mid.delivery_id is not None:
        ref = bounce_store.delivery(db, mid.delivery_id)
        if (
            ref is not None
            and _ATOM_UNSAFE.sub("-", ref.issue_id) == mid.issue
            and mid.is_signed_for(secret(), ref.issue_id)
        ):
            signed = ref
    for token in complaint.tokens:
        subscriber = unsubscribes.subscriber_by_unsub_token(db, token)
        if subscriber is not None:
            if signed is not None and signed.subscriber_id == subscriber.id:
                return signed
            return _match_address(db, subscriber.email)
    if signed is not None:
        return signed
    # The address alone proves nothing (anyone can mail the bounce mailbox a report naming any
    # reader): it counts only for a reader Dispatch has mailed (a ledger row to that address).
    for address in complaint.recipients:
        ref = bounce_store.latest_delivery_to(db, address)
        if ref is not None:
            return ref
    return None


def _bounce(db: Database, effects: Recorder, bounce: Bounce, summary: BounceSummary) -> None:
    for n, failure in enumerate(bounce.failures):
        key = bounce.message_key if n == 0 else f"{bounce.message_key} {failure.address}"
        ref = _match(db, bounce.original_message_id, failure.address)
        if ref is None:
            summary.unmatched += 1
            summary.details.append(
                {
                    "address": failure.address,
                    "kind": failure.kind,
                    "issue": "",
                    "status": failure.status,
                    "result": "unmatched",
                }
            )
            continue
        recorded, suppressed = effects.bounce(key, failure.kind, ref, failure.diagnostic)
        if not recorded:
            summary.already += 1
            continue
        setattr(summary, failure.kind, getattr(summary, failure.kind) + 1)
        summary.suppressed += suppressed
        summary._count(ref.issue_id, failure.kind)
        summary.details.append(
            {
                "address": failure.address,
                "kind": failure.kind,
                "issue": ref.issue_id,
                "status": failure.status,
                "result": "suppressed" if suppressed else "recorded",
            }
        )


def _complaint(
    db: Database,
    effects: Recorder,
    complaint: Complaint,
    summary: BounceSummary,
    secret: Callable[[], bytes],
) -> None:
    ref = _match_complaint(db, complaint, secret)
    if ref is None:
        summary.unmatched += 1
        summary.details.append(
            {
                "address": ", ".join(complaint.recipients),
                "kind": "complaint",
                "issue": "",
                "status": complaint.feedback_type,
                "result": "unmatched",
            }
        )
        return
    recorded, complained = effects.complaint(
        complaint.message_key, ref, complaint.feedback_type, complaint.reporter
    )
    if not recorded:
        summary.already += 1
        return
    summary.complaints += 1
    summary.complained += complained
    summary._count(ref.issue_id, "complaints")
    summary.details.append(
        {
            "address": ref.email or "",
            "kind": "complaint",
            "issue": ref.issue_id,
            "status": complaint.feedback_type,
            "result": "complained" if complained else "recorded",
        }
    )


def process_source(
    db: Database,
    source: Source,
    *,
    soft_limit: int,
    dry_run: bool = False,
    keep: bool = False,
    progress: Callable[[int], None] | None = None,
    secret: Callable[[], bytes] | None = None,
) -> BounceSummary:
    """Process every message of ``source``; commits message by message (rerun-safe).

    ``secret`` gives the key Message-IDs are signed with (complaints trust only signed ids)."""
    summary = BounceSummary(unreadable_folder=source.where(UNREADABLE_FOLDER))
    effects = DryRun(db, soft_limit) if dry_run else Recorder(db, soft_limit)
    moves = not dry_run and not keep and source.can_set_aside
    key_of = secret or (lambda: b"")
    for handle, raw in source.messages():
        summary.messages += 1
        if progress:
            progress(summary.messages)
        try:  # reading touches nothing, so any failure here is this message's alone
            reading = read_one(raw)
        except Exception as exc:
            moved = not dry_run and not keep and source.set_aside(handle, UNREADABLE_FOLDER)
            summary.unreadable += 1
            summary.problems.append(
                {"message": handle, "reason": _reason(exc), "moved": "yes" if moved else "no"}
            )
            continue
        if reading is None or (isinstance(reading, Complaint) and not reading.is_abuse):
            summary.ignored += 1  # left where it is, for a person to read
            continue
        if isinstance(reading, _Unsubscribe):  # a reader's one-click mailto: as POST /u/<token>
            summary.unsubscribed += effects.unsubscribe(reading.token)
        elif isinstance(reading, Complaint):
            _complaint(db, effects, reading, summary, key_of)
        else:
            _bounce(db, effects, reading, summary)
        if moves and source.set_aside(handle):
            summary.set_aside += 1
    return summary


def process_bounces(
    db: Database,
    settings: Settings,
    *,
    maildir: Path | None = None,
    mbox: Path | None = None,
    imap: str | None = None,
    dry_run: bool = False,
    keep: bool = False,
    progress: Callable[[int], None] | None = None,
) -> tuple[str, BounceSummary]:
    """Read the mailbox named (or DISPATCH_BOUNCE_MAILBOX) and process it; (label, summary)."""
    if not (maildir or mbox or imap):
        configured = settings.bounce_mailbox.reveal()
        if configured.lower().startswith(("imap://", "imaps://")):
            imap = configured
        elif configured:
            path = Path(configured).expanduser()
            if path.is_dir():
                maildir = path
            else:
                mbox = path

    def secret() -> bytes:  # the key render.message signs Message-IDs with (as jobs.send)
        return settings.secret_key.reveal().encode() or ledger.secret_key(db)

    with open_source(
        maildir=maildir, mbox=mbox, imap=imap, timeout=settings.smtp_timeout
    ) as source:
        summary = process_source(
            db,
            source,
            soft_limit=settings.soft_bounce_limit,
            dry_run=dry_run,
            keep=keep,
            progress=progress,
            secret=secret,
        )
        return source.label, summary
