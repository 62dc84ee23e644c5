"""Subscriber lists: reading the editor's CSV files and validating addresses (email-validator).

``read_csv`` accepts ``email,name[,tags…]`` with or without a header row, UTF-8 with or without
a BOM, any line endings, quoted fields with commas, quotes and line breaks. Every row is either
a ``CsvRow`` or an ``InvalidRow`` with its physical line number and the reason, so one bad row
never stops the others. Addresses are normalised by email-validator (no DNS look-ups) and then
lower-cased, which is how the store compares them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import TextIO

from email_validator import EmailNotValidError, validate_email

from dispatch.errors import InputError

_HEADER_EMAIL = {"email", "e-mail", "email address", "e-mail address", "mail", "address"}
_HEADER_NAME = {"name", "full name", "fullname", "display name"}
MAX_NAME = 200
MAX_TAG = 100


@dataclass(frozen=True)
class CsvRow:
    line: int
    email: str  # normalised, lower-cased
    name: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class InvalidRow:
    line: int
    email: str
    reason: str


@dataclass
class ParsedList:
    rows: list[CsvRow] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)


def normalize_address(address: str, *, allow_test_domains: bool = False) -> str:
    """The comparable form of an address: email-validator's normalised form, lower-cased.

    Raises InputError with email-validator's reason when the address is not valid.
    ``allow_test_domains`` accepts ``*.test`` (for the outlet's own settings and test copies).
    """
    candidate = address.strip()
    if not candidate:
        raise InputError("The address is empty")
    try:
        result = validate_email(
            candidate, check_deliverability=False, test_environment=allow_test_domains
        )
    except EmailNotValidError as exc:
        raise InputError(f"{candidate!r} is not a valid email address: {exc}") from exc
    if result.ascii_email is None:
        raise InputError(
            f"{candidate!r} has non-ASCII characters before the @, which only relays with "
            "SMTPUTF8 accept; Dispatch does not send to such addresses yet"
        )
    # An internationalised domain is kept in its ASCII (IDNA) form: what SMTP and headers need.
    return result.ascii_email.lower()


def envelope_address(address: str) -> str:
    """The form to give SMTP: the domain in ASCII (IDNA) when the address has a non-ASCII one."""
    if address.isascii():
        return address
    try:
        result = validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return address
    return result.ascii_email or result.normalized


def parse_mailbox(value: str, setting: str) -> tuple[str, str]:
    """Split ``Name <addr>`` (or a bare address) from a setting and validate the address."""
    name, address = parseaddr(value.strip())
    if not address or "@" not in address:
        raise InputError(f"{setting} must be an address such as 'Outlet <news@example.org>'")
    try:
        result = validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InputError(f"{setting} has an invalid address {address!r}: {exc}") from exc
    return " ".join(name.split()), result.normalized


def clean_name(value: str) -> str:
    """One line of plain text: any line breaks, tabs or control characters become spaces."""
    text = "".join(
        " " if (ord(ch) < 32 or ord(ch) == 127 or ch in "\u2028\u2029\x85") else ch for ch in value
    )
    return " ".join(text.split())[:MAX_NAME]


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path} is not UTF-8 text (a byte that UTF-8 cannot have on line {line})",
            "Save the file as UTF-8 (CSV UTF-8 in Excel or LibreOffice) and import it again.",
        ) from exc


def _is_header(cells: list[str]) -> bool:
    first = cells[0].strip().lower() if cells else ""
    return "@" not in first and (
        first in _HEADER_EMAIL or any(c.strip().lower() in _HEADER_EMAIL for c in cells)
    )


def _records(text: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(first physical line, cells) for each CSV record; a malformed record gives its error."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous_end = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield previous_end + 1, exc
            previous_end = reader.line_num
            continue
        start = previous_end + 1
        previous_end = reader.line_num
        yield start, cells


def read_csv(path: Path) -> ParsedList:
    """Parse a subscriber CSV file into lists (see ``iter_csv`` for the streaming form)."""
    parsed = ParsedList()
    for item in iter_csv(path):
        if isinstance(item, InvalidRow):
            parsed.invalid.append(item)
        else:
            parsed.rows.append(item)
    return parsed


def iter_csv(path: Path) -> Iterator[CsvRow | InvalidRow]:
    """Each row of a subscriber CSV file, good or bad, in file order.

    Raises InputError when the file cannot be read, is not UTF-8, or has no subscriber rows.
    Only the addresses seen so far are kept (for duplicates), so a list of a million people
    streams into the store without being held in memory.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}", "Check the path.") from exc
    yield from parse_csv_text(_decode(data, path), str(path))


def parse_csv_text(text: str, label: str = "the file") -> Iterator[CsvRow | InvalidRow]:
    seen: dict[str, int] = {}
    email_col, name_col = 0, 1
    tag_cols: list[int] | None = None
    first = True
    any_row = False
    for line, cells in _records(text):
        if isinstance(cells, csv.Error):
            any_row = True
            yield InvalidRow(line, "", f"malformed CSV: {cells}")
            continue
        if not any(c.strip() for c in cells):
            continue  # blank line
        if first:
            first = False
            if _is_header(cells):
                lowered = [c.strip().lower() for c in cells]
                email_col = next(i for i, c in enumerate(lowered) if c in _HEADER_EMAIL)
                name_col = next((i for i, c in enumerate(lowered) if c in _HEADER_NAME), -1)
                tag_cols = []
                continue
        any_row = True
        raw_email = cells[email_col].strip() if email_col < len(cells) else ""
        name = _from_cell(cells[name_col]) if 0 <= name_col < len(cells) else ""
        if tag_cols is None:
            columns: list[int] | range = range(2, len(cells))
        else:
            columns = [i for i in range(len(cells)) if i not in (email_col, name_col)]
        tags = tuple(
            dict.fromkeys(
                clean_name(_from_cell(cells[i]))[:MAX_TAG]
                for i in columns
                if i < len(cells) and cells[i].strip()
            )
        )
        if not raw_email:
            yield InvalidRow(line, "", "no email address in the row")
            continue
        try:
            email = normalize_address(raw_email)
        except InputError as exc:
            reason = str(exc.__cause__) if exc.__cause__ else exc.message
            yield InvalidRow(line, clean_name(raw_email), reason)
            continue
        if email in seen:
            yield InvalidRow(
                line,
                email,
                f"duplicate of line {seen[email]} (addresses compare case-insensitively)",
            )
            continue
        seen[email] = line
        yield CsvRow(line, email, clean_name(name), tags)
    if not any_row:
        raise InputError(
            f"{label} has no subscriber rows",
            "A subscriber CSV has one row per person: email,name[,tags…] (a header row is "
            "optional).",
        )


#: A cell starting with one of these runs as a formula when the CSV is opened in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _to_cell(value: str) -> str:
    """Names come from signup forms too: quote a would-be formula with a leading apostrophe."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _from_cell(value: str) -> str:
    """Undo ``_to_cell``, so an export imports back unchanged."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_START) else value


def write_csv(rows: Iterator[tuple[str, str, tuple[str, ...]]], out: TextIO) -> int:
    """Write ``email,name,tags…`` (with a header row) in the form ``read_csv`` reads back."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "tags"])
    count = 0
    for email, name, tags in rows:
        writer.writerow([email, _to_cell(name), *(_to_cell(t) for t in tags)])
        count += 1
    return count
