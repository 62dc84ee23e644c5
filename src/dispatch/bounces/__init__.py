"""Bounces: delivery status notifications read from a mailbox and classified (flufl.bounce).

``parse`` says whether a message is a bounce, hard or soft, for which address and which of
Dispatch's messages (``detectors`` adds formats flufl.bounce lacks); ``arf`` reads spam
complaints (feedback-loop reports); ``mailboxes`` reads Maildir, mbox and IMAP and sets
messages aside. Matching to the ledger and changing subscribers is ``dispatch.jobs.bounces``.
"""

from dispatch.bounces.mailboxes import (
    ImapSource,
    MaildirSource,
    MboxSource,
    Source,
    open_source,
    parse_imap_url,
)
from dispatch.bounces.parse import (
    HARD,
    SOFT,
    Bounce,
    DispatchMessageId,
    Failure,
    classify,
    parse_dispatch_message_id,
    unsubscribe_token,
)

__all__ = [
    "HARD",
    "SOFT",
    "Bounce",
    "DispatchMessageId",
    "Failure",
    "ImapSource",
    "MaildirSource",
    "MboxSource",
    "Source",
    "classify",
    "open_source",
    "parse_dispatch_message_id",
    "parse_imap_url",
    "unsubscribe_token",
]
