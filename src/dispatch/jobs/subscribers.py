"""Subscriber use cases: import a CSV, list, export, unsubscribe, forget."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from dispatch.errors import InputError
from dispatch.models import StatusActor, Subscriber, SubscriberStatus
from dispatch.store import Database, open_db
from dispatch.store import subscribers as store
from dispatch.subscribers import (
    CsvRow,
    InvalidRow,
    SubscriberFile,
    normalize_address,
    write_csv,
)
from dispatch.subscribers.exports import parse_mapping


@dataclass
class ImportReport(store.ImportCounts):
    """The store's counts, plus the rows that never reached it and what the file was."""

    invalid_rows: list[InvalidRow] = field(default_factory=list)
    rows: int = 0  # data records in the file: every one is counted exactly once above
    layout: str = "plain"
    encoding: str = "utf-8"
    delimiter: str = ","
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def invalid(self) -> int:
        return len(self.invalid_rows)

    def as_json(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "suppressed": self.suppressed,
            "invalid": self.invalid,
            "invalid_rows": [
                {"line": r.line, "email": r.email, "reason": r.reason} for r in self.invalid_rows
            ],
            "rows": self.rows,
            "layout": self.layout,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "ignored_columns": self.ignored_columns,
            "dry_run": self.dry_run,
        }


def import_file(
    db: Database | Callable[[], Database | None],
    path: Path,
    mapping: str | None = None,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Import a subscriber file: good rows in (in short batches), bad rows reported,
    suppression always wins. Every record of the file is counted once, or the import says so.

    ``db`` may be a callable, called once the file has been read (a file that cannot be read
    creates no database); a dry run's may return None when there is no database yet: then
    everything counts against an empty scratch one, and nothing is created where DISPATCH_DB
    points."""
    source = SubscriberFile(path, parse_mapping(mapping) if mapping else None)
    opened = db() if callable(db) else db
    if opened is None:
        if not dry_run:
            raise InputError(f"No database to import {path} into", "This is a bug in Dispatch.")
        with tempfile.TemporaryDirectory() as folder:
            scratch = open_db(Path(folder) / "dry-run.sqlite3", create=True)
            try:
                return _import(scratch, source, path, dry_run=True)
            finally:
                scratch.close()
    return _import(opened, source, path, dry_run=dry_run)


def _import(db: Database, source: SubscriberFile, path: Path, *, dry_run: bool) -> ImportReport:
    invalid: list[InvalidRow] = []

    def good_rows() -> Iterator[CsvRow]:
        for item in source.rows():
            if isinstance(item, InvalidRow):
                invalid.append(item)
            else:
                yield item

    counts = store.import_subscribers(
        db, good_rows(), source=f"import:{path.name}", dry_run=dry_run
    )
    report = ImportReport(
        **asdict(counts),
        invalid_rows=invalid,
        rows=source.records,
        layout=source.layout.name if source.layout else "plain",
        encoding=source.encoding,
        delimiter=source.delimiter,
        ignored_columns=source.ignored,
        dry_run=dry_run,
    )
    accounted = report.added + report.updated + report.unchanged + report.suppressed
    if accounted + report.invalid != report.rows:
        raise InputError(
            f"{path}: {report.rows} rows read but {accounted + report.invalid} accounted for",
            "This is a bug in Dispatch; the rows stored so far are complete. Please report it.",
        )
    return report


def _address(email: str) -> str:
    try:
        return normalize_address(email)
    except InputError as exc:
        raise InputError(exc.message, "Give the subscriber's full address.") from exc


def _status(status: str | None) -> SubscriberStatus | None:
    if status in (None, "", "all"):
        return None
    try:
        return SubscriberStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in SubscriberStatus)
        raise InputError(f"Unknown status {status!r}", f"Use one of: {known}, all.") from None


def list_subscribers(db: Database, status: str | None = None) -> Iterator[Subscriber]:
    return store.iter_subscribers(db, _status(status))


def export_csv(db: Database, out: TextIO, status: str | None = "active") -> int:
    """Write subscribers as a CSV that ``import`` reads back; returns how many."""
    rows = ((s.email, s.name, s.tags) for s in store.iter_subscribers(db, _status(status)))
    return write_csv(rows, out)


def unsubscribe(db: Database, email: str) -> Subscriber:
    """The editor unsubscribes someone; a bounced or complained reader keeps that status (it
    says more, and only a new double opt-in may bring them back)."""
    address = _address(email)
    subscriber, _ = store.change_status(
        db, StatusActor.EDITOR, SubscriberStatus.UNSUBSCRIBED, address
    )
    if subscriber is None:
        raise InputError(
            f"{address} is not a subscriber", "`dispatch subscribers list` shows them."
        )
    return subscriber


def forget(db: Database, email: str) -> bool:
    """Erase a person; their address hash stays suppressed. False if they were not on the list."""
    return store.forget(db, _address(email))


def counts(db: Database) -> dict[str, int]:
    return store.status_counts(db)
