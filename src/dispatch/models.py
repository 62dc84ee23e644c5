"""Plain data passed between layers: frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypedDict

from dispatch.money import format_money  # noqa: F401 - its old home; dispatch.money is the new


class Persona(StrEnum):
    """The kinds of reader an issue is rendered for; each variant is inlined once."""

    NON_DONOR = "non_donor"
    RECENT_DONOR = "recent_donor"  # a recent one-time gift: thanked, invited to give monthly
    LAPSED_DONOR = "lapsed_donor"  # an old gift or a cancelled monthly one: asked to renew
    SUPPORTER = "supporter"  # a monthly gift running: thanked, never asked (issue 11)
    CARD_FAILING = "card_failing"  # a monthly gift past due: asked to update the card


class SubscriberStatus(StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    PENDING = "pending"


#: Statuses that no CSV import may overturn.
SUPPRESSED_STATUSES = frozenset(
    {SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED}
)


class StatusActor(StrEnum):
    """Who (or what) asks to change a subscriber's status."""

    READER = "reader"  # a link or mailto in an email, the unsubscribe page's buttons
    EDITOR = "editor"  # `dispatch subscribers unsubscribe`
    IMPORT = "import"  # a status column of an imported file (never makes anyone active)
    BOUNCE = "bounce"  # bounce processing (a hard bounce, or too many soft ones)
    COMPLAINT = "complaint"  # a spam complaint (feedback loop)
    CONFIRMATION = "confirmation"  # a used double opt-in link: the person proved the address


_ACT, _UNS, _BOU, _COM, _PEN = (
    SubscriberStatus.ACTIVE,
    SubscriberStatus.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED,
    SubscriberStatus.COMPLAINED,
    SubscriberStatus.PENDING,
)

#: THE table of subscriber status changes: actor -> {(from, to)} it may make. Every path that
#: changes a status goes through ``store.subscribers.change_status`` (or its in-transaction
#: form), which applies a change only when it is listed here. Bounced and complained never
#: return to active by a click; only a used confirmation link (double opt-in) brings anyone
#: back from unsubscribed, bounced or complained. New rows are not changes: an import adds
#: active (or the status its file says), a signup adds pending.
STATUS_CHANGES: dict[StatusActor, frozenset[tuple[SubscriberStatus, SubscriberStatus]]] = {
    StatusActor.READER: frozenset({(_ACT, _UNS), (_PEN, _UNS), (_UNS, _ACT)}),
    StatusActor.EDITOR: frozenset({(_ACT, _UNS), (_PEN, _UNS)}),
    StatusActor.IMPORT: frozenset(
        {(_ACT, _UNS), (_PEN, _UNS), (_ACT, _BOU), (_PEN, _BOU), (_ACT, _COM), (_PEN, _COM)}
    ),
    StatusActor.BOUNCE: frozenset({(_ACT, _BOU), (_PEN, _BOU)}),
    StatusActor.COMPLAINT: frozenset({(_ACT, _COM), (_PEN, _COM), (_UNS, _COM), (_BOU, _COM)}),
    StatusActor.CONFIRMATION: frozenset({(_PEN, _ACT), (_UNS, _ACT), (_BOU, _ACT), (_COM, _ACT)}),
}


def status_change_allowed(
    actor: StatusActor, old: SubscriberStatus | str, new: SubscriberStatus | str
) -> bool:
    """Whether ``actor`` may move a subscriber from ``old`` to ``new`` (the same is no change)."""
    return (SubscriberStatus(old), SubscriberStatus(new)) in STATUS_CHANGES[actor]


def statuses_from(actor: StatusActor, new: SubscriberStatus | str) -> tuple[str, ...]:
    """The statuses from which ``actor`` may move a subscriber to ``new`` (sorted values)."""
    target = SubscriberStatus(new)
    return tuple(sorted(old.value for old, to in STATUS_CHANGES[actor] if to == target))


class DeliveryState(StrEnum):
    """A ledger row's life: pending -> sending -> sent | failed; at a crash sending -> uncertain."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"


class IssueKind(StrEnum):
    """What an issue is: the weekly digest, a fundraising appeal, or one donor's thank-you."""

    DIGEST = "digest"
    APPEAL = "appeal"
    THANKS = "thanks"


class IssueStatus(StrEnum):
    """An issue's life: draft (editable) -> sending (its ledger exists) -> sent."""

    DRAFT = "draft"
    SENDING = "sending"
    SENT = "sent"


class DonationStatus(StrEnum):
    """A gift's payment as Stripe last told it: paid, still pending (a delayed method), failed."""

    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"


class ArticleFlags(TypedDict):
    """What the editor set on one article of a draft, carried over when the draft is rebuilt."""

    pinned: bool
    dropped: bool
    position: int


@dataclass(frozen=True)
class Article:
    """One cleaned article, ready to render.

    ``published`` is timezone-aware UTC, or None for an undated item (see articles/feeds.py for
    the rule). ``body_html`` is already sanitised; ``title`` is one line of plain text (escaped only
    where it is rendered).
    """

    title: str
    url: str
    guid: str
    published: datetime | None
    source: str
    excerpt: str = ""
    body_html: str = ""
    image_url: str | None = None
    image_alt: str = ""
    canonical_url: str = ""


@dataclass(frozen=True)
class Issue:
    id: str
    kind: IssueKind
    status: IssueStatus
    subject: str
    preheader: str
    note: str
    created_at: datetime
    window_start: datetime | None = None
    window_end: datetime | None = None
    sent_at: datetime | None = None
    articles: tuple[Article, ...] = field(default_factory=tuple)
    send_started_at: datetime | None = None  # when its ledger was fixed (first send began)


@dataclass(frozen=True)
class Donation:
    """One gift as the store keeps it (one Checkout Session), its refunds netted in
    ``refunded_minor``. ``payer_email`` is None once the payer is forgotten; times are the
    store's ISO-8601 UTC text."""

    id: int
    session_id: str
    livemode: bool
    status: DonationStatus
    amount_minor: int
    currency: str
    refunded_minor: int
    checkout_mode: str  # 'payment' (one-off) | 'subscription' (monthly)
    payment_link: str | None
    payment_intent: str | None
    token: str | None  # the client_reference_id as received
    delivery_id: int | None
    issue_id: str | None
    subscriber_id: int | None
    payer_email: str | None
    possibly_forwarded: bool
    session_created_at: str
    paid_at: str | None
    source: str  # 'sync' or 'webhook': which first saw it


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    status: SubscriberStatus
    tags: tuple[str, ...] = ()
    unsub_token: str = ""
    first_name: str = ""  # '' when unknown: the greeting then uses ``name``
    language: str = ""
    consent_at: str = ""  # opt-in time as the importing tool gave it
    consent_ip: str = ""
    consent_source: str = ""


#: Per-recipient placeholders left in rendered, inlined variants and filled in at send time by
#: plain string replacement. ASCII only, so that Jinja escaping, premailer and lxml leave them
#: alone. GREETING is the whole greeting ("Dear Ana," or the outlet's nameless greeting).
PLACEHOLDERS = {
    "GREETING": "%%DISPATCH_GREETING%%",
    "NAME": "%%DISPATCH_NAME%%",
    "EMAIL": "%%DISPATCH_EMAIL%%",
    "DONATE_URL": "%%DISPATCH_DONATE_URL%%",
    "UNSUBSCRIBE_URL": "%%DISPATCH_UNSUBSCRIBE_URL%%",
    "MANAGE_URL": "%%DISPATCH_MANAGE_URL%%",  # the signed manage-your-monthly-gift link
}


def defuse_placeholders(text: str, *, url: bool = False) -> str:
    """Text from outside (feeds, article files) must not smuggle in a placeholder that the send
    would fill with each reader's address or tokens: break every ``%%`` (percent-encoded in
    URLs, a zero-width space in prose)."""
    if "%%" not in text:
        return text
    return text.replace("%%", "%25%25") if url else text.replace("%%", "%\u200b%")


@dataclass(frozen=True)
class RenderedVariant:
    """One persona's finished message body, CSS inlined, placeholders still in it."""

    persona: str
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class CampaignProgress:
    """A running fundraising campaign as the appeal block shows it (amounts in minor units)."""

    name: str
    goal_minor: int
    currency: str  # ISO code, lower case as Stripe sends it
    raised_minor: int
    donors: int
    ends_on: str  # ISO date

    @property
    def percent(self) -> int:
        if self.goal_minor <= 0:
            return 0
        return min(100, round(100 * self.raised_minor / self.goal_minor))
