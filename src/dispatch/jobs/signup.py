"""Double opt-in signup, in two halves so the form tells no one who subscribes.

``accept_signup`` runs in the request: it checks the address's syntax and the settings, and
nothing else (no lookup, no email), so every valid address is answered the same way in the
same time. ``run_signup`` runs afterwards on the outbox thread: it looks the address up, counts
the email against the limits kept in the database (per address, and for the whole service per
hour: several worker processes share them), stores the confirmation and sends the email.

What the address gets (see jobs.web's module docstring for the statuses): a new, pending,
unsubscribed, bounced or forgotten address a confirmation link; an active subscriber a short
"you are already subscribed" note (limited like confirmations); a complained address nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from dispatch.config import Settings
from dispatch.errors import ConfigError
from dispatch.jobs.send import message_config, relay_target
from dispatch.jobs.web import _confirm_hours, _deliver, _hash, confirmation_message, signup_message
from dispatch.render.templates import Renderer
from dispatch.store import Database, utcnow
from dispatch.store import web as store
from dispatch.subscribers import clean_name, envelope_address, normalize_address

log = logging.getLogger("dispatch.web")

#: Per address: at most one signup email per RESEND_MINUTES, DAILY_MAX a day.
RESEND_MINUTES = 10
DAILY_MAX = 5
#: A signup's database work waits longer than a request would: nobody is waiting for it.
BACKGROUND_PATIENCE = store.WritePatience(busy_ms=10_000, pauses=(1.0, 5.0, 15.0))


@dataclass(frozen=True)
class Signup:
    """A valid signup as the form gave it, waiting for ``run_signup``."""

    address: str
    name: str


def accept_signup(settings: Settings, email: str, name: str) -> Signup:
    """Check a submission without looking anything up. Raises InputError for an address that
    is not valid (said on the form: that reveals nothing about who subscribes) and ConfigError
    when the settings cannot send a confirmation (the same for every address)."""
    signup = Signup(normalize_address(email[:320]), clean_name(name))
    settings.require("public_url")
    settings.require("from_address")
    relay_target(settings)
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
        prepared = store.retry_when_locked(
            lambda: _prepare(db, settings, renderer, signup, confirm_url),
            BACKGROUND_PATIENCE,
            "signup",
        )
    result, mail = prepared
    if mail is not None:
        _deliver(
            settings, relay_target(settings), mail[0], envelope_address(signup.address), mail[1]
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
    if state == "complained":
        return SignupResult("refused"), None
    sender = envelope_address(message_config(db, settings).from_address)
    limits = mail_limits(settings)
    if state == "active":
        data = already_subscribed_message(db, settings, renderer, address)
        verdict = store.reserve_signup_mail(db, address, limits, now)
        action = "noted"
    else:
        token = secrets.token_urlsafe(32)
        hours = _confirm_hours(settings)
        data = confirmation_message(db, settings, renderer, address, confirm_url(token), hours)
        pending = store.NewConfirmation(
            _hash(token), signup.name, now + timedelta(hours=hours), add_pending=state == "new"
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
    db: Database, settings: Settings, renderer: Renderer, address: str
) -> bytes:
    """The note to an active subscriber whose address was typed into the form again: the
    page said "check your inbox" to everyone, so the inbox is where they learn it."""
    subject = f"You are already subscribed to {settings.outlet_name}"
    return signup_message(
        db,
        settings,
        renderer,
        address,
        "already_subscribed",
        subject,
        {
            "preheader": "Nothing to do: the newsletter keeps coming.",
        },
    )
