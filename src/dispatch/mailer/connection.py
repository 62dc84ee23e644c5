"""One reused SMTP connection that hands over bytes and reports each recipient's outcome.

The mailer only moves bytes: it never builds or inspects a message. ``send`` never raises for
a recipient's fate (a refusal, a 4xx, a dropped connection): it returns a ``DeliveryStatus``.
It raises ``SendError`` only for what no retry can fix (authentication refused, TLS required
but not offered), so the caller stops the run instead of failing every recipient.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from dispatch.errors import SendError
from dispatch.mailer.rate import is_throttle
from dispatch.mailer.url import SmtpTarget


class Outcome(StrEnum):
    SENT = "sent"
    TEMPORARY = "temporary"  # 4xx, dropped connection, timeout: try again later
    PERMANENT = "permanent"  # 5xx: the server refused this recipient or message
    UNKNOWN = "unknown"  # the message went out but its reply was lost: it may have arrived


@dataclass(frozen=True)
class DeliveryStatus:
    """The server's verdict on one recipient: its code and reply text (0 when none came)."""

    outcome: Outcome
    code: int
    reply: str
    connection_lost: bool = False
    aborted: bool = False  # never sent: the caller's gate said no

    @property
    def throttled(self) -> bool:
        """A temporary reply that asks us to slow down (454 Throttling, 421, rate limits)."""
        return self.outcome == Outcome.TEMPORARY and is_throttle(self.code, self.reply)

    @property
    def hard_bounce(self) -> bool:
        """Refused for good because of the recipient's address (5.1.x, 5.2.1, "user unknown",
        "mailbox unavailable"): the reader is bounced, never mailed again. Other permanent
        refusals (content, size, policy) fail the row but say nothing about the address."""
        return self.outcome == Outcome.PERMANENT and is_hard_bounce(self.code, self.reply)

    @property
    def describe(self) -> str:
        return f"{self.code} {self.reply}".strip() if self.code else self.reply


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    # A relay's reply is outside text: no NUL or other control character goes further.
    return " ".join(_CONTROL_CHARS.sub(" ", reply).split())[:500]


#: Enhanced status codes (RFC 3463) about the recipient's address, not the sender or content:
#: 5.1.x bad destination (but 5.1.7/5.1.8 are the sender's address), 5.2.1 mailbox disabled.
_RECIPIENT_CODE = re.compile(r"\b5\.(1\.([0-69]|1\d)|2\.1)\b")
_RECIPIENT_TEXT = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|address)|"
    r"mailbox (is )?(unavailable|disabled|not found|does not exist)|"
    r"(recipient|address|user|mailbox) (does not exist|not found|rejected)|"
    r"invalid (recipient|mailbox)|account (has been )?disabled",
    re.IGNORECASE,
)
_NOT_RECIPIENT = re.compile(r"\b5\.7\.\d+\b|quota|authenticat|policy|spam", re.IGNORECASE)


#: Addresses a reply quotes (``<x@y>``, ``<x>`` or a bare ``x@y``): a reader named
#: ``sender@…``, ``daily@…`` or ``spam@…`` must not make a reply read as about the sender,
#: the volume or a policy.
_QUOTED_ADDRESS = re.compile(r"<[^>]*>|[^\s<>]+@[^\s<>]+")


def without_addresses(reply: str) -> str:
    """The reply's words with every address it quotes taken out (for matching its text)."""
    return _QUOTED_ADDRESS.sub(" ", reply)


def is_hard_bounce(code: int, reply: str) -> bool:
    """Whether a 5xx reply refuses this recipient's address for good (not policy or quota)."""
    words = without_addresses(reply)
    if not 500 <= code < 600 or _NOT_RECIPIENT.search(words) or _SENDER_TEXT.search(words):
        return False  # "Sender address rejected" is about us, not the reader
    return bool(_RECIPIENT_CODE.search(words) or _RECIPIENT_TEXT.search(words))


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
                    offered = ", ".join(sorted(k.upper() for k in smtp.esmtp_features)) or "none"
                    why = (
                        "Dispatch sends a password only over TLS"
                        if target.username
                        else "DISPATCH_SMTP_URL asks for it (?starttls=require)"
                    )
                    raise SendError(
                        f"The relay {target.describe()} does not offer STARTTLS ({why}); its "
                        f"EHLO offered: {offered}",
                        "Use smtps:// (port 465) or a relay that offers STARTTLS; only for a "
                        "relay on a network you trust, add ?starttls=never to DISPATCH_SMTP_URL "
                        "to send in clear.",
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

    def send(
        self,
        sender: str,
        recipient: str,
        data: bytes,
        gate: Callable[[], bool] | None = None,
        dot_safe: bool = False,
    ) -> DeliveryStatus:
        """Hand one message for one envelope recipient to the relay and return its verdict.

        ``gate`` (optional) is called once the relay has said 354 and before any byte of the
        message goes: the caller commits its ledger there. When it returns False the message
        is not sent (the connection is dropped, which discards the open DATA) and the status
        is temporary with ``aborted`` set. ``dot_safe`` promises that no line of ``data``
        starts with a dot (Dispatch's own messages, see render.message), which saves a pass
        over the whole message.
        """
        if not self.is_open:
            try:
                self.open()
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                return _lost(f"cannot connect to {self.target.describe()}: {_reason(exc)}")
        smtp = self._smtp
        assert smtp is not None
        smtputf8 = not (sender.isascii() and recipient.isascii())
        if smtputf8 and not smtp.has_extn("smtputf8"):
            return DeliveryStatus(
                Outcome.PERMANENT,
                0,
                "the relay does not support SMTPUTF8, needed for this non-ASCII address",
            )
        if _UNSAFE_ADDRESS.search(sender) or _UNSAFE_ADDRESS.search(recipient):
            return DeliveryStatus(Outcome.PERMANENT, 0, "not a valid envelope address")
        try:
            status = _transaction(smtp, sender, recipient, data, smtputf8, gate, dot_safe)
        except _InDoubt as exc:
            self._drop()
            return DeliveryStatus(
                Outcome.UNKNOWN,
                0,
                f"in doubt: the message was sent but the reply was lost ({exc})",
                connection_lost=True,
            )
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            return _lost(f"connection lost: {_reason(exc)}")
        if status.aborted:
            self._drop()
            return status
        if status.outcome == Outcome.SENT:
            self.messages_sent += 1
        if not self.is_open or status.code == 421:  # the server is closing the connection
            self._drop()
            return replace(status, connection_lost=True)
        return status


class _InDoubt(Exception):
    """The whole message and its final dot went out, but no reply came back."""


class RelayRefusedSender(Exception):
    """A permanent refusal that is about the sender, not this recipient (MAIL or DATA refused,
    a sending quota exceeded, login lapsed): failing every reader with it would fail the whole
    list in seconds (listmonk #2273), so the run stops instead and the row stays pending."""

    def __init__(self, status: DeliveryStatus, step: str) -> None:
        super().__init__(f"{status.code} {status.reply}")
        self.status = status
        self.step = step


#: 5xx texts that are about the sender's account or volume, whatever command they answer.
_SENDER_LEVEL = re.compile(
    r"quota|rate limit|too many|sending limit|daily|exceeded|authenticat", re.IGNORECASE
)


#: A RCPT refusal about the envelope sender: Postfix (smtpd_delay_reject=yes) refuses the
#: sender at RCPT, once per reader ("553 5.1.8 <news@x>: Sender address rejected: Domain not
#: found"); 5.1.7/5.1.8 are the sender's address (RFC 3463).
_SENDER_TEXT = re.compile(r"\bsender\b|\b5\.1\.[78]\b", re.IGNORECASE)


def names_sender(reply: str, sender: str) -> bool:
    """Whether a refusal is about the envelope sender: its word or code in the reply's own text
    (not inside a quoted address: a reader may be called sender@…), or its address quoted whole."""
    if _SENDER_TEXT.search(without_addresses(reply)):
        return True
    address = sender.lower()
    if not address:
        return False
    quoted = {q.strip("<>").lower() for q in _QUOTED_ADDRESS.findall(reply)}
    return address in quoted or address.split("@")[0] in quoted


#: What may never appear in an envelope address on the command line.
_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20<>\x7f]")


def _reply(smtp: smtplib.SMTP) -> tuple[int, bytes]:
    return smtp.getreply()


def _rset(smtp: smtplib.SMTP) -> None:
    """Reset after a refusal; a connection that fails to reset is closed (the refusal stands)."""
    try:
        smtp.rset()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _transaction(
    smtp: smtplib.SMTP,
    sender: str,
    recipient: str,
    data: bytes,
    smtputf8: bool,
    gate: Callable[[], bool] | None,
    dot_safe: bool = False,
) -> DeliveryStatus:
    """MAIL, RCPT, DATA for one recipient, then the message; the verdict of the first refusal.

    With PIPELINING (RFC 2920) the three commands go in one write and their replies are read
    together: two round trips per message instead of four. The message is dot-stuffed with
    ``bytes.replace`` and written with its final dot in one ``sendall``. An error before the
    final dot is out is a dropped connection (safe to retry); an error waiting for the reply to
    the final dot raises ``_InDoubt``: the relay may have taken the message.
    """
    smtp.ehlo_or_helo_if_needed()
    mail = f"MAIL FROM:<{sender}>"
    if smtp.does_esmtp:
        if smtp.has_extn("size"):
            mail += f" SIZE={len(data)}"
        if smtputf8:
            mail += " SMTPUTF8"
    encoding = "utf-8" if smtputf8 else "ascii"
    commands = [
        (mail + "\r\n").encode(encoding),
        f"RCPT TO:<{recipient}>\r\n".encode(encoding),
        b"DATA\r\n",
    ]
    sock = smtp.sock
    assert sock is not None
    replies: list[tuple[int, bytes]] = []
    if smtp.does_esmtp and smtp.has_extn("pipelining"):
        sock.sendall(b"".join(commands))
        for _ in commands:
            try:
                replies.append(_reply(smtp))
            except (OSError, smtplib.SMTPException):
                if not replies or replies[-1][0] < 400:
                    raise
                break  # a refusal and then the connection closed: the refusal is the verdict
            if replies[-1][0] == 421:  # "closing": nothing more will come (a throttle, often)
                break
    else:
        for command in commands:
            sock.sendall(command)
            replies.append(_reply(smtp))
            if replies[-1][0] >= 400:
                break
    expected = ((250,), (250, 251), (354,))
    for n, (code, reply) in enumerate(replies):
        if code in expected[n]:
            continue
        if n < 2 and len(replies) == 3 and replies[2][0] == 354:
            # A pipelining server that opened DATA although MAIL or RCPT failed (RFC 2920
            # forbids it): end the empty DATA, which has no valid recipient to go to.
            sock.sendall(b".\r\n")
            _reply(smtp)
        name = ("MAIL", "RCPT", "DATA")[n]
        if code < 400:  # a reply that makes no sense here: not delivered, try again later
            _rset(smtp)
            return DeliveryStatus(Outcome.TEMPORARY, code, f"unexpected reply to {name}")
        if code != 421:
            _rset(smtp)
        status = _from_code(code, reply)
        if status.outcome == Outcome.PERMANENT and (
            n != 1
            or _SENDER_LEVEL.search(without_addresses(status.reply))
            or names_sender(status.reply, sender)
        ):
            raise RelayRefusedSender(status, name)
        return status
    if gate is not None and not gate():
        return DeliveryStatus(Outcome.TEMPORARY, 0, "not sent: stopped", aborted=True)
    payload = data if dot_safe else data.replace(b"\n.", b"\n..")
    if payload.startswith(b"."):
        payload = b"." + payload
    ending = b".\r\n" if payload.endswith(b"\r\n") else b"\r\n.\r\n"
    sock.sendall(payload + ending)
    try:
        code, reply = _reply(smtp)
    except (OSError, smtplib.SMTPException) as exc:
        raise _InDoubt(_reason(exc)) from exc
    if not 200 <= code < 600:  # smtplib's -1 for a garbled code: it may have been taken
        raise _InDoubt(f"an unintelligible reply to the end of the message: {_text(reply)}")
    status = _from_code(code, reply)
    if status.outcome == Outcome.PERMANENT and _SENDER_LEVEL.search(
        without_addresses(status.reply)
    ):
        raise RelayRefusedSender(status, "end of data")
    return status


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
