"""Moving an outlet between engines: `dispatch db copy SOURCE TARGET`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dispatch.config import database_target
from dispatch.errors import InputError
from dispatch.store import PostgresURL, open_db
from dispatch.store import copy as copy_store
from dispatch.store.target import redact_url


@dataclass(frozen=True)
class CopyResult:
    source: str
    target: str
    tables: dict[str, int]


def _target(value: str, which: str) -> Path | PostgresURL:
    """A DISPATCH_DB-style value; a password written into a URL on the command line is refused
    (it would sit in the shell history and in `ps`)."""
    parsed = database_target(value)
    if isinstance(parsed, PostgresURL) and redact_url(parsed.url) != parsed.url:
        raise InputError(
            f"{which} {parsed} has a password in it",
            "Leave it out of the URL: set PGPASSWORD, or use a libpq password file (~/.pgpass) "
            "or service file (?service=name).",
        )
    return parsed


def copy_database(
    source: str, target: str, progress: Callable[[str, int], None] | None = None
) -> CopyResult:
    """Copy every table of ``source`` into the empty ``target`` (a new SQLite file is made)."""
    src, dst = _target(source, "SOURCE"), _target(target, "TARGET")
    if str(src) == str(dst):
        raise InputError("SOURCE and TARGET are the same database", "Name two databases.")
    with open_db(src) as from_db, open_db(dst, create=True) as to_db:
        tables = copy_store.copy_tables(from_db, to_db, progress)
    return CopyResult(str(src), str(dst), tables)
