"""`bounces process`: read a bounce mailbox, match each DSN to (issue, subscriber), record it.

Matching: the bounced message's ``Message-ID`` (``<{issue}.{delivery id}.{hmac}@{domain}>``)
names the ledger row; a test copy's id, a foreign id or no id at all falls back to the failed
address: its subscriber and the most recent delivery to them. A hard bounce suppresses the
subscriber (status ``bounced``); soft ones are counted, and DISPATCH_SOFT_BOUNCE_LIMIT of them
on consecutive issues suppress too. Not a bounce: left alone, counted as ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dispatch.bounces import (
    HARD,
    Bounce,
    Failure,
    Source,
    classify,
    open_source,
    parse_dispatch_message_id,
    unsubscribe_token,
)
from dispatch.config import Settings
from dispatch.errors import InputError
from dispatch.jobs.web import UNSUBSCRIBABLE
from dispatch.store import Database
from dispatch.store import bounces as bounce_store
from dispatch.store import web as web_store

_ATOM_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # as render.message writes ids


@dataclass
class BounceSummary:
    messages: int = 0
    hard: int = 0
    soft: int = 0
    ignored: int = 0  # not a bounce (auto-replies, people writing back)
    unsubscribed: int = 0  # List-Unsubscribe mailto requests that unsubscribed someone
    unmatched: int = 0  # a bounce for no known subscriber
    suppressed: int = 0  # subscribers moved to 'bounced' by this run
    already: int = 0  # recorded by an earlier run
    unreadable: int = 0  # could not be parsed; left in place
    set_aside: int = 0
    by_issue: dict[str, dict[str, int]] = field(default_factory=dict)
    details: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "messages": self.messages, "hard": self.hard, "soft": self.soft,
            "ignored": self.ignored, "unmatched": self.unmatched,
            "unsubscribed": self.unsubscribed,
            "suppressed": self.suppressed, "already_processed": self.already,
            "unreadable": self.unreadable, "set_aside": self.set_aside,
            "by_issue": self.by_issue, "bounces": self.details,
        }


def _match(db: Database, bounce: Bounce, failure: Failure) -> bounce_store.DeliveryRef | None:
    mid = parse_dispatch_message_id(bounce.original_message_id)
    if mid is not None and mid.delivery_id is not None:
        ref = bounce_store.delivery(db, mid.delivery_id)
        if ref is not None and _ATOM_UNSAFE.sub("-", ref.issue_id) == mid.issue:
            return ref
    ref = bounce_store.latest_delivery_to(db, failure.address)
    if ref is not None:
        return ref
    subscriber_id = bounce_store.subscriber_id_for(db, failure.address)
    if subscriber_id is not None:  # a subscriber never mailed by a send (e.g. a test copy)
        return bounce_store.DeliveryRef(None, "", subscriber_id, failure.address)
    return None


def process_source(
    db: Database,
    source: Source,
    *,
    soft_limit: int,
    dry_run: bool = False,
    keep: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BounceSummary:
    """Process every message of ``source``; commits bounce by bounce (rerun-safe)."""
    summary = BounceSummary()
    would_suppress: set[int] = set()  # dry run: each subscriber counted once
    for handle, raw in source.messages():
        summary.messages += 1
        if progress:
            progress(summary.messages)
        try:
            token = unsubscribe_token(raw)
            bounce = None if token else classify(raw)
        except InputError:
            summary.unreadable += 1
            continue
        if token:  # a reader's one-click mailto: same effect as POST /u/<token>
            if not dry_run:
                _, changed = web_store.change_status_by_token(
                    db, token, "unsubscribed", UNSUBSCRIBABLE
                )
                summary.unsubscribed += changed
                if not keep and source.can_set_aside:
                    source.set_aside(handle)
                    summary.set_aside += 1
            continue
        if bounce is None:
            summary.ignored += 1
            continue
        for n, failure in enumerate(bounce.failures):
            key = bounce.message_key if n == 0 else f"{bounce.message_key} {failure.address}"
            ref = _match(db, bounce, failure)
            if ref is None:
                summary.unmatched += 1
                summary.details.append({"address": failure.address, "kind": failure.kind,
                                        "issue": "", "status": failure.status,
                                        "result": "unmatched"})
                continue
            if dry_run:  # what a real run would do (soft limits aside: those need the writes)
                recorded = not bounce_store.is_recorded(db, key)
                suppressed = (recorded and failure.kind == HARD and ref.subscriber_id is not None
                              and bounce_store.is_active(db, ref.subscriber_id)
                              and ref.subscriber_id not in would_suppress)
                if suppressed and ref.subscriber_id is not None:
                    would_suppress.add(ref.subscriber_id)
            else:
                recorded, suppressed = bounce_store.record_bounce(
                    db, message_key=key, kind=failure.kind, ref=ref,
                    diagnostic=failure.diagnostic, soft_limit=soft_limit,
                )
            if not recorded:
                summary.already += 1
                continue
            setattr(summary, failure.kind, getattr(summary, failure.kind) + 1)
            summary.suppressed += suppressed
            if ref.issue_id:
                per = summary.by_issue.setdefault(ref.issue_id, {"hard": 0, "soft": 0})
                per[failure.kind] += 1
            summary.details.append({
                "address": failure.address, "kind": failure.kind, "issue": ref.issue_id,
                "status": failure.status,
                "result": "suppressed" if suppressed else "recorded",
            })
        if not dry_run and not keep and source.can_set_aside:
            source.set_aside(handle)
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
    with open_source(maildir=maildir, mbox=mbox, imap=imap,
                     timeout=settings.smtp_timeout) as source:
        summary = process_source(db, source, soft_limit=settings.soft_bounce_limit,
                                 dry_run=dry_run, keep=keep, progress=progress)
        return source.label, summary
