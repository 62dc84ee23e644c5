"""The relay named by DISPATCH_SMTP_URL: ``smtp://[user:pass@]host[:port]`` or ``smtps://...``.

``smtp://`` upgrades with STARTTLS whenever the server offers it (``?starttls=require`` refuses
to send in clear, ``?starttls=never`` never upgrades, for a local relay with a self-made
certificate). User and password are percent-decoded, so ``p%40ss`` is the password ``p@ss``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from dispatch.config import Secret
from dispatch.errors import ConfigError

_HINT = (
    "Set DISPATCH_SMTP_URL to smtp://user:password@host:587 (STARTTLS) or "
    "smtps://user:password@host:465; percent-encode special characters in the password."
)


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect; ``password`` never shows in repr."""

    host: str
    port: int
    implicit_tls: bool = False
    starttls: str = "auto"  # "auto" (when offered) | "require" | "never"
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    verify_tls: bool = True

    def describe(self) -> str:
        """Where mail goes, for messages and logs: never the credentials."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        return f"{scheme}://{self.host}:{self.port}"


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse the relay URL; a ConfigError names DISPATCH_SMTP_URL (without echoing secrets)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"DISPATCH_SMTP_URL is not a valid URL ({exc})", _HINT) from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ConfigError(
            f"DISPATCH_SMTP_URL must start with smtp:// or smtps://, not {scheme or '(nothing)'}://",
            _HINT,
        )
    host = parts.hostname or ""
    if not host:
        raise ConfigError("DISPATCH_SMTP_URL has no host name", _HINT)
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    starttls = query.get("starttls", "auto")
    if starttls not in ("auto", "require", "never"):
        raise ConfigError(
            f"DISPATCH_SMTP_URL: starttls must be auto, require or never, not {starttls!r}", _HINT
        )
    verify = query.get("verify", "true") not in ("0", "false", "no", "off")
    implicit = scheme == "smtps"
    if parts.username and starttls == "auto" and not _is_loopback(host):
        # A password must never cross the network in clear because a server (or someone in
        # between, stripping the offer) did not offer STARTTLS. ?starttls=never says otherwise.
        starttls = "require"
    return SmtpTarget(
        host=host,
        port=port or (465 if implicit else 25),
        implicit_tls=implicit,
        starttls="never" if implicit else starttls,
        username=unquote(parts.username or ""),
        password=Secret(unquote(parts.password or "")),
        verify_tls=verify,
    )
