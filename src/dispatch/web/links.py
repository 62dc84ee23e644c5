"""The personal links in every email: ``/u/<token>`` (unsubscribe, RFC 8058 one-click) and
``/d/<token>`` (count the donation click, then on to the outlet's Payment Link).

A GET never changes anything, so mail scanners that fetch links unsubscribe no one. The token
is the credential: a POST needs no cookie or CSRF token (RFC 8058), and a forged or altered
token gets a 404 and changes nothing. An unsubscribe that meets a database kept busy by
another writer is retried, and failing that kept on disk and applied moments later (202).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request, url_for

from dispatch.errors import StoreError
from dispatch.jobs import clicks
from dispatch.jobs import unsubscribe as jobs
from dispatch.models import Subscriber
from dispatch.store.locking import DatabaseBusyError
from dispatch.web import giving
from dispatch.web.app_support import page, state
from dispatch.web.security import no_store

bp = Blueprint("links", __name__)
giving.register(bp)  # the donation page's POST and the manage-your-gift link (issue 11)
log = logging.getLogger("dispatch.web")


def _unsubscribe_page(token: str, subscriber: Subscriber, *, just_changed: str = "") -> Response:
    return no_store(
        page(
            "unsubscribe",
            _lang=subscriber.language,
            token=token,
            sub_status=subscriber.status.value,
            address=jobs.mask_address(subscriber.email),
            just_changed=just_changed,
            unsubscribe_action=url_for("links.unsubscribe_post", token=token),
            resubscribe_action=url_for("links.resubscribe", token=token),
        )
    )


@bp.get("/u/<token>")
def unsubscribe_get(token: str) -> Response:
    """The page with the button; looking at it changes nothing."""
    subscriber = jobs.subscriber_for_token(state().db(), token)
    if subscriber is None:
        abort(404)
    return _unsubscribe_page(token, subscriber)


@bp.post("/u/<token>")
def unsubscribe_post(token: str) -> Response:
    """One-click (``List-Unsubscribe=One-Click`` from a mail provider) or the page's button."""
    web = state()
    try:
        subscriber = web.write(lambda: jobs.unsubscribe(web.db(), token), "unsubscribe")
    except DatabaseBusyError as busy:
        return _deferred_unsubscribe(token, busy)
    if subscriber is None:
        abort(404)
    if _one_click():
        return no_store(Response("You are unsubscribed.\n", mimetype="text/plain"))
    return _unsubscribe_page(token, subscriber, just_changed="unsubscribed")


def _one_click() -> bool:
    return request.form.get("List-Unsubscribe") == "One-Click" and "action" not in request.form


def _deferred_unsubscribe(token: str, busy: DatabaseBusyError) -> Response:
    """The database stayed locked through every retry: keep the unsubscribe on disk, apply it
    in the background as soon as the lock is free, and say so (202: accepted, not yet done).
    Only if even that fails is the answer a 503 asking to try again."""
    web = state()
    try:
        subscriber = jobs.defer_unsubscribe(web.db(), token)
    except StoreError as exc:
        log.error("an unsubscribe could not be kept either: %s", exc)
        raise busy from exc
    if subscriber is None:
        abort(404)
    web.apply_deferred_unsubscribes()
    message = "Your unsubscribe is recorded and takes effect within a few minutes."
    if _one_click():
        return no_store(Response(message + "\n", status=202, mimetype="text/plain"))
    return no_store(
        page(
            "error",
            status=202,
            _lang=subscriber.language,
            code=202,
            title="Unsubscribe recorded",
            message=message + " You do not need to do anything else.",
        )
    )


@bp.post("/u/<token>/resubscribe")
def resubscribe(token: str) -> Response:
    web = state()
    subscriber = web.write(lambda: jobs.resubscribe(web.db(), token), "resubscribe")
    if subscriber is None:
        abort(404)
    return _unsubscribe_page(token, subscriber, just_changed="resubscribed")


@bp.route("/d/<token>", methods=["GET", "HEAD"])
def donate(token: str) -> Response:
    """Count the click and send the reader to Stripe. Query parameters are ignored: the target
    is always the outlet's own Payment Link, never a URL taken from the request."""
    if request.method == "HEAD":  # link checkers: no click counted, nothing revealed
        return no_store(Response(status=204))
    if giving.page_on():  # DISPATCH_DONATION_AMOUNTS set: the donation page instead
        return giving.donation_page(token)
    web = state()
    target = web.write(
        lambda: clicks.donation_redirect(web.db(), web.settings, token), "donation click"
    )
    if target is None:
        abort(404)
    response = Response(status=303, headers={"Location": target})
    response.headers["Referrer-Policy"] = "no-referrer"
    return no_store(response)
