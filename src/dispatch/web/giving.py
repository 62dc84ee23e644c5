"""The donation page and the manage-your-gift link (issue 11), added to the links blueprint:
``GET /d/<token>`` shows the page when DISPATCH_DONATION_AMOUNTS is set (else links.donate
redirects to the Payment Link as before), ``POST /d/<token>`` creates the Checkout Session and
redirects to it; ``GET /m/<ref>`` shows a button whose ``POST`` opens Stripe's customer portal.
A GET never creates anything at Stripe; a forged or altered token or link gets a 404.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint, Response, abort, request, url_for

from dispatch.errors import DonationError, InputError
from dispatch.jobs import giving
from dispatch.money import format_money, from_minor_units
from dispatch.web.app_support import page, state
from dispatch.web.security import CONTENT_SECURITY_POLICY, no_store

log = logging.getLogger("dispatch.web")

#: The house policy (web.security) with Stripe's hosted pages added to form-action: a form's
#: POST that answers with a redirect is held to form-action too, so without this Chromium
#: refuses to follow the donation page to Checkout and the manage page to the portal.
STRIPE_FORMS = "form-action 'self' https://checkout.stripe.com https://billing.stripe.com"


def _allow_stripe(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", STRIPE_FORMS
    )
    return response


def page_on() -> bool:
    return giving.giving_options(state().settings) is not None


def _form(
    token: str, status: int = 200, error: str = "", chosen: dict[str, str] | None = None
) -> Response:
    options = giving.giving_options(state().settings)
    assert options is not None
    chosen = chosen or {}
    lang = state().renderer.language_for(giving.page_language(state().db(), token))
    amounts = [
        {
            "value": str(from_minor_units(a, options.currency)),
            "label": format_money(a, options.currency, locale=lang),
        }
        for a in options.amounts
    ]
    context: dict[str, Any] = {
        "action": url_for("links.donate_post", token=token),
        "amounts": amounts,
        "currency": options.currency.upper(),
        "error": error,
        "frequency": chosen.get("frequency", "monthly"),
        "amount": chosen.get("amount", ""),
        "custom": chosen.get("custom", ""),
        "nonce": secrets.token_urlsafe(12),
        "minimum": format_money(options.minimum, options.currency, locale=lang),
        "maximum": format_money(options.maximum, options.currency, locale=lang),
    }
    response = page("give", status=status, _lang=lang, **context)
    response.headers["Referrer-Policy"] = "no-referrer"
    return no_store(_allow_stripe(response))


def donation_page(token: str) -> Response:
    """The GET: count the click (not when coming back from Checkout) and show the choices."""
    web = state()
    if request.args.get("back"):
        known = giving.is_known_token(web.db(), token)
    else:
        known = web.write(lambda: giving.open_page(web.db(), token), "donation click") is not None
    if not known:
        abort(404)
    return _form(token)


def donate_post(token: str) -> Response:
    web = state()
    if not page_on():
        abort(404)
    chosen = {k: request.form.get(k, "")[:40] for k in ("frequency", "amount", "custom", "nonce")}
    typed = chosen["custom"].strip()
    lang = web.renderer.language_for(giving.page_language(web.db(), token))
    try:
        url = giving.start_checkout(
            web.db(),
            web.settings,
            token,
            chosen["frequency"],
            typed or chosen["amount"],
            chosen["nonce"] or secrets.token_urlsafe(12),
            language=lang,
            typed=bool(typed),  # read the reader's way: German "12,50"
        )
    except InputError as exc:
        if not giving.is_known_token(web.db(), token):
            abort(404)
        error = exc.message
        if isinstance(exc, giving.GiftError):
            error = web.renderer.gettext(exc.msgid, lang) % exc.params
        return _form(token, status=400, error=error, chosen=chosen)
    except DonationError as exc:
        log.error("the donation page could not create a Checkout Session: %s", exc)
        return _unavailable(
            "Payments are unavailable for a moment",
            "We could not reach our payment provider, so nothing was charged. Please "
            "go back and try again in a minute.",
            lang,
        )
    return _to_stripe(url)


def _unavailable(title: str, message: str, lang: str) -> Response:
    """The 503 page when Stripe could not be reached (donating or managing a gift); the title
    and message are web_strings msgids, translated by the page."""
    return no_store(page("error", status=503, _lang=lang, code=503, title=title, message=message))


def _to_stripe(url: str | None) -> Response:
    """Send the reader on to a Stripe page (Checkout or the portal) with no Referer; 404 when
    there is none."""
    if url is None:
        abort(404)
    return no_store(
        Response(status=303, headers={"Location": url, "Referrer-Policy": "no-referrer"})
    )


def thanks(token: str) -> Response:
    lang = state().renderer.language_for(giving.page_language(state().db(), token))
    return no_store(
        page(
            "error",
            _lang=lang,
            code=200,
            title="Thank you",
            message="Thank you for your gift: it keeps our journalism independent. "
            "Stripe emails you a receipt.",
        )
    )


def manage_get(ref: str) -> Response:
    web = state()
    if giving.subscription_for_ref(web.db(), web.settings, ref) is None:
        abort(404)
    lang = _manage_language(ref)
    action = url_for("links.manage_post", ref=ref)
    return no_store(_allow_stripe(page("manage", _lang=lang, action=action)))


def _manage_language(ref: str) -> str:
    """The manage page's language: that of the reader who gives through the subscription."""
    web = state()
    return web.renderer.language_for(giving.manage_language(web.db(), web.settings, ref))


def manage_post(ref: str) -> Response:
    web = state()
    try:
        url = giving.open_portal(web.db(), web.settings, ref)
    except DonationError as exc:
        log.error("the customer portal could not be opened: %s", exc)
        return _unavailable(
            "Unavailable for a moment",
            "We could not reach our payment provider. Nothing was changed: please "
            "try again in a minute.",
            _manage_language(ref),
        )
    return _to_stripe(url)


def register(bp: Blueprint) -> None:
    """Add the routes to the links blueprint (its GET /d/<token> calls donation_page)."""
    bp.add_url_rule("/d/<token>", "donate_post", donate_post, methods=["POST"])
    bp.add_url_rule("/d/<token>/thanks", "donate_thanks", thanks, methods=["GET"])
    bp.add_url_rule("/m/<ref>", "manage_get", manage_get, methods=["GET"])
    bp.add_url_rule("/m/<ref>", "manage_post", manage_post, methods=["POST"])
