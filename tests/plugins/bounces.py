"""Bounce-test helpers: five readers mailed one issue, DSN samples (tests/fixtures/dsn), and
soft bounces made to measure. The `mailing` fixture is the real store with that ledger."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from dispatch.store import Database, ledger
from dispatch.store import issues as issue_store
from dispatch.store import subscribers as subscriber_store

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dsn"
PEOPLE = ["ana", "ben", "cleo", "dev", "eve"]  # subscriber and delivery ids 1..5 in this order


class Reader(NamedTuple):
    """One import row: unpacks as (email, name, tags), and has the fields an import reads."""

    email: str
    name: str
    tags: tuple[str, ...] = ()
    first_name: str = ""
    language: str = ""
    status: None = None
    consent_at: str = ""
    consent_ip: str = ""
    consent_source: str = ""


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def send_issue(db: Database, issue_id: str) -> None:
    """An issue whose ledger is fixed and whose rows the relay accepted."""
    issue_store.create_issue(db, issue_id, subject=f"Issue {issue_id}")
    ledger.fix_deliveries(db, issue_id, {}, "non_donor")
    # The send engine's own path to 'sent' needs an SMTP run; here the state is the premise.
    db.execute("UPDATE deliveries SET state = 'sent' WHERE issue_id = ?", (issue_id,))


@pytest.fixture
def mailing(db: Database) -> Database:
    subscriber_store.import_subscribers(
        db, [Reader(f"{p}@example.test", p.title()) for p in PEOPLE], "test"
    )
    send_issue(db, "2026-W48")
    return db


def status_of(db: Database, person: str) -> str:
    sub = subscriber_store.get_subscriber(db, f"{person}@example.test")
    assert sub is not None
    return sub.status.value


def soft_bounce_for(issue: str, delivery_id: int, dsn_id: str) -> bytes:
    raw = fixture("rfc3464-soft-4.2.2.eml")
    raw = raw.replace(
        b"<2026-W48.3.8e2d4a6c1b90@outlet.test>",
        f"<{issue}.{delivery_id}.8e2d4a6c1b90@outlet.test>".encode(),
    )
    return raw.replace(
        b"<202612020730.B2Q7Uq0a3Jf9@relay.example.test>", f"<{dsn_id}@relay.example.test>".encode()
    )


def delivery_id(db: Database, issue: str, person: str) -> int:
    return db.execute(
        "SELECT d.id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
        " WHERE d.issue_id = ? AND s.email = ?",
        (issue, f"{person}@example.test"),
    ).fetchone()[0]
