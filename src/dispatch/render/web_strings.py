"""Fixed strings the web service hands its pages at run time (error titles and messages, the
signup form's error), marked here so ``pybabel extract`` finds them. The pages translate them
with the ``t`` filter (``{{ title | t }}``); a string not listed reads as given."""

from __future__ import annotations

from dispatch.render.i18n import N_

WEB_STRINGS = (
    # Werkzeug's names of the statuses the service answers with.
    N_("Bad Request"),
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Request Entity Too Large"),
    N_("Too Many Requests"),
    N_("Internal Server Error"),
    N_("Service Unavailable"),
    # dispatch.web's own.
    N_("The form could not be accepted. Please go back, reload the page and try again."),
    N_("This link is not valid. It may have been mistyped or cut off by your email program."),
    N_("This page cannot be used that way."),
    N_("That was more than this page accepts."),
    N_("Too many attempts from your connection. Please wait a few minutes and try again."),
    N_("Temporarily unavailable"),
    N_("Something on our side is not set up right. Please try again later."),
    N_("Busy for a moment"),
    N_(
        "We could not record that just now because the service is busy. Nothing was changed:"
        " please try again in a few seconds."
    ),
    N_("Unsubscribe recorded"),
    N_(
        "Your unsubscribe is recorded and takes effect within a few minutes. You do not need to"
        " do anything else."
    ),
    N_("Please check the email address: it does not look valid."),
    # The donation page (web/giving.py).
    N_("Payments are unavailable for a moment"),
    N_(
        "We could not reach our payment provider, so nothing was charged. Please go back and try"
        " again in a minute."
    ),
    N_(
        "Thank you for your gift: it keeps our journalism independent. Stripe emails you a receipt."
    ),
    N_("Thank you"),
    # The manage-your-gift page (web/giving.py).
    N_("Unavailable for a moment"),
    N_(
        "We could not reach our payment provider. Nothing was changed: please try again in a"
        " minute."
    ),
)
