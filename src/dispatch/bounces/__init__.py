"""Bounces: delivery status notifications read from a mailbox and classified (flufl.bounce).

``parse`` says whether a message is a bounce, hard or soft, for which address and which of
Dispatch's messages; ``mailboxes`` reads Maildir, mbox and IMAP. Matching to the ledger and
suppressing subscribers is the job of ``dispatch.jobs.bounces``.
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
