"""The personal links in every email: ``/u/<token>`` (unsubscribe, RFC 8058 one-click) and
``/d/<token>`` (count the donation click, then on to the outlet's Payment Link).

A GET never changes anything, so mail scanners that fetch links unsubscribe no one. The token
is the credential: a POST needs no cookie or CSRF token (RFC 8058), and a forged or altered
token gets a 404 and changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request, url_for

from dispatch.jobs import web as jobs
from dispatch.models import Subscriber
from dispatch.web import page, state
from dispatch.web.security import no_store

bp = Blueprint("links", __name__)


def _unsubscribe_page(token: str, subscriber: Subscriber, *, just_changed: str = "") -> Response:
    return no_store(page(
        "unsubscribe",
        token=token,
        sub_status=subscriber.status.value,
        address=jobs.mask_address(subscriber.email),
        just_changed=just_changed,
        unsubscribe_action=url_for("links.unsubscribe_post", token=token),
        resubscribe_action=url_for("links.resubscribe", token=token),
    ))


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
    subscriber = web.write(lambda: jobs.unsubscribe(web.db(), token), "unsubscribe")
    if subscriber is None:
        abort(404)
    if request.form.get("List-Unsubscribe") == "One-Click" and "action" not in request.form:
        return no_store(Response("You are unsubscribed.\n", mimetype="text/plain"))
    return _unsubscribe_page(token, subscriber, just_changed="unsubscribed")


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
    web = state()
    target = web.write(lambda: jobs.donation_redirect(web.db(), web.settings, token),
                       "donation click")
    if target is None:
        abort(404)
    response = Response(status=303, headers={"Location": target})
    response.headers["Referrer-Policy"] = "no-referrer"
    return no_store(response)
