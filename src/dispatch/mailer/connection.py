"""One reused SMTP connection that hands over bytes and reports each recipient's outcome.

The mailer only moves bytes: it never builds or inspects a message. ``send`` never raises for
a recipient's fate (a refusal, a 4xx, a dropped connection): it returns a ``DeliveryStatus``.
It raises ``SendError`` only for what no retry can fix (authentication refused, TLS required
but not offered), so the caller stops the run instead of failing every recipient.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from enum import StrEnum

from dispatch.errors import SendError
from dispatch.mailer.url import SmtpTarget


class Outcome(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"  # 4xx, dropped connection, timeout: try again later
    PERMANENT = "permanent"  # 5xx: the server refused this recipient or message


@dataclass(frozen=True)
class DeliveryStatus:
    """The server's verdict on one recipient: its code and reply text (0 when none came)."""

    outcome: Outcome
    code: int
    reply: str
    connection_lost: bool = False

    @property
    def describe(self) -> str:
        return f"{self.code} {self.reply}".strip() if self.code else self.reply


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return " ".join(reply.split())[:500]


def _from_code(code: int, reply: bytes | str) -> DeliveryStatus:
    if 200 <= code < 300:
        return DeliveryStatus(Outcome.SENT, code, _text(reply))
    if 500 <= code < 600:
        return DeliveryStatus(Outcome.PERMANENT, code, _text(reply))
    # 4xx and anything unexpected: not delivered, not refused for good.
    return DeliveryStatus(Outcome.TEMPORARY, code, _text(reply), connection_lost=code == 421)


def _lost(what: str) -> DeliveryStatus:
    return DeliveryStatus(Outcome.TEMPORARY, 0, what, connection_lost=True)


def local_hostname() -> str:
    """The EHLO name: this host's name, without the DNS look-up smtplib's default would do."""
    name = socket.gethostname()
    return name if name and name.isascii() else "localhost"


class SmtpConnection:
    """A lazily opened, reused connection to the relay (one per sending thread)."""

    def __init__(self, target: SmtpTarget, timeout: float = 30.0) -> None:
        self.target = target
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None
        self.messages_sent = 0

    # -- connection ---------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.target.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def open(self) -> None:
        """Connect, upgrade to TLS and log in. OSError for a relay that cannot be reached."""
        target = self.target
        if target.implicit_tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                target.host,
                target.port,
                local_hostname=local_hostname(),
                timeout=self.timeout,
                context=self._tls_context(),
            )
        else:
            smtp = smtplib.SMTP(
                target.host, target.port, local_hostname=local_hostname(), timeout=self.timeout
            )
        try:
            smtp.ehlo_or_helo_if_needed()
            if not target.implicit_tls and target.starttls != "never":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                elif target.starttls == "require":
                    raise SendError(
                        f"The relay {target.describe()} does not offer STARTTLS",
                        "Use smtps://, a relay that supports TLS, or drop ?starttls=require.",
                    )
            if target.username:
                _login(smtp, target.username, target.password.reveal())
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise SendError(
                f"The relay {target.describe()} refused the login ({exc.smtp_code})",
                "Check the user name and password in DISPATCH_SMTP_URL (percent-encode "
                "special characters).",
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            smtp.close()
            raise SendError(
                f"The relay {target.describe()} does not support login",
                "Remove the user and password from DISPATCH_SMTP_URL, or use smtps:// or a "
                "relay that offers STARTTLS.",
            ) from exc
        except ssl.SSLError as exc:
            smtp.close()
            raise SendError(
                f"TLS with the relay {target.describe()} failed: {exc.reason or exc}",
                "Check the host name and certificate; for a local relay with a self-made "
                "certificate add ?verify=false to DISPATCH_SMTP_URL.",
            ) from exc
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp

    @property
    def is_open(self) -> bool:
        return self._smtp is not None and self._smtp.sock is not None

    def close(self) -> None:
        """QUIT politely when possible; a dead connection is just dropped."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if smtp.sock is not None:
                smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    # -- sending ------------------------------------------------------------------------

    def send(self, sender: str, recipient: str, data: bytes) -> DeliveryStatus:
        """Hand one message for one envelope recipient to the relay and return its verdict."""
        if not self.is_open:
            try:
                self.open()
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                return _lost(f"cannot connect to {self.target.describe()}: {_reason(exc)}")
        smtp = self._smtp
        assert smtp is not None
        options: list[str] = []
        if not (sender.isascii() and recipient.isascii()):
            if not smtp.has_extn("smtputf8"):
                return DeliveryStatus(
                    Outcome.PERMANENT,
                    0,
                    "the relay does not support SMTPUTF8, needed for this non-ASCII address",
                )
            options.append("SMTPUTF8")
        try:
            status = _transaction(smtp, sender, recipient, data, options)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return _lost(f"connection lost: {_reason(exc)}")
        if status.outcome == Outcome.SENT:
            self.messages_sent += 1
        if not self.is_open or status.code == 421:  # the server is closing the connection
            self._drop()
            return DeliveryStatus(status.outcome, status.code, status.reply, connection_lost=True)
        return status


def _transaction(
    smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes, options: list[str]
) -> DeliveryStatus:
    """MAIL, RCPT, DATA for one recipient; the verdict of the first command that refuses.

    Like ``smtplib.sendmail`` but with dot-stuffing done by ``bytes.replace`` instead of a
    regular expression over the whole message, which held the GIL for most of a message's
    CPU time and capped several threads at the speed of one.
    """
    smtp.ehlo_or_helo_if_needed()
    mail_options = []
    if smtp.does_esmtp:
        if smtp.has_extn("size"):
            mail_options.append(f"SIZE={len(data)}")
        mail_options.extend(options)
    for command in ("mail", "rcpt", "data"):
        if command == "mail":
            code, reply = smtp.mail(sender, mail_options)
            ok = code == 250
        elif command == "rcpt":
            code, reply = smtp.rcpt(recipient)
            ok = code in (250, 251)
        else:
            code, reply = smtp.docmd("DATA")
            ok = code == 354
        if not ok:
            if code < 400:  # a reply that makes no sense here: not delivered, try again later
                smtp.rset()
                return DeliveryStatus(Outcome.TEMPORARY, code, f"unexpected reply to {command}")
            if code != 421:
                smtp.rset()
            return _from_code(code, reply)
    payload = data.replace(b"\n.", b"\n..")
    if payload.startswith(b"."):
        payload = b"." + payload
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    smtp.send(payload + b".\r\n")
    code, reply = smtp.getreply()
    return _from_code(code, reply)


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """Log in with the relay's best mechanism, once: a refused password is not retried with
    another mechanism (smtplib's ``login`` does that, and some servers then stall)."""
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = smtp.esmtp_features["auth"].upper().split()
    mechanism = next((m for m in ("CRAM-MD5", "PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPNotSupportedError("No suitable authentication method found.")
    smtp.user, smtp.password = user, password
    authobject = getattr(smtp, "auth_" + mechanism.lower().replace("-", "_"))
    smtp.auth(mechanism, authobject, initial_response_ok=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:300]


def check_relay(target: SmtpTarget, timeout: float = 30.0) -> None:
    """Connect, greet, log in and quit: a clear SendError now rather than N failed recipients."""
    conn = SmtpConnection(target, timeout)
    started = time.monotonic()
    try:
        conn.open()
    except (OSError, smtplib.SMTPException) as exc:
        waited = time.monotonic() - started
        raise SendError(
            f"Cannot reach the relay {target.describe()}: {_reason(exc)} (after {waited:.1f} s)",
            "Check DISPATCH_SMTP_URL and that the relay is running; nothing was sent, rerun to "
            "resume.",
        ) from exc
    conn.close()
