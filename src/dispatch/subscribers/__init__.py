"""Subscriber lists: addresses and names (``addresses``), reading imported files and writing
the export (``csvfile``), and the column layouts of other tools' exports (``exports``)."""

from __future__ import annotations

from dispatch.subscribers.addresses import (
    MAX_NAME,
    clean_name,
    envelope_address,
    normalize_address,
    parse_mailbox,
)
from dispatch.subscribers.csvfile import (
    CsvRow,
    InvalidRow,
    ParsedList,
    SubscriberFile,
    write_csv,
)

__all__ = [
    "MAX_NAME",
    "CsvRow",
    "InvalidRow",
    "ParsedList",
    "SubscriberFile",
    "clean_name",
    "envelope_address",
    "normalize_address",
    "parse_mailbox",
    "write_csv",
]
