"""Double opt-in signup, in two halves so the form tells no one who subscribes.

``accept_signup`` runs in the request: it checks the address's syntax and the settings, and
nothing else (no lookup, no email), so every valid address is answered the same way in the
same time. ``run_signup`` runs afterwards on the outbox thread: it looks the address up, counts
the email against the limits kept in the database (per address, and for the whole service per
hour: several worker processes share them), stores the confirmation and sends the email.

What the address gets: a new, pending, unsubscribed, bounced or forgotten address a
confirmation link; an active subscriber a short "you are already subscribed" note (limited like
confirmations); a complained address nothing. ``confirm_signup`` uses a link.

Signup policy (a fresh confirmation is the person clicking the link mailed to the address):
an active subscriber stays as they are and gets no email; a new address becomes ``pending``
until confirmed, and is removed once its link expires unused; an address that unsubscribed or
bounced, a pending one, or one that was forgotten is mailed a confirmation and becomes active
only once it is used (a forgotten address is stored again only then, and its suppression
lifted, because the person asked again and proved the address). An address that complained is
never mailed or reactivated from the web: only the editor can do that. Whatever happened, the
visitor sees the same page.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from dispatch.config import Settings
from dispatch.errors import ConfigError
from dispatch.jobs.messages import message_config
from dispatch.mailer import Outcome, SmtpConnection, relay_from_settings
from dispatch.mailer.dkim import signer_from_settings
from dispatch.models import Persona, RenderedVariant, StatusActor, SubscriberStatus, statuses_from
from dispatch.render.i18n import normalize_tag
from dispatch.render.message import MessageFactory, Recipient
from dispatch.render.templates import Renderer
from dispatch.store import Database, utcnow
from dispatch.store import signups as store
from dispatch.store.locking import WritePatience, retry_when_locked
from dispatch.store.tokens import valid_token
from dispatch.subscribers import clean_name, envelope_address, normalize_address

log = logging.getLogger("dispatch.web")

#: Statuses a used confirmation link turns into active (complained never gets a link: signup).
REACTIVATED_BY_CONFIRMATION = statuses_from(StatusActor.CONFIRMATION, "active")
_ADDRESS = re.compile(r"[^\s<>@'\"]+@[^\s<>@'\"]+")

#: Per address: at most one signup email per RESEND_MINUTES, DAILY_MAX a day.
RESEND_MINUTES = 10
DAILY_MAX = 5
#: A signup's database work waits longer than a request would: nobody is waiting for it.
BACKGROUND_PATIENCE = WritePatience(busy_ms=10_000, pauses=(1.0, 5.0, 15.0))


@dataclass(frozen=True)
class Signup:
    """A valid signup as the form gave it, waiting for ``run_signup``."""

    address: str
    name: str
    language: str = ""  # one of DISPATCH_LANGUAGES (the form's choice), or "" for the default


def accept_signup(settings: Settings, email: str, name: str, language: str = "") -> Signup:
    """Check a submission without looking anything up. Raises InputError for an address that
    is not valid (said on the form: that reveals nothing about who subscribes) and ConfigError
    when the settings cannot send a confirmation (the same for every address). ``language``
    is kept only when it is one of the outlet's languages."""
    offered = {normalize_tag(t): t for t in (settings.language, *settings.languages)}
    signup = Signup(
        normalize_address(email[:320]),
        clean_name(name),
        offered.get(normalize_tag(language[:35]), ""),
    )
    settings.require("public_url")
    settings.require("from_address")
    relay_from_settings(settings)
    _confirm_hours(settings)
    mail_limits(settings)
    return signup


def mail_limits(settings: Settings) -> store.MailLimits:
    if settings.signup_mails_per_hour < 1:
        raise ConfigError("DISPATCH_SIGNUP_MAILS_PER_HOUR must be at least 1")
    return store.MailLimits(
        timedelta(minutes=RESEND_MINUTES), DAILY_MAX, settings.signup_mails_per_hour
    )


@dataclass(frozen=True)
class SignupResult:
    """What a signup did; never shown to the visitor (the page is always the same)."""

    action: str  # 'mailed' | 'noted' (already subscribed) | 'refused' | 'throttled'


def run_signup(
    open_db: Callable[[], Database],
    settings: Settings,
    renderer: Renderer,
    signup: Signup,
    confirm_url: Callable[[str], str],
) -> SignupResult:
    """Do a signup's work (on the outbox thread): its database part is retried while another
    writer holds the lock, then the email goes out. ``confirm_url(token)`` makes the link."""
    with open_db() as db:
        prepared = retry_when_locked(
            lambda: _prepare(db, settings, renderer, signup, confirm_url),
            BACKGROUND_PATIENCE,
            "signup",
        )
    result, mail = prepared
    if mail is not None:
        _deliver(
            settings,
            relay_from_settings(settings),
            mail[0],
            envelope_address(signup.address),
            mail[1],
        )
    return result


def _prepare(
    db: Database,
    settings: Settings,
    renderer: Renderer,
    signup: Signup,
    confirm_url: Callable[[str], str],
) -> tuple[SignupResult, tuple[str, bytes] | None]:
    """Look the address up, build its email and count it; (result, (sender, message) or None).
    Safe to repeat: the only write that matters is one transaction."""
    address = signup.address
    now = utcnow()
    store.purge_confirmations(db, now)
    state = store.signup_state(db, address)
    if state == SubscriberStatus.COMPLAINED:
        return SignupResult("refused"), None
    sender = envelope_address(message_config(db, settings).from_address)
    limits = mail_limits(settings)
    if state == SubscriberStatus.ACTIVE:
        data = already_subscribed_message(db, settings, renderer, address, signup.language)
        verdict = store.reserve_signup_mail(db, address, limits, now)
        action = "noted"
    else:
        token = secrets.token_urlsafe(32)
        hours = _confirm_hours(settings)
        data = confirmation_message(
            db,
            settings,
            renderer,
            address,
            # the confirmation pages speak the language chosen on the form too
            confirm_url(token) + (f"?lang={signup.language}" if signup.language else ""),
            hours,
            signup.language,
        )
        pending = store.NewConfirmation(
            _hash(token),
            signup.name,
            now + timedelta(hours=hours),
            add_pending=state == "new",
            language=signup.language,
        )
        verdict = store.reserve_signup_mail(db, address, limits, now, pending)
        action = "mailed"
    if verdict == "global":
        log.warning(
            "a signup was not mailed: the service sent its %d signup emails this hour "
            "(DISPATCH_SIGNUP_MAILS_PER_HOUR)",
            limits.per_hour,
        )
    if verdict != "ok":
        return SignupResult("throttled"), None
    return SignupResult(action), (sender, data)


def already_subscribed_message(
    db: Database, settings: Settings, renderer: Renderer, address: str, lang: str | None = None
) -> bytes:
    """The note to an active subscriber whose address was typed into the form again: the
    page said "check your inbox" to everyone, so the inbox is where they learn it."""
    _ = renderer.gettext
    subject = _("You are already subscribed to %(name)s", lang) % {"name": settings.outlet_name}
    return signup_message(
        db,
        settings,
        renderer,
        address,
        "already_subscribed",
        subject,
        {
            "preheader": _("Nothing to do: the newsletter keeps coming.", lang),
        },
        lang,
    )


# -- the emails and the confirmation link ----------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _confirm_hours(settings: Settings) -> int:
    if settings.confirm_hours < 1:
        raise ConfigError("DISPATCH_CONFIRM_HOURS must be at least 1")
    return settings.confirm_hours


def confirmation_message(
    db: Database,
    settings: Settings,
    renderer: Renderer,
    address: str,
    url: str,
    hours: int,
    lang: str | None = None,
) -> bytes:
    """The confirmation email. It never repeats the name typed into the form (anyone can type
    anything there, and this mail goes to an address not yet confirmed)."""
    _ = renderer.gettext
    subject = _("Please confirm your subscription to %(name)s", lang) % {
        "name": settings.outlet_name
    }
    return signup_message(
        db,
        settings,
        renderer,
        address,
        "confirm",
        subject,
        {
            "preheader": _("One click and you are subscribed.", lang),
            "confirm_url": url,
            "hours": hours,
        },
        lang,
    )


def signup_message(
    db: Database,
    settings: Settings,
    renderer: Renderer,
    address: str,
    template: str,
    subject: str,
    context: dict[str, Any],
    lang: str | None = None,
) -> bytes:
    """An email the signup form sends (``templates/<template>.html`` and ``.txt``), in the
    visitor's language (one of DISPATCH_LANGUAGES, else the default)."""
    html, text = renderer.render_email(template, {"subject": subject, **context}, lang)
    # Not list mail: no List-Id, no List-Unsubscribe (there is nothing to leave yet).
    config = replace(message_config(db, settings), public_url="", list_id="", list_mail=False)
    variant = RenderedVariant(Persona.NON_DONOR.value, subject, html, text)
    factory = MessageFactory(template, {variant.persona: variant}, config)
    key = f"{template}-" + secrets.token_hex(6)
    data = factory.build(variant.persona, Recipient(email=address, key=key, unsub_token="signup"))
    signer = signer_from_settings(settings)  # DKIM-signed like every other kind of mail
    return signer.sign(data) if signer is not None else data


def _deliver(settings: Settings, target: Any, sender: str, recipient: str, data: bytes) -> None:
    conn = SmtpConnection(target, settings.smtp_timeout)
    try:
        status = conn.send(sender, recipient, data)
    finally:
        conn.close()
    if status.outcome != Outcome.SENT:
        # The relay's reply can quote the address: keep addresses out of the log.
        log.warning(
            "a confirmation email was not accepted by %s: %s",
            target.describe(),
            _ADDRESS.sub("[address]", status.describe),
        )


def confirmation_is_open(db: Database, token: str) -> bool:
    """Whether a confirmation link is still good (unused, unexpired); changes nothing."""
    return valid_token(token) and store.open_confirmation(db, _hash(token), utcnow()) is not None


def confirm_signup(db: Database, token: str) -> str | None:
    """Use a confirmation link: 'activated', 'already', 'refused:<status>', or None when the
    link is unknown, used or expired."""
    if not valid_token(token):
        return None
    outcome = store.use_confirmation(db, _hash(token), utcnow(), REACTIVATED_BY_CONFIRMATION)
    if outcome is not None:
        log.info("signup confirmation used: %s", outcome)
    return outcome
