"""The mailer's parts built from settings: the relay (DISPATCH_SMTP_URL); the DKIM signer is
``mailer.dkim.signer_from_settings``."""

from __future__ import annotations

from dispatch.config import Settings
from dispatch.mailer.url import SmtpTarget, parse_smtp_url


def relay_from_settings(settings: Settings) -> SmtpTarget:
    """The relay of DISPATCH_SMTP_URL (a ConfigError naming it when unset or malformed)."""
    return parse_smtp_url(settings.require("smtp_url"))
