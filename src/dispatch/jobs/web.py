"""The web service's use cases: unsubscribe by token, the donation redirect, double opt-in
signup and the public archive. ``dispatch.web`` only parses requests and
renders what these return.

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
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from dispatch.config import Settings
from dispatch.errors import ConfigError
from dispatch.jobs.common import donation_link_base
from dispatch.jobs.send import message_config
from dispatch.mailer import Outcome, SmtpConnection
from dispatch.mailer.dkim import signer_from_settings
from dispatch.models import Persona, RenderedVariant, StatusActor, Subscriber, statuses_from
from dispatch.render.message import MessageFactory, Recipient
from dispatch.render.placeholders import fill_placeholders
from dispatch.render.templates import Renderer
from dispatch.store import Database, utcnow, web_spool
from dispatch.store import web as store
from dispatch.store.web import ArchivedIssue

log = logging.getLogger("dispatch.web")

#: Tokens Dispatch issues (unsubscribe, donation, confirmation) are URL-safe base64 or hex.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
#: Statuses a reader may leave from the unsubscribe link, and come back to.
UNSUBSCRIBABLE = statuses_from(StatusActor.READER, "unsubscribed")  # models.STATUS_CHANGES
RESUBSCRIBABLE = statuses_from(StatusActor.READER, "active")
#: Statuses a used confirmation link turns into active (complained never gets a link: signup).
REACTIVATED_BY_CONFIRMATION = statuses_from(StatusActor.CONFIRMATION, "active")
_ADDRESS = re.compile(r"[^\s<>@'\"]+@[^\s<>@'\"]+")


def _valid(token: str) -> bool:
    return bool(TOKEN_RE.match(token))


def mask_address(email: str) -> str:
    """``an***@example.org``: enough for a reader to recognise, not to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}" if domain else "***"


# -- unsubscribe -------------------------------------------------------------------------------


def subscriber_for_token(db: Database, token: str) -> Subscriber | None:
    """Who an unsubscribe link belongs to (None for a forged, altered or outdated token)."""
    return store.subscriber_by_unsub_token(db, token) if _valid(token) else None


def unsubscribe(db: Database, token: str) -> Subscriber | None:
    """Unsubscribe the holder of ``token`` (idempotent); None when the token is unknown."""
    if not _valid(token):
        return None
    subscriber, changed = store.change_status_by_token(db, token, "unsubscribed", UNSUBSCRIBABLE)
    if changed:
        log.info("unsubscribed subscriber %s from the web", subscriber.id if subscriber else "?")
    return subscriber


def defer_unsubscribe(db: Database, token: str) -> Subscriber | None:
    """For when another writer keeps the database locked: check the token (a read, which a
    writer does not block) and keep the unsubscribe in the spool, on disk, to be applied by
    ``apply_deferred_unsubscribes``. None when the token is unknown (nothing kept)."""
    subscriber = subscriber_for_token(db, token)
    if subscriber is not None:
        web_spool.spool_unsubscribe(db.path, token)
        log.info("unsubscribe of subscriber %s kept in the spool: the database is busy",
                 subscriber.id)
    return subscriber


def has_deferred_unsubscribes(db_path: Path) -> bool:
    return web_spool.has_spooled(db_path)


def apply_deferred_unsubscribes(
    open_db: Callable[[], Database], patience: store.WritePatience
) -> int:
    """Apply the spooled unsubscribes (on the outbox thread), waiting for the lock as long as
    ``patience`` says; what still cannot be written stays spooled for the next attempt."""
    with open_db() as db:
        done = store.retry_when_locked(
            lambda: web_spool.apply_spooled_unsubscribes(db.path, lambda t: unsubscribe(db, t)),
            patience, "spooled unsubscribes",
        )
    if done:
        log.info("applied %d spooled unsubscribe(s)", done)
    return done


def resubscribe(db: Database, token: str) -> Subscriber | None:
    """Undo an unsubscribe; bounced, complained and forgotten addresses stay as they are."""
    if not _valid(token):
        return None
    subscriber, changed = store.change_status_by_token(db, token, "active", RESUBSCRIBABLE)
    if changed:
        log.info("resubscribed subscriber %s from the web", subscriber.id if subscriber else "?")
    return subscriber


# -- the donation redirect ------------------------------------------------------------------


def donation_redirect(db: Database, settings: Settings, token: str) -> str | None:
    """Count a click on a personal donation link and return the Payment Link URL to send the
    reader to; None for an unknown token. The URL is always the outlet's Payment Link."""
    if not _valid(token):
        return None
    target = store.record_click(db, token)
    if target is None:
        return None
    base = donation_link_base(db, settings)
    if not base:
        raise ConfigError(
            "DISPATCH_PAYMENT_LINK is not set, so /d/ links have nowhere to go",
            "Set DISPATCH_PAYMENT_LINK (or run `dispatch donations setup`) and restart the web "
            "service.",
        )
    params = {"client_reference_id": token}
    if settings.prefill_email and target.email:
        params["prefilled_email"] = target.email
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{urlencode(params, quote_via=quote, safe='')}"


# -- double opt-in ---------------------------------------------------------------------------


class Outbox:
    """Runs signups' work (lookups, limits, email) on one background thread per process, so
    the form answers at once and always alike (see jobs.signup)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-outbox")
        self._futures: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], object]) -> None:
        future = self._executor.submit(job)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(future)
        if future.exception() is not None:
            log.error("a signup's background work failed: %s", future.exception())

    def join(self, timeout: float | None = None) -> None:
        """Wait for every queued email (tests, and shutdown)."""
        with self._lock:
            pending = list(self._futures)
        wait(pending, timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _confirm_hours(settings: Settings) -> int:
    if settings.confirm_hours < 1:
        raise ConfigError("DISPATCH_CONFIRM_HOURS must be at least 1")
    return settings.confirm_hours


def confirmation_message(
    db: Database, settings: Settings, renderer: Renderer, address: str, url: str, hours: int
) -> bytes:
    """The confirmation email. It never repeats the name typed into the form (anyone can type
    anything there, and this mail goes to an address not yet confirmed)."""
    subject = f"Please confirm your subscription to {settings.outlet_name}"
    return signup_message(db, settings, renderer, address, "confirm", subject, {
        "preheader": "One click and you are subscribed.", "confirm_url": url, "hours": hours,
    })


def signup_message(
    db: Database, settings: Settings, renderer: Renderer, address: str, template: str,
    subject: str, context: dict[str, Any],
) -> bytes:
    """An email the signup form sends (``templates/<template>.html`` and ``.txt``)."""
    html, text = renderer.render_email(template, {"subject": subject, **context})
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
        log.warning("a confirmation email was not accepted by %s: %s", target.describe(),
                    _ADDRESS.sub("[address]", status.describe))


def confirmation_is_open(db: Database, token: str) -> bool:
    """Whether a confirmation link is still good (unused, unexpired); changes nothing."""
    return _valid(token) and store.open_confirmation(db, _hash(token), utcnow()) is not None


def confirm_signup(db: Database, token: str) -> str | None:
    """Use a confirmation link: 'activated', 'already', 'refused:<status>', or None when the
    link is unknown, used or expired."""
    if not _valid(token):
        return None
    outcome = store.use_confirmation(db, _hash(token), utcnow(), REACTIVATED_BY_CONFIRMATION)
    if outcome is not None:
        log.info("signup confirmation used: %s", outcome)
    return outcome


# -- the archive -------------------------------------------------------------------------------


def archive_listing(db: Database) -> list[ArchivedIssue]:
    return store.archived_issues(db)


def archive_page(db: Database, settings: Settings, issue_id: str, subscribe_url: str) -> str | None:
    """A sent digest as a web page: the non-donor copy with nothing personal in it (a general
    greeting, the plain Payment Link, and the signup page where the unsubscribe link was)."""
    if len(issue_id) > 200:
        return None
    row = store.archived_variant(db, issue_id, Persona.NON_DONOR.value)
    if row is None:
        return None
    values = {
        "GREETING": "Dear reader,",
        "NAME": "",
        "EMAIL": "",
        "DONATE_URL": donation_link_base(db, settings) or subscribe_url,
        "UNSUBSCRIBE_URL": subscribe_url,
    }
    return fill_placeholders(row["html"], values, is_html=True)
