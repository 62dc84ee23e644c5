"""Double opt-in: ``/subscribe`` (form, CSRF token, honeypot, rate limit per client address)
and ``/confirm/<token>`` (a page with a button; only the POST activates, so a mail scanner
that fetches the link confirms no one).

Whatever the address (new, already subscribed, unsubscribed, suppressed), a valid submission
gets the same "check your inbox" page, and gets it before anything is looked up: the address's
work (lookup, limits, email) is queued on the outbox thread (jobs.signup), so neither the page
nor its timing tells anyone who subscribes.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import quote as url_quote

from flask import Blueprint, Response, abort, request, url_for

from dispatch.errors import InputError
from dispatch.jobs import signup as signup_jobs
from dispatch.web.app_support import page, state
from dispatch.web.security import CSRF_FIELD, csrf_ok, csrf_token, no_store

bp = Blueprint("signup", __name__)

#: The honeypot: hidden from people by CSS and aria-hidden, filled in by form-filling bots.
HONEYPOT_FIELD = "website"


def _form(
    status: int = 200, *, error: str = "", email: str = "", name: str = "", lang: str = ""
) -> Response:
    return no_store(
        page(
            "subscribe",
            status=status,
            _lang=lang,  # a form sent back keeps the language chosen on it
            error=error,
            email=email,
            name=name,
            csrf_field=CSRF_FIELD,
            csrf_token=csrf_token(),
            honeypot=HONEYPOT_FIELD,
            action=url_for("signup.subscribe_post"),
        )
    )


def _check_inbox(lang: str = "") -> Response:
    return no_store(page("check_inbox", _lang=lang, hours=state().settings.confirm_hours))


@bp.get("/subscribe")
def subscribe_get() -> Response:
    return _form()


@bp.post("/subscribe")
def subscribe_post() -> Response:
    if not csrf_ok(request.form.get(CSRF_FIELD)):
        abort(400)
    web = state()
    if not web.limiter.allow(request.remote_addr or "-"):
        abort(429)
    email = request.form.get("email", "").strip()
    name = request.form.get("name", "").strip()
    if request.form.get(HONEYPOT_FIELD):
        return _check_inbox()  # a bot: tell it what a person would see, do nothing
    try:
        signup = signup_jobs.accept_signup(
            web.settings, email, name, request.form.get("language", "")
        )
    except InputError:
        return _form(
            422,
            error="Please check the email address: it does not look valid.",
            email=email[:320],
            name=name[:200],
            lang=request.form.get("language", "")[:35],
        )
    link = _public_url("signup.confirm_get", token="T")[:-1]  # + the token, made later
    job = partial(
        signup_jobs.run_signup,
        partial(web.connect, signup_jobs.BACKGROUND_PATIENCE),
        web.settings,
        web.renderer,
        signup,
        link.__add__,
    )
    response = _check_inbox(signup.language)
    # Queued once the server has sent the page (WSGI close), so not even the start of the
    # address's work competes with its own response.
    response.call_on_close(partial(web.outbox.submit, job))
    return response


def _lang() -> str:
    """The language a confirmation link names (?lang=, from the signup form's choice)."""
    return request.args.get("lang", "")[:35]


def _confirmation_gone() -> Response:
    """The 404 page for a confirmation link that is unknown, used or expired (GET and POST)."""
    return no_store(
        page(
            "confirm",
            status=404,
            _lang=_lang(),
            valid=False,
            subscribe_url=url_for("signup.subscribe_get"),
        )
    )


@bp.get("/confirm/<token>")
def confirm_get(token: str) -> Response:
    if not signup_jobs.confirmation_is_open(state().db(), token):
        return _confirmation_gone()
    action = url_for("signup.confirm_post", token=token)
    if _lang():
        action += f"?lang={url_quote(_lang())}"
    return no_store(page("confirm", _lang=_lang(), valid=True, action=action))


@bp.post("/confirm/<token>")
def confirm_post(token: str) -> Response:
    web = state()
    outcome = web.write(lambda: signup_jobs.confirm_signup(web.db(), token), "confirm")
    if outcome is None:
        return _confirmation_gone()
    return no_store(
        page(
            "confirmed",
            _lang=_lang(),
            outcome=outcome.split(":", 1)[0],
            archive_url=url_for("archive.listing"),
        )
    )


def _public_url(endpoint: str, **values: Any) -> str:
    """An absolute link for an email, always on DISPATCH_PUBLIC_URL: never built from the
    request's Host header, which a visitor controls."""
    base = state().settings.require("public_url").rstrip("/")
    return base + url_for(endpoint, **values)
