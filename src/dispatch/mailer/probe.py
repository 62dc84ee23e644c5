"""A relay check for `dispatch doctor`: connect, EHLO, STARTTLS, AUTH, QUIT; no message sent.

It opens the connection exactly as a send does (``SmtpConnection.open``), so what it finds is
what the send will meet, then reports how the session was secured and closes it politely.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass

from dispatch.errors import SendError
from dispatch.mailer.connection import SmtpConnection, _reason
from dispatch.mailer.url import SmtpTarget, _is_loopback


@dataclass(frozen=True)
class RelayProbe:
    """How a session with the relay went (never the credentials)."""

    where: str
    tls: str  # "implicit" (smtps), "starttls" or "none"
    logged_in: bool
    loopback: bool


def probe_relay(target: SmtpTarget, timeout: float) -> RelayProbe:
    """Open a session like a send would and close it; SendError says what stopped it."""
    conn = SmtpConnection(target, timeout)
    try:
        conn.open()
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(
            f"Cannot reach the relay {target.describe()}: {_reason(exc)}",
            "Check the host and port in DISPATCH_SMTP_URL and that the relay is running.",
        ) from exc
    try:
        smtp = conn._smtp  # the session just opened: how it is secured is the finding
        secured = smtp is not None and isinstance(smtp.sock, ssl.SSLSocket)
    finally:
        conn.close()
    tls = "none"
    if secured:
        tls = "implicit" if target.implicit_tls else "starttls"
    return RelayProbe(
        where=target.describe(),
        tls=tls,
        logged_in=bool(target.username),
        loopback=_is_loopback(target.host),
    )
