"""The messages of an issue, built from settings: the sending identity and links
(``message_config``), the factory of its copies, and a ledger row's copy for the send engine.

Shared by the list send, test copies and dry runs (and the signup mails' identity); it joins
several capabilities (render, subscribers' address rules, donations' link), so it is a job.
"""

from __future__ import annotations

from collections.abc import Callable

from dispatch.config import Settings
from dispatch.donations import donation_link_base, verify_payment_link
from dispatch.errors import ConfigError, InputError, IssueError
from dispatch.jobs.giving import manage_link
from dispatch.models import Issue
from dispatch.render.message import MessageConfig, MessageFactory, Recipient, format_mailbox
from dispatch.store import Database, ledger, supporters
from dispatch.store import issues as issue_store
from dispatch.subscribers import normalize_address, parse_mailbox


def message_config(db: Database, settings: Settings) -> MessageConfig:
    """The sending identity and link bases, validated; errors name the setting to fix."""
    from_value = settings.require("from_address")
    try:
        name, address = parse_mailbox(from_value, "DISPATCH_FROM")
    except InputError as exc:
        raise ConfigError(
            exc.message,
            "Set DISPATCH_FROM to e.g. 'Outlet <news@example.org>' "
            "in the environment or the .env file.",
        ) from exc
    mailto = settings.unsubscribe_mailto
    if mailto:
        try:
            mailto = normalize_address(mailto.removeprefix("mailto:"), allow_test_domains=True)
        except InputError as exc:
            raise ConfigError(f"DISPATCH_UNSUBSCRIBE_MAILTO: {exc.message}") from exc
    reply_to = ""
    if settings.reply_to.strip():
        try:
            reply_name, reply_address = parse_mailbox(settings.reply_to, "DISPATCH_REPLY_TO")
        except InputError as exc:
            raise ConfigError(exc.message) from exc
        reply_to = format_mailbox(reply_name, reply_address)
    domain = address.rpartition("@")[2].lower()
    list_id = settings.list_id.strip()
    if not list_id:
        list_id = f"digest.{domain}"
    if "<" not in list_id:
        list_id = f'"{settings.outlet_name.replace(chr(34), "")}" <{list_id}>'
    public = settings.public_url.strip().rstrip("/")
    if public and not public.startswith(("https://", "http://")):
        raise ConfigError(
            f"DISPATCH_PUBLIC_URL must be a web address starting with https://, not {public!r}"
        )
    secret = settings.secret_key.reveal().encode() or ledger.secret_key(db)
    return MessageConfig(
        from_name=name or settings.outlet_name,
        from_address=address,
        reply_to=reply_to,
        list_id=list_id,
        public_url=public,
        payment_link=donation_link_base(db, settings),
        # The address in the mail's own link costs +1.0 in SpamAssassin (GB_CUSTOM_HTM_URI).
        prefill_email=settings.prefill_email and settings.prefill_email_in_link,
        unsubscribe_mailto=mailto,
        secret=secret,
        greeting=settings.greeting,
        language=settings.language,  # the greeting's language in the default variants
        locale_dir=settings.locale_dir,
    )


def issue_messages(db: Database, settings: Settings, issue: Issue) -> MessageFactory:
    """The factory of an issue's copies (refused while the issue has not been rendered)."""
    verify_payment_link(settings, db)
    variants = issue_store.get_variants(db, issue.id)
    if not variants:
        raise IssueError(
            f"Issue {issue.id} has not been rendered yet",
            f"Run `dispatch build` (or rebuild the draft) before sending {issue.id}.",
        )
    factory = MessageFactory(issue.id, variants, message_config(db, settings))
    factory.manage_urls = manage_urls(db, settings)
    return factory


def manage_urls(db: Database, settings: Settings) -> dict[int, str]:
    """Each monthly donor's signed manage link (issue 11), for the supporter and card_failing
    copies; none without the web service (DISPATCH_PUBLIC_URL) and DISPATCH_SECRET_KEY, when
    those copies link to the donation page instead."""
    if not (settings.public_url.strip() and settings.secret_key.reveal()):
        return {}
    return {
        sub_id: manage_link(settings, subscription)
        for sub_id, subscription in supporters.gift_subscriptions(db).items()
    }


def row_composer(
    factory: MessageFactory, sign: Callable[[bytes], bytes] | None
) -> Callable[[ledger.Claimed], bytes]:
    """A ledger row's message, signed when DKIM is configured (run in a sending thread)."""

    def compose(row: ledger.Claimed) -> bytes:
        recipient = Recipient(
            email=row.email,
            name=row.name,
            first_name=row.first_name,
            token=row.token,
            unsub_token=row.unsub_token,
            key=str(row.id),
            manage_url=factory.manage_urls.get(row.subscriber_id, ""),
        )
        data = factory.build(row.variant, recipient)
        return data if sign is None else sign(data)

    return compose
