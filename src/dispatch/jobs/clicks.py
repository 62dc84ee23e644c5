"""The donation redirect: count a click on a personal donation link, then send the reader on
to the outlet's Payment Link with their delivery token (dispatch.donations.attribution)."""

from __future__ import annotations

from dispatch.config import Settings
from dispatch.donations import checkout_url, donation_link_base
from dispatch.errors import ConfigError
from dispatch.store import Database, clicks
from dispatch.store.tokens import valid_token


def donation_redirect(db: Database, settings: Settings, token: str) -> str | None:
    """Count a click on a personal donation link and return the Payment Link URL to send the
    reader to; None for an unknown token. The URL is always the outlet's Payment Link."""
    if not valid_token(token):
        return None
    target = clicks.record_click(db, token)
    if target is None:
        return None
    base = donation_link_base(db, settings)
    if not base:
        raise ConfigError(
            "DISPATCH_PAYMENT_LINK is not set, so /d/ links have nowhere to go",
            "Set DISPATCH_PAYMENT_LINK (or run `dispatch donations setup`) and restart the web "
            "service.",
        )
    return checkout_url(base, token, target.email if settings.prefill_email else None)
