"""Reading one bounce: is it a delivery failure, hard or soft, for whom, and for which message.

flufl.bounce's detectors decide whether a message is a bounce and for which addresses (RFC 3464
DSNs and the many non-standard formats: Exim, qmail, old Postfix, Exchange, ...). A detector
reports a failure as permanent or temporary from the DSN's ``Action`` alone, so the
per-recipient ``Status`` (RFC 3463 enhanced code) refines it: ``Action: failed`` with
``Status: 4.2.2`` (a full mailbox the relay gave up on) is a soft bounce, not a hard one. For
non-DSN formats the first enhanced status code in the text decides the same way.

The original message is found through its ``Message-ID`` (in a message/rfc822 or
text/rfc822-headers part, or a copy quoted in plain text); Dispatch's ids look like
``<{issue}.{delivery id}.{hmac}@{domain}>``.
"""

from __future__ import annotations

import email
import email.header
import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.message import Message

from flufl.bounce import all_failures

from dispatch.errors import InputError

HARD, SOFT = "hard", "soft"

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_MESSAGE_ID_LINE = re.compile(r"^Message-I[Dd]:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>)", re.M | re.I)
_DISPATCH_ID = re.compile(r"^<(?P<issue>[^.<>@]+)\.(?P<key>[^.<>@]+)\.(?P<mac>[0-9a-f]{6,64})@"
                          r"(?P<domain>[^<>@\s]+)>$")
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


def parse_dispatch_message_id(value: str | None) -> DispatchMessageId | None:
    if not value:
        return None
    match = _DISPATCH_ID.match(value.strip())
    if not match:
        return None
    return DispatchMessageId(**match.groupdict())


def read_message(raw: bytes) -> Message:
    try:
        return email.message_from_bytes(raw, policy=policy.compat32)
    except Exception as exc:  # the email package raises assorted errors on broken input
        raise InputError(f"A mailbox message cannot be parsed: {exc}",
                         "It is left in place; look at it by hand.") from exc


def _one_line(value: object) -> str:
    return _SPACE.sub(" ", str(value or "")).strip()


def _dsn_blocks(msg: Message) -> dict[str, tuple[str, str]]:
    """Per-recipient (Status, Diagnostic-Code) from every message/delivery-status part."""
    found: dict[str, tuple[str, str]] = {}
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            if not isinstance(block, Message):
                continue
            recipient = block.get("final-recipient") or block.get("original-recipient")
            if not recipient:
                continue
            address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
            found.setdefault(address, (_one_line(block.get("status")),
                                       _one_line(block.get("diagnostic-code")).split(";", 1)[-1]
                                       .strip()))
    return found


def _text_of(msg: Message) -> str:
    """All text/* parts, decoded leniently (bounce bodies are often mislabelled)."""
    chunks = []
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            chunks.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(chunks)


def _diagnostic_near(text: str, address: str) -> tuple[str, str]:
    """(enhanced status, diagnostic) from a plain-text bounce: the first code within a few lines
    of the failed address, else the first code anywhere."""
    lines = text.splitlines()
    near = [i for i, line in enumerate(lines) if address in line.lower()]
    windows = [range(max(0, i - 2), min(len(lines), i + 4)) for i in near]
    windows.append(range(len(lines)))
    for window in windows:
        for i in window:
            match = _ENHANCED.search(lines[i])
            if match:
                context = " ".join(lines[max(0, i - 1): i + 2]) if i in near else lines[i]
                return ".".join(match.groups()), _one_line(context)[:500]
    return "", ""


def original_message_id(msg: Message) -> str | None:
    """The bounced message's Message-ID: from an attached copy, its headers, or quoted text."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("message-id"):
                return _one_line(inner["message-id"])
        elif ctype in ("text/rfc822-headers", "text/plain"):
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            text = payload.decode("utf-8", "replace")
            # A copy quoted in text: take a Dispatch-shaped id first, then any.
            ids = _MESSAGE_ID_LINE.findall(text)
            for candidate in ids:
                if parse_dispatch_message_id(candidate):
                    return candidate
            if ids and ctype == "text/rfc822-headers":
                return ids[0]
    return None


def message_key(msg: Message, raw: bytes) -> str:
    own = _one_line(msg.get("message-id"))
    if own:
        return own[:500]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def classify(raw: bytes) -> Bounce | None:
    """The bounce in ``raw``, or None when it is not one (an auto-reply, a person's mail)."""
    msg = read_message(raw)
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return None
    blocks = _dsn_blocks(msg)
    text = None
    failures: list[Failure] = []
    for raw_address, default_kind in [(a, SOFT) for a in sorted(temporary)] + [
        (a, HARD) for a in sorted(permanent)
    ]:
        address = raw_address.decode("ascii", "replace").strip().lower()
        if any(f.address == address for f in failures):
            continue
        if address in blocks:
            status, diagnostic = blocks[address]
        else:
            if text is None:
                text = _text_of(msg)
            status, diagnostic = _diagnostic_near(text, address)
        # A permanent failure whose status says "temporary" (4.x.x) is soft; never the reverse.
        kind = SOFT if status.startswith("4") else default_kind
        failures.append(Failure(address, kind, status, diagnostic[:500]))
    return Bounce(message_key(msg, raw), tuple(failures), original_message_id(msg))


#: The subject of the List-Unsubscribe mailto Dispatch puts in every copy: "unsubscribe <token>".
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*(?:re:\s*)?unsubscribe\s+([A-Za-z0-9_-]{16,200})\s*$", re.I)


def unsubscribe_token(raw: bytes) -> str | None:
    """The unsubscribe token of a List-Unsubscribe mailto request, or None for other mail."""
    msg = read_message(raw)
    subject = str(email.header.make_header(email.header.decode_header(msg.get("Subject", ""))))
    match = _UNSUBSCRIBE_SUBJECT.match(_one_line(subject))
    return match.group(1) if match else None
