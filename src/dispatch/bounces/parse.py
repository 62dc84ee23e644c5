"""Reading one bounce: is it a delivery failure, hard or soft, for whom, and for which message.

flufl.bounce's detectors decide whether a message is a bounce and for which addresses (RFC 3464
DSNs and the many non-standard formats: Exim, qmail, old Postfix, Exchange, ...). A detector
reports a failure as permanent or temporary from the DSN's ``Action`` alone, so the
per-recipient ``Status`` (RFC 3463 enhanced code) refines it: ``Action: failed`` with
``Status: 4.2.2`` (a full mailbox the relay gave up on) is a soft bounce, not a hard one. For
non-DSN formats the enhanced status code next to the address decides the same way. Formats
flufl.bounce lacks (DragonFly's dma) are read by ``bounces.detectors``; where a flufl detector
trips over a malformed message, the RFC 3464 fields decide.

Mail is not trusted to be well formed: charsets Python lacks (``iso-8859-8-i``,
``unknown-8bit``) decode leniently, a multipart with a missing boundary is read as text, and
only an empty file or one without any header is refused (``InputError``).

The original message is found through its ``Message-ID`` (in a message/rfc822 or
text/rfc822-headers part, or a copy quoted in plain text); Dispatch's ids look like
``<{issue}.{delivery id}.{hmac}@{domain}>``.
"""

from __future__ import annotations

import email
import email.header
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import Message

from flufl.bounce import all_failures

from dispatch.bounces.detectors import DragonFly
from dispatch.errors import InputError

HARD, SOFT = "hard", "soft"

#: Messages larger than this are not run through flufl.bounce's heuristic detectors, which try
#: dozens of patterns on every body line (a 30 MB reply took 38 s): a bounce of a Dispatch
#: message, even quoting it whole, is some 100 KB. Their RFC 3464 fields are still read.
HEURISTICS_LIMIT = 1_000_000

# flufl.bounce logs a detector's exception with its traceback before re-raising it; the caller
# handles the exception, so the log record must not reach the terminal through logging's
# last-resort handler.
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_MESSAGE_ID_LINE = re.compile(r"^Message-I[Dd]:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.M | re.I)
_DISPATCH_ID = re.compile(
    r"^<(?P<issue>[^.<>@]+)\.(?P<key>[^.<>@]+)\.(?P<mac>[0-9a-f]{6,64})@"
    r"(?P<domain>[^<>@\s]+)>$"
)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Failure:
    """One failed recipient of one bounce."""

    address: str  # lower-cased
    kind: str  # "hard" | "soft"
    status: str  # enhanced status code like "5.1.1", or ""
    diagnostic: str  # the remote server's words, one line


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification as Dispatch needs it."""

    message_key: str  # the DSN's own Message-ID, else a hash of its bytes
    failures: tuple[Failure, ...]
    original_message_id: str | None  # the bounced message's Message-ID, when quoted


@dataclass(frozen=True)
class DispatchMessageId:
    """The parts of a Message-ID Dispatch wrote: ``<issue.key.mac@domain>``."""

    issue: str  # the issue id with characters unsafe in a Message-ID replaced by '-'
    key: str  # the ledger row id, or a test send's key
    mac: str
    domain: str

    @property
    def delivery_id(self) -> int | None:
        return int(self.key) if self.key.isdigit() else None

    def is_signed_for(self, secret: bytes, issue_id: str) -> bool:
        """Whether the id's HMAC is the one Dispatch made for ``issue_id`` with ``secret``
        (as ``render.message.MessageFactory.message_id`` computes it)."""
        digest = hmac.new(secret, f"{issue_id}\0{self.key}".encode(), hashlib.sha256)
        return hmac.compare_digest(digest.hexdigest()[: len(self.mac)], self.mac) and (
            len(self.mac) >= 12
        )


def parse_dispatch_message_id(value: str | None) -> DispatchMessageId | None:
    if not value:
        return None
    match = _DISPATCH_ID.match(value.strip())
    if not match:
        return None
    return DispatchMessageId(**match.groupdict())


def read_message(raw: bytes) -> Message:
    """The parsed message; an empty file or one with no header at all is not mail."""
    if not raw.strip():
        raise InputError("The message is empty", "It was set aside; delete it.")
    try:
        msg = email.message_from_bytes(raw, policy=policy.compat32)
    except Exception as exc:  # the email package raises assorted errors on broken input
        raise InputError(
            f"The message cannot be parsed: {exc}", "It was set aside; look at it by hand."
        ) from exc
    if not msg.keys():
        raise InputError(
            "The message has no mail headers (not an email)",
            "It was set aside; look at it by hand.",
        )
    return msg


_ISO_VARIANT = re.compile(r"^(iso-?8859-\d+)-[ie]$")  # RFC 1556 Hebrew/Arabic -i/-e: same bytes


def decode_text(data: bytes, charset: str | None) -> str:
    """``data`` as text in ``charset``, leniently: an unknown or misused charset (unknown-8bit,
    x-unknown, iso-8859-8-i, a bytes codec like base64) falls back to UTF-8, bad bytes replaced."""
    name = _ISO_VARIANT.sub(r"\1", (charset or "utf-8").strip().strip('"').lower())
    try:
        return data.decode(name, "replace")
    except (LookupError, TypeError, ValueError):
        return data.decode("utf-8", "replace")


def header_text(value: object) -> str:
    """A header's text with RFC 2047 encoded words decoded leniently (see ``decode_text``)."""
    if value is None:
        return ""
    text = str(value)
    try:
        chunks = email.header.decode_header(text)
    except Exception:  # a malformed encoded word: keep the raw text
        return text
    return "".join(c if isinstance(c, str) else decode_text(c, cs) for c, cs in chunks)


def one_line(value: object) -> str:
    return _SPACE.sub(" ", str(value or "")).strip()


def _dsn_blocks(msg: Message) -> dict[str, tuple[str, str, str]]:
    """Per-recipient (Status, Diagnostic-Code, Action) from every message/delivery-status part."""
    found: dict[str, tuple[str, str, str]] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            if not isinstance(block, Message):
                continue
            recipient = one_line(block.get("final-recipient") or block.get("original-recipient"))
            if not recipient:
                continue
            address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
            found.setdefault(
                address,
                (
                    one_line(block.get("status")),
                    one_line(block.get("diagnostic-code")).split(";", 1)[-1].strip(),
                    one_line(block.get("action")).lower(),
                ),
            )
    return found


def _is_text(part: Message) -> bool:
    maintype = part.get_content_maintype()
    return maintype == "text" or (maintype == "multipart" and not part.is_multipart())


def _text_of(msg: Message) -> str:
    """All text/* parts, decoded leniently (bounce bodies are often mislabelled); a multipart
    whose boundary is missing is read as the text it then is."""
    chunks = []
    for part in msg.walk():
        if not _is_text(part):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            chunks.append(decode_text(payload, part.get_content_charset()))
    return "\n".join(chunks)


def _diagnostic_near(text: str, address: str, others: set[str]) -> tuple[str, str]:
    """(enhanced status, diagnostic) from a plain-text bounce: the first code on the failed
    address's line or the few after it (then the two before), never past a line naming
    another failed address (``others``); with no others, else the first code in the text."""
    lines = text.splitlines()
    lowered = [line.lower() for line in lines]
    near = [i for i, line in enumerate(lowered) if address in line]

    def own(i: int) -> bool:
        return not any(other in lowered[i] for other in others)

    windows = []
    for i in near:
        after = []
        for j in range(i, min(len(lines), i + 4)):
            if j > i and not own(j):
                break
            after.append(j)
        before = []
        for j in range(i - 1, max(-1, i - 3), -1):
            if not own(j):
                break
            before.append(j)
        windows.append(after + before)
    if not others:
        windows.append(list(range(len(lines))))
    for window in windows:
        for i in window:
            match = _ENHANCED.search(lines[i])
            if match:
                context = " ".join(lines[max(0, i - 1) : i + 2]) if i in near else lines[i]
                return ".".join(match.groups()), one_line(context)[:500]
    return "", ""


def original_message_id(msg: Message) -> str | None:
    """The bounced message's Message-ID: from an attached copy, its headers, or quoted text."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("message-id"):
                return one_line(inner["message-id"])
        elif ctype in ("text/rfc822-headers", "text/plain") or (
            _is_text(part) and part.get_content_maintype() == "multipart"
        ):
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            text = decode_text(payload, part.get_content_charset())
            # A copy quoted in text: take a Dispatch-shaped id first, then any.
            ids: list[str] = _MESSAGE_ID_LINE.findall(text)
            for candidate in ids:
                if parse_dispatch_message_id(candidate):
                    return candidate
            if ids and ctype == "text/rfc822-headers":
                return ids[0]
    return None


def message_key(msg: Message, raw: bytes) -> str:
    own = one_line(msg.get("message-id"))
    if own:
        return own[:500]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def classify(raw: bytes) -> Bounce | None:
    """The bounce in ``raw``, or None when it is not one (an auto-reply, a person's mail)."""
    msg = read_message(raw)
    return classify_message(msg, raw)


def classify_message(msg: Message, raw: bytes) -> Bounce | None:
    """``classify`` for a message already parsed (``raw`` gives the key when it has no id)."""
    blocks = _dsn_blocks(msg)
    if len(raw) > HEURISTICS_LIMIT:  # the DSN fields alone: see HEURISTICS_LIMIT
        temporary, permanent = _acted(blocks, "delayed"), _acted(blocks, "failed")
    else:
        temporary, permanent = _failed_addresses(msg, blocks)
    if not temporary and not permanent:
        return None
    text = None
    failures: list[Failure] = []
    addresses = {a.decode("ascii", "replace").strip().lower() for a in temporary | permanent}
    for raw_address, default_kind in [(a, SOFT) for a in sorted(temporary)] + [
        (a, HARD) for a in sorted(permanent)
    ]:
        address = raw_address.decode("ascii", "replace").strip().lower()
        if any(f.address == address for f in failures):
            continue
        if address in blocks:
            status, diagnostic, _ = blocks[address]
        else:
            if text is None:
                text = _text_of(msg)
            status, diagnostic = _diagnostic_near(text, address, addresses - {address})
        # A permanent failure whose status says "temporary" (4.x.x) is soft; never the reverse.
        kind = SOFT if status.startswith("4") else default_kind
        failures.append(Failure(address, kind, status, diagnostic[:500]))
    return Bounce(message_key(msg, raw), tuple(failures), original_message_id(msg))


def _failed_addresses(
    msg: Message, blocks: dict[str, tuple[str, str, str]]
) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """(temporary, permanent) failed addresses: flufl.bounce's detectors, then ours for formats
    it lacks, or where one of them trips over a malformed message, the RFC 3464 blocks."""
    if not one_line(msg.get("from")):
        # flufl's Yale detector indexes the From address; with none it raises IndexError.
        del msg["From"]
        msg["From"] = "<>"
    try:
        temporary, permanent = all_failures(msg)
        if temporary or permanent:
            return temporary, permanent
        return DragonFly().process(msg)  # formats flufl.bounce lacks (bounces.detectors)
    except Exception:  # a detector's bug on odd input; the DSN fields still say what failed
        return _acted(blocks, "delayed"), _acted(blocks, "failed")


def _acted(blocks: dict[str, tuple[str, str, str]], action: str) -> frozenset[bytes]:
    """The addresses whose RFC 3464 block has this ``Action`` (failed, delayed)."""
    return frozenset(a.encode("ascii", "replace") for a, b in blocks.items() if b[2] == action)


#: The subject of the List-Unsubscribe mailto Dispatch puts in every copy: "unsubscribe <token>".
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*(?:re:\s*)?unsubscribe\s+([A-Za-z0-9_-]{16,200})\s*$", re.I)


def unsubscribe_token(raw: bytes) -> str | None:
    """The unsubscribe token of a List-Unsubscribe mailto request, or None for other mail."""
    return unsubscribe_token_of(read_message(raw))


def unsubscribe_token_of(msg: Message) -> str | None:
    """``unsubscribe_token`` for a parsed message (any Subject charset, known or not)."""
    subject = header_text(msg.get("Subject"))
    match = _UNSUBSCRIBE_SUBJECT.match(one_line(subject))
    return match.group(1) if match else None
