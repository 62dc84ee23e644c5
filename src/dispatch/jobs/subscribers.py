"""Subscriber use cases: import a CSV, list, export, unsubscribe, forget."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from dispatch.errors import InputError
from dispatch.models import StatusActor, Subscriber, SubscriberStatus
from dispatch.store import Database
from dispatch.store import subscribers as store
from dispatch.subscribers import InvalidRow, iter_csv, normalize_address, write_csv


@dataclass
class ImportReport(store.ImportCounts):
    """The store's counts, plus the rows that never reached it."""

    invalid_rows: list[InvalidRow] = field(default_factory=list)

    @property
    def invalid(self) -> int:
        return len(self.invalid_rows)

    def as_json(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "suppressed": self.suppressed,
            "invalid": self.invalid,
            "invalid_rows": [
                {"line": r.line, "email": r.email, "reason": r.reason} for r in self.invalid_rows
            ],
        }


def import_file(db: Database, path: Path) -> ImportReport:
    """Import a subscriber CSV: good rows in, bad rows reported, suppression always wins."""
    invalid: list[InvalidRow] = []

    def good_rows() -> Iterator[tuple[str, str, tuple[str, ...]]]:
        for item in iter_csv(path):
            if isinstance(item, InvalidRow):
                invalid.append(item)
            else:
                yield item.email, item.name, item.tags

    counts = store.import_subscribers(db, good_rows(), source=f"import:{path.name}")
    return ImportReport(**asdict(counts), invalid_rows=invalid)


def _address(email: str) -> str:
    try:
        return normalize_address(email)
    except InputError as exc:
        raise InputError(exc.message, "Give the subscriber's full address.") from exc


def _status(status: str | None) -> str | None:
    if status in (None, "", "all"):
        return None
    try:
        return SubscriberStatus(status).value
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
