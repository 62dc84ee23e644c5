"""Spam complaints: feedback-loop reports (ARF, RFC 5965) and Microsoft JMRP's older shape.

An ARF report is ``multipart/report; report-type=feedback-report`` with a
``message/feedback-report`` part (``Feedback-Type: abuse`` for "this is spam") and the
complained-of message, whole (message/rfc822) or its headers (text/rfc822-headers). Mailbox
providers redact the reader's address (AOL, Yahoo) or leave it out, so the original message's
``Message-ID`` and ``List-Unsubscribe`` token are what identify the reader; ``Original-Rcpt-To``
and ``X-HmXmrOriginalRecipient`` (Microsoft) are read when present. Microsoft's JMRP has also
sent the message attached to a plain mail, marked by ``X-HmXmrOriginalRecipient``: that counts as
an abuse report too. The standard library's email parser does the MIME work; the ARF packages
on PyPI (arf-mime) only wrap it and are unmaintained.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.utils import getaddresses

from dispatch.bounces.parse import decode_text, header_text, message_key, one_line

ABUSE = "abuse"

_TOKEN_IN_URL = re.compile(r"/u/([A-Za-z0-9_-]{16,200})(?![A-Za-z0-9_-])")
_TOKEN_IN_MAILTO = re.compile(
    r"unsubscribe(?:%20|\+|\s)+([A-Za-z0-9_-]{16,200})(?![A-Za-z0-9_-])", re.I
)


@dataclass(frozen=True)
class Complaint:
    """A feedback-loop report about one message Dispatch (or someone) sent."""

    message_key: str  # the report's own Message-ID, else a hash of its bytes
    feedback_type: str  # lower-cased: "abuse", "not-spam", "fraud", "virus", "other", ...
    reporter: str  # the report's User-Agent or Reporting-MTA, one line, for the summary
    original_message_id: str | None
    recipients: tuple[str, ...]  # addresses the report names as the reader's, lower-cased
    tokens: tuple[str, ...]  # unsubscribe tokens in the original's List-Unsubscribe

    @property
    def is_abuse(self) -> bool:
        return self.feedback_type == ABUSE


def _as_message(part: Message) -> Message | None:
    """A message/* or text/rfc822-headers part's content as a Message (headers at least)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        inner = payload[0] if payload else None
        return inner if isinstance(inner, Message) else None
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    text = decode_text(data, part.get_content_charset())
    return email.message_from_string(text.lstrip(), policy=policy.compat32)


def _feedback_fields(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            return _as_message(part)
    return None


def _original(msg: Message) -> Message | None:
    """The complained-of message (or its headers) included in the report."""
    for part in msg.walk():
        if part is msg:
            continue
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            found = _as_message(part)
            if found is not None and found.keys():
                return found
    return None


def _addresses(*values: object) -> list[str]:
    found = []
    for value in values:
        if value is None:
            continue
        text = one_line(header_text(value))
        if ";" in text and "@" in text.split(";", 1)[1]:  # "rfc822; addr" as in DSN fields
            text = text.split(";", 1)[1]
        for _, address in getaddresses([text]):
            if "@" in address:
                found.append(address.strip().lower())
    return found


def _tokens(original: Message | None) -> tuple[str, ...]:
    if original is None:
        return ()
    found: list[str] = []
    for value in original.get_all("list-unsubscribe") or []:
        text = one_line(value)
        for pattern in (_TOKEN_IN_URL, _TOKEN_IN_MAILTO):
            found += [t for t in pattern.findall(text) if t not in found]
    return tuple(found)


def read_complaint(msg: Message, raw: bytes) -> Complaint | None:
    """The complaint in ``msg``, or None when it is no feedback report."""
    report = _feedback_fields(msg)
    original = _original(msg)
    is_arf = report is not None or (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type") or "").lower() == "feedback-report"
    )
    jmrp = original is not None and original.get("x-hmxmroriginalrecipient") is not None
    if not is_arf and not jmrp:
        return None
    if report is not None:
        feedback_type = one_line(report.get("feedback-type")).lower()
        reporter = one_line(report.get("user-agent") or report.get("reporting-mta"))
        recipients = _addresses(*(report.get_all("original-rcpt-to") or []))
    else:  # JMRP's own shape, or an ARF report whose machine-readable part is missing
        feedback_type = ABUSE if jmrp else ""
        reporter = "Microsoft JMRP" if jmrp else ""
        recipients = []
    original_id = None
    if original is not None:
        recipients += _addresses(original.get("x-hmxmroriginalrecipient"), original.get("to"))
        original_id = one_line(original.get("message-id")) or None
    return Complaint(
        message_key=message_key(msg, raw),
        feedback_type=feedback_type,
        reporter=(reporter or one_line(header_text(msg.get("from"))))[:200],
        original_message_id=original_id,
        recipients=tuple(dict.fromkeys(recipients)),
        tokens=_tokens(original),
    )
