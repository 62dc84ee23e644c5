"""MIME assembly: one personal message in about a millisecond, from parts built once per issue.

Per variant (persona) everything that is the same for every reader is prepared once: the
headers, the MIME skeleton, and the quoted-printable encoding of every body line without a
placeholder (QP encodes each line on its own, so pre-encoded lines can be joined with lines
encoded per recipient). Per recipient only the lines holding placeholders are filled in and
encoded, and the personal headers (To, Message-ID, List-Unsubscribe) are added. The result is
CRLF bytes ready for SMTP, with no line starting with a dot (nothing to dot-stuff):
multipart/alternative, text/plain then text/html, UTF-8. Header values are stripped of line
breaks, then encoded (RFC 2047 for non-ASCII), so nothing a reader or an article supplies can
add a header.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import html
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path
from urllib.parse import quote

from dispatch.errors import ConfigError, RenderError
from dispatch.models import PLACEHOLDERS, Persona, RenderedVariant
from dispatch.render.i18n import LANGUAGE_MARK, translations
from dispatch.render.placeholders import greeting_for

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_PLACEHOLDER = re.compile("|".join(re.escape(m) for m in PLACEHOLDERS.values()))
_KEY_OF = {marker: key for key, marker in PLACEHOLDERS.items()}
_ATOM_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


def clean_header_value(value: str) -> str:
    """One line of text: line breaks and control characters become single spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def encode_header_text(value: str) -> str:
    """An unstructured header value (Subject), folded and RFC 2047-encoded when not ASCII."""
    value = clean_header_value(value)
    charset = "us-ascii" if value.isascii() and "=?" not in value else "utf-8"
    return Header(value, charset, header_name="Subject").encode(linesep="\r\n", maxlinelen=78)


def format_mailbox(name: str, address: str) -> str:
    """``"Name" <addr>`` with the name quoted or encoded; the address as given (validated)."""
    name = clean_header_value(name)
    address = clean_header_value(address).replace(" ", "")
    if not address.isascii():  # only SMTPUTF8 carries these; refuse rather than send raw bytes
        raise ValueError(f"the address {address} is not ASCII (it needs SMTPUTF8)")
    if not name:
        return address
    if name.isascii() and "=?" not in name:
        return formataddr((name, address))
    encoded = Header(name, "utf-8").encode(linesep="\r\n", maxlinelen=78)
    return f"{encoded} <{address}>"


def encode_list_id(value: str) -> str:
    """``"Outlet" <id>`` with a non-ASCII outlet name RFC 2047-encoded (the id is ASCII)."""
    value = clean_header_value(value)
    if value.isascii():
        return value
    phrase, _, rest = value.rpartition("<")
    phrase = phrase.strip().strip('"').strip()
    encoded = Header(phrase, "utf-8").encode(linesep="\r\n", maxlinelen=78)
    return f"{encoded} <{rest}"


@dataclass(frozen=True)
class MessageConfig:
    """The outlet's sending identity and link bases (built from Settings by the send job)."""

    from_name: str
    from_address: str
    reply_to: str = ""
    list_id: str = ""  # full header value, e.g. '"Outlet" <digest.outlet.org>'
    public_url: str = ""
    payment_link: str = ""
    prefill_email: bool = True
    unsubscribe_mailto: str = ""
    secret: bytes = b""
    list_mail: bool = True  # False for one-off mail (a signup confirmation): no List-* headers
    greeting: str = "first"  # DISPATCH_GREETING: first, full or none
    language: str = "en"  # DISPATCH_LANGUAGE: the greeting's language in unmarked variants
    locale_dir: Path | None = None  # DISPATCH_LOCALE_DIR: the outlet's own catalogs

    @property
    def from_domain(self) -> str:
        return self.from_address.rpartition("@")[2].lower() or "localhost"


@dataclass(frozen=True)
class Recipient:
    """One reader's copy: ``key`` makes the Message-ID (the ledger row id, or a test key)."""

    email: str
    name: str = ""
    token: str = ""  # the donation token (client_reference_id)
    unsub_token: str = ""
    key: str = ""
    first_name: str = ""  # greeted by it when DISPATCH_GREETING is first (the default)
    manage_url: str = ""  # a monthly donor's signed manage link (issue 11); else the donate link


# A compiled body: pre-encoded bytes, or a line to fill (literal text and placeholder keys).
_Line = list[tuple[bool, str]]


def _compile_body(body: str) -> list[bytes | _Line]:
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not body.endswith("\n"):
        body += "\n"
    out: list[bytes | _Line] = []
    static: list[str] = []

    def flush() -> None:
        if static:
            out.append(_qp("".join(static)))
            static.clear()

    # Only \n ends a line: str.splitlines also splits on U+2028, \x0b, \x0c, ... which would
    # leave a quoted-printable line without its line break.
    parts = body.split("\n")
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    for line in lines:
        if "%%DISPATCH_" not in line or not _PLACEHOLDER.search(line):
            static.append(line)
            continue
        flush()
        pieces: _Line = []
        pos = 0
        for match in _PLACEHOLDER.finditer(line):
            pieces.append((False, line[pos : match.start()]))
            pieces.append((True, _KEY_OF[match.group(0)]))
            pos = match.end()
        pieces.append((False, line[pos:]))
        out.append(pieces)
    flush()
    return out


def _qp(text: str) -> bytes:
    """Quoted-printable of LF text, with CRLF line ends (binascii: C speed).

    A dot at the start of a line is written ``=2E`` (legal QP for any octet), so no line of a
    body ever starts with a dot and SMTP's dot-stuffing has nothing to do: the mailer then
    skips its pass over the whole message. ``text`` always starts at a line start.
    """
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    if encoded.startswith(b".") or b"\n." in encoded:
        encoded = b"\n".join(_no_leading_dot(line) for line in encoded.split(b"\n"))
    return encoded.replace(b"\n", b"\r\n")


def _no_leading_dot(line: bytes) -> bytes:
    """One QP line with a leading dot written ``=2E``, split by soft breaks to stay within
    76 characters (a continuation may start with a dot again)."""
    parts = []
    while line.startswith(b"."):
        line = b"=2E" + line[1:]
        if len(line) <= 76:
            break
        cut = 75
        escape = line.rfind(b"=", cut - 2, cut)  # never split an =XX escape
        if escape != -1:
            cut = escape
        parts.append(line[:cut] + b"=")
        line = line[cut:]
    parts.append(line)
    return b"\n".join(parts)


_date_cache: tuple[int, bytes] = (0, b"")


def _now_date() -> bytes:
    """The Date header value for now, zone "+0000" (RFC 5322 calls "GMT" obsolete), formatted
    once per second, not once per message."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        moment = datetime.fromtimestamp(second, UTC)
        _date_cache = (second, format_datetime(moment).encode())
    return _date_cache[1]


def _fill(compiled: list[bytes | _Line], values: Mapping[str, str]) -> bytes:
    chunks: list[bytes] = []
    for item in compiled:
        if isinstance(item, bytes):
            chunks.append(item)
        else:
            chunks.append(_qp("".join(values[v] if is_key else v for is_key, v in item)))
    return b"".join(chunks)


@dataclass
class _Variant:
    head: bytes  # headers shared by every copy (From, Subject, List-Id, MIME-Version, ...)
    subject: str | None  # set when the subject itself holds placeholders
    text: list[bytes | _Line]
    html: list[bytes | _Line]
    boundary: str
    gettext: Callable[[str], str]  # the variant's language, for the greeting


class MessageFactory:
    """Builds each recipient's finished message for one issue from its stored variants."""

    def __init__(
        self, issue_id: str, variants: Mapping[str, RenderedVariant], config: MessageConfig
    ) -> None:
        if not variants:
            raise RenderError(
                f"Issue {issue_id} has no rendered variants", "Run `dispatch build` first."
            )
        self.issue_id = issue_id
        self.config = config
        self._mid_issue = _ATOM_UNSAFE.sub("-", issue_id) or "issue"
        self.needs_donate_url = any(
            PLACEHOLDERS["DONATE_URL"] in v.html + v.text + v.subject for v in variants.values()
        )
        if self.needs_donate_url and not (config.public_url or config.payment_link):
            raise ConfigError(
                "DISPATCH_PAYMENT_LINK is not set, and the issue has donation links",
                "Set DISPATCH_PAYMENT_LINK to your Stripe Payment Link (see `dispatch donations "
                "setup`), or DISPATCH_PUBLIC_URL when the web service runs.",
            )
        #: Subscriber id -> signed manage-your-monthly-gift link, filled by the job that knows.
        self.manage_urls: Mapping[int, str] = {}
        self._variants = {name: self._prepare(name, v) for name, v in variants.items()}
        self._fallback = (
            Persona.NON_DONOR.value
            if Persona.NON_DONOR.value in self._variants
            else sorted(self._variants)[0]
        )

    # -- once per variant ---------------------------------------------------------------

    def _prepare(self, name: str, variant: RenderedVariant) -> _Variant:
        cfg = self.config
        lang = name.partition(LANGUAGE_MARK)[2] or cfg.language
        lines = [f"From: {format_mailbox(cfg.from_name, cfg.from_address)}"]
        subject_template = None
        if _PLACEHOLDER.search(variant.subject):
            subject_template = clean_header_value(variant.subject)
        else:
            lines.append(f"Subject: {encode_header_text(variant.subject)}")
        if cfg.reply_to:
            lines.append(f"Reply-To: {clean_header_value(cfg.reply_to)}")
        if cfg.list_id:
            lines.append(f"List-Id: {encode_list_id(cfg.list_id)}")
        if cfg.public_url.startswith("https://"):  # RFC 8058: one-click only over https
            lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        lines.append("MIME-Version: 1.0")
        boundary = f"=_dispatch_{secrets.token_hex(12)}"  # "=_" never occurs in QP text
        return _Variant(
            head=("\r\n".join(lines) + "\r\n").encode("utf-8"),
            subject=subject_template,
            text=_compile_body(variant.text),
            html=_compile_body(variant.html),
            boundary=boundary,
            gettext=translations(lang, cfg.locale_dir).gettext,
        )

    # -- per recipient ------------------------------------------------------------------

    def message_id(self, key: str) -> str:
        digest = hmac.new(
            self.config.secret, f"{self.issue_id}\0{key}".encode(), hashlib.sha256
        ).hexdigest()[:12]
        local = f"{self._mid_issue}.{_ATOM_UNSAFE.sub('-', key)}.{digest}"
        return f"<{local}@{self.config.from_domain}>"

    def donate_url(self, recipient: Recipient) -> str:
        cfg = self.config
        if cfg.public_url:
            return f"{cfg.public_url.rstrip('/')}/d/{recipient.token}"
        if not cfg.payment_link:
            return ""
        sep = "&" if "?" in cfg.payment_link else "?"
        url = f"{cfg.payment_link}{sep}client_reference_id={recipient.token}"
        if cfg.prefill_email:
            url += "&prefilled_email=" + quote(recipient.email, safe="")
        return url

    def unsubscribe_mailto(self, recipient: Recipient) -> str:
        address = self.config.unsubscribe_mailto or self.config.from_address
        return f"mailto:{address}?subject=" + quote(f"unsubscribe {recipient.unsub_token}", safe="")

    def unsubscribe_url(self, recipient: Recipient) -> str:
        if self.config.public_url:
            return f"{self.config.public_url.rstrip('/')}/u/{recipient.unsub_token}"
        return self.unsubscribe_mailto(recipient)

    def build(self, persona: str, recipient: Recipient, date: str | None = None) -> bytes:
        """The finished message for one reader (CRLF bytes)."""
        variant = (
            self._variants.get(persona)
            or self._variants.get(persona.partition(LANGUAGE_MARK)[0])
            or self._variants[self._fallback]
        )
        name = clean_header_value(recipient.name)
        greeting = greeting_for(name, recipient.first_name, self.config.greeting, variant.gettext)
        plain = {
            "GREETING": greeting,
            "NAME": name,
            "EMAIL": recipient.email,
            "DONATE_URL": self.donate_url(recipient),
            "UNSUBSCRIBE_URL": self.unsubscribe_url(recipient),
        }
        plain["MANAGE_URL"] = recipient.manage_url or plain["DONATE_URL"]
        escaped = {k: html.escape(v, quote=True) for k, v in plain.items()}
        head = [
            b"Date: ",
            date.encode() if date else _now_date(),
            b"\r\n",
            variant.head,
            b"To: ",
            format_mailbox(name, recipient.email).encode("utf-8"),
            b"\r\n",
        ]
        if variant.subject is not None:
            subject = _PLACEHOLDER.sub(lambda m: plain[_KEY_OF[m.group(0)]], variant.subject)
            head += [b"Subject: ", encode_header_text(subject).encode(), b"\r\n"]
        head += [
            b"Message-ID: ",
            self.message_id(recipient.key or recipient.email).encode(),
        ]
        if self.config.list_mail:
            head += [b"\r\nList-Unsubscribe: <", self.unsubscribe_mailto(recipient).encode(), b">"]
            if self.config.public_url:
                head += [b",\r\n <", self.unsubscribe_url(recipient).encode(), b">"]
        b = variant.boundary.encode()
        return b"".join(
            [
                *head,
                b'\r\nContent-Type: multipart/alternative; boundary="',
                b,
                b'"\r\n\r\n',
                b"--",
                b,
                b'\r\nContent-Type: text/plain; charset="utf-8"\r\n'
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                _fill(variant.text, plain),
                b"--",
                b,
                b'\r\nContent-Type: text/html; charset="utf-8"\r\n'
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                _fill(variant.html, escaped),
                b"--",
                b,
                b"--\r\n",
            ]
        )
