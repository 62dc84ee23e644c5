"""Reading subscriber files (charset-normalizer lives here) and writing the export.

``SubscriberFile`` finds the encoding (UTF-8 with or without a BOM, UTF-16, else what
charset-normalizer finds, Windows-1252 first), the delimiter (comma, semicolon or tab) and the
layout (a plain ``email,name[,tags…]`` list with or without a header, a known export, or the
editor's ``--map``). Every record is either a ``CsvRow`` or an ``InvalidRow`` with its first
physical line and the reason. A quote that is never closed (or that swallows what look like
rows of their own, or runs far past a sane length) is an error for its own line, and reading
resumes on the next line, so one stray quote never hides the rows after it.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from charset_normalizer import from_bytes

from dispatch.errors import InputError
from dispatch.models import SubscriberStatus
from dispatch.subscribers import exports
from dispatch.subscribers.addresses import clean_name, normalize_address
from dispatch.subscribers.exports import Layout

MAX_TAG = 100
#: A record may span this many physical lines (a quoted name or note with line breaks) ...
MAX_RECORD_LINES = 20
#: ... and no cell may be longer than this: past either, a quote was left open.
MAX_CELL = 5000
DELIMITERS = (",", ";", "\t")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
#: A swallowed line that looks like a row of its own: an address between delimiters.
_ROW_LIKE = re.compile(r'(?:^|[,;\t])\s*"?[^\s@,;\t"]+@[^\s@,;\t"]+\.[A-Za-z]{2,}"?\s*(?:[,;\t]|$)')


@dataclass(frozen=True)
class CsvRow:
    line: int
    email: str  # normalised, lower-cased
    name: str
    tags: tuple[str, ...] = ()
    first_name: str = ""
    language: str = ""
    status: SubscriberStatus | None = None  # None: the file does not say (a new row is active)
    consent_at: str = ""
    consent_ip: str = ""
    consent_source: str = ""


@dataclass(frozen=True)
class InvalidRow:
    line: int
    email: str
    reason: str


@dataclass
class ParsedList:
    rows: list[CsvRow] = field(default_factory=list)
    invalid: list[InvalidRow] = field(default_factory=list)


class _OpenQuote(Exception):
    """A record ran past MAX_RECORD_LINES."""


class _Lines:
    """Physical lines for csv.reader, with push-back so reading can resume after a bad line."""

    def __init__(self, text: str) -> None:
        self._source = (m.group(0) for m in _LINE.finditer(text))
        self._back: deque[str] = deque()
        self.current: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self.current) >= MAX_RECORD_LINES:
            raise _OpenQuote
        line = self._back.popleft() if self._back else next(self._source)
        self.current.append(line)
        return line

    def resume_after_first(self) -> None:
        """Give back every line of the failed record but its first."""
        self._back.extendleft(reversed(self.current[1:]))
        self.current = []


def records(text: str, delimiter: str = ",") -> Iterator[tuple[int, list[str] | str]]:
    """(first physical line, cells) for each record, or (line, reason) for a broken one."""
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    line_no = 1
    while True:
        lines.current = []
        problem = ""
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _OpenQuote:
            problem = f"a quote opened on this line is not closed within {MAX_RECORD_LINES} lines"
        except csv.Error as exc:
            problem = (
                "a quote opened on this line is never closed"
                if "unexpected end of data" in str(exc)
                else f"malformed CSV: {exc}"
            )
        else:
            later = enumerate(lines.current[1:], 1)
            swallowed = next((i for i, text in later if _ROW_LIKE.search(text)), 0)
            if swallowed:
                problem = (
                    f"a quote opened on this line runs on into line {line_no + swallowed}, "
                    "which looks like a row of its own"
                )
            elif any(len(c) > MAX_CELL for c in cells):
                problem = f"a cell is longer than {MAX_CELL} characters (a quote left open?)"
        if problem:
            yield line_no, f"{problem}; check the quotes on this line"
            lines.resume_after_first()
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
            line_no += 1
            continue
        yield line_no, cells
        line_no += len(lines.current)


def decode(data: bytes, label: str) -> tuple[str, str]:
    """(text, encoding name): UTF-8 (BOM or not), UTF-16, else Windows-1252 or what
    charset-normalizer finds. InputError when it is not text at all."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as exc:
                raise _not_text(label, data, exc.start) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    sample = data[:4000]
    if sample.count(0) > len(sample) // 4:  # UTF-16 without a BOM: every other byte is 0
        codec = "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
        try:
            return data.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise _not_text(label, data, exc.start) from exc
    # Excel's "CSV" outside UTF-8 is mostly Windows-1252: take it when it reads as text.
    western = from_bytes(data, cp_isolation=["cp1252"]).best()
    best = western or from_bytes(data).best()
    if best is None:
        raise _not_text(label, data, first_bad)
    return str(best), best.encoding


def _not_text(label: str, data: bytes, at: int) -> InputError:
    line = data.count(b"\n", 0, at) + 1
    return InputError(
        f"{label} is not text in an encoding Dispatch can tell (unreadable bytes on line {line})",
        "Save the file as CSV UTF-8 (Excel or LibreOffice: Save as… CSV UTF-8) and import it "
        "again.",
    )


def _outside_quotes(line: str, ch: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == ch and not quoted:
            count += 1
    return count


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines most consistently (comma on a tie)."""
    sample = [ln for ln in text[:65536].splitlines()[:20] if ln.strip()]
    best, best_score = ",", 0
    for delimiter in DELIMITERS:
        counts = [_outside_quotes(ln, delimiter) for ln in sample]
        if not counts or counts[0] == 0:
            continue
        score = sum(1 for c in counts if c == counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


#: A cell starting with one of these runs as a formula when the CSV is opened in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def to_cell(value: str) -> str:
    """Addresses, names and tags come from signup forms too: quote a would-be formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def from_cell(value: str) -> str:
    """Undo ``to_cell``, so an export imports back unchanged."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_START) else value


def write_csv(rows: Iterator[tuple[str, str, tuple[str, ...]]], out: TextIO) -> int:
    """Write ``email,name,tags…`` (with a header row) in the form the import reads back."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "tags"])
    count = 0
    for email, name, tags in rows:
        writer.writerow([to_cell(email), to_cell(name), *(to_cell(t) for t in tags)])
        count += 1
    return count


class SubscriberFile:
    """One subscriber file: its encoding, delimiter and layout, then its rows (``rows()``).

    After ``rows()`` is used up, ``records`` is the number of data records it yielded (each a
    CsvRow or an InvalidRow), which the import checks its counts against.
    """

    def __init__(self, path: Path, mapping: Mapping[str, str] | None = None) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(
                f"Cannot read {path}: {exc.strerror or exc}", "Check the path."
            ) from exc
        self.label = str(path)
        self.text, self.encoding = decode(data, self.label)
        self.delimiter = sniff_delimiter(self.text)
        self.mapping = mapping
        self.layout: Layout | None = None
        self.columns: list[str] = []
        self.ignored: list[str] = []
        self.records = 0

    def _start(self, cells: list[str]) -> bool:
        """Read the first record: True when it is a header row (and set the layout)."""
        if self.mapping is None and any("@" in c for c in cells):
            return False  # a plain list without a header
        self.columns = [clean_name(c.lstrip("\ufeff")) for c in cells]
        header = [c.lower() for c in self.columns]
        if self.mapping is not None:
            layout = exports.mapped(header, self.mapping, self.columns)
        else:
            found = exports.detect(header)
            if found is None:
                raise InputError(
                    f"{self.label}: no column holds email addresses that Dispatch knows "
                    f"(columns: {', '.join(self.columns) or 'none'})",
                    "Say which column is which, e.g. --map 'email=E-mail,name=Full name' "
                    f"(fields: {', '.join(exports.MAP_FIELDS)}).",
                )
            layout = found
        self.layout = exports.complete(layout, header)
        self.ignored = [c for c, h in zip(self.columns, header, strict=True)
                        if h and h not in self.layout.used]  # fmt: skip
        return True

    def rows(self) -> Iterator[CsvRow | InvalidRow]:
        """Each record of the file, good or bad, in file order (see the class docstring)."""
        seen: dict[str, int] = {}
        first = True
        header: list[str] = []
        for line, cells in records(self.text, self.delimiter):
            if isinstance(cells, list) and not any(c.strip() for c in cells):
                continue  # blank line
            if first and isinstance(cells, list):
                first = False
                if self._start(cells):
                    header = [c.lower() for c in self.columns]
                    continue
            first = False
            self.records += 1
            if isinstance(cells, str):
                yield InvalidRow(line, "", cells)
                continue
            yield self._row(line, cells, header, seen)
        if not self.records:
            raise InputError(
                f"{self.label} has no subscriber rows",
                "A subscriber CSV has one row per person: email,name[,tags…] (a header row is "
                "optional), or a Mailchimp, Substack, Ghost, listmonk, Buttondown or beehiiv "
                "export.",
            )

    def _row(
        self, line: int, cells: list[str], header: list[str], seen: dict[str, int]
    ) -> CsvRow | InvalidRow:
        layout = self.layout
        if layout is None:  # no header: email,name,tags…
            raw_email = from_cell(cells[0].strip())
            name = clean_name(from_cell(cells[1])) if len(cells) > 1 else ""
            tags = _tags(from_cell(c) for c in cells[2:])
            row = CsvRow(line, "", name, tags)
        else:
            values: dict[str, str] = {}
            for key, value in zip(header, cells, strict=False):
                values.setdefault(key, value)  # a repeated column: its first cell
            tag_cells = [c for h, c in zip(header, cells, strict=False) if h in layout.tags]
            try:
                row = self._mapped_row(line, layout, values, tag_cells + cells[len(header) :])
            except InputError as exc:
                return InvalidRow(line, clean_name(values.get(layout.email, "")), exc.message)
            raw_email = from_cell(values.get(layout.email, "").strip())
        if not raw_email:
            return InvalidRow(line, "", "no email address in the row")
        try:
            email = normalize_address(raw_email)
        except InputError as exc:
            reason = str(exc.__cause__) if exc.__cause__ else exc.message
            return InvalidRow(line, clean_name(raw_email), reason)
        if email in seen:
            return InvalidRow(
                line, email,
                f"duplicate of line {seen[email]} (addresses compare case-insensitively)",
            )  # fmt: skip
        seen[email] = line
        return CsvRow(**{**row.__dict__, "email": email})

    def _mapped_row(
        self, line: int, layout: Layout, values: dict[str, str], tag_cells: list[str]
    ) -> CsvRow:
        def get(column: str | None) -> str:
            return clean_name(from_cell(values.get(column, ""))) if column else ""

        first, last = get(layout.first_name), get(layout.last_name)
        name = get(layout.full_name) or " ".join(p for p in (first, last) if p)
        cells = [from_cell(c) for c in tag_cells]
        if layout.split_tags:
            tags = _tags(t for cell in cells for t in exports.split_tags(cell))
        else:
            tags = _tags(cells)
        status = layout.status(values) if layout.status else None
        source = next((get(c) for c in layout.source if get(c)), "")
        known = layout.name not in ("plain", "mapped")
        return CsvRow(
            line, "", name, tags, first_name=first, language=get(layout.language)[:35],
            status=status,
            consent_at=next((get(c) for c in layout.consent_at if get(c)), "")[:64],
            consent_ip=next((get(c) for c in layout.consent_ip if get(c)), "")[:64],
            consent_source=(f"{layout.name} export" + (f": {source}" if source else ""))[:200]
            if known else source[:200],
        )  # fmt: skip


def _tags(values: Iterator[str] | list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in (clean_name(v)[:MAX_TAG] for v in values) if t))
