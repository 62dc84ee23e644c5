"""The store: the only layer that writes SQL, on SQLite (the default) or PostgreSQL.

``open_db(target)`` connects (for SQLite: WAL, foreign keys, busy timeout; for PostgreSQL: a
pooled psycopg connection, see ``store.postgres``), applies pending migrations from
``store/migrations/NNNN_name.sql`` in order, and returns a :class:`Database`. Each area of the
product has its own module of query functions taking that Database (``store.subscribers``,
``store.issues``, ``store.ledger``, ...), written once in SQL both engines run.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from dispatch.errors import StoreError
from dispatch.store.target import PostgresURL, local_path

__all__ = ["Database", "PostgresURL", "Row", "local_path", "open_db"]

#: A result row, read by column name or position: what the store's row-returning queries give
#: (PostgreSQL's rows, ``store.postgres.Row``, read the same way). Named here so that layers
#: above can type a row without importing sqlite3.
Row = sqlite3.Row

SCHEMA_TABLE = "schema_migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db_time(value: datetime | None) -> str | None:
    """Store times as ISO-8601 UTC text, which sorts and compares correctly."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store")
    return value.astimezone(UTC).isoformat(timespec="seconds")


def from_db_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Database:
    """One connection to the store, with transactions and a lock for threaded writers.
    ``engine`` is "sqlite" or "postgresql"; ``path`` is the SQLite file (or, for PostgreSQL,
    the local stand-in that per-machine files are named after)."""

    engine = "sqlite"
    #: DISPATCH_JOURNAL_DIR, set by the CLI: where this machine's send journal goes (None:
    #: beside ``path``).
    journal_dir: Path | None = None

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every read inside sees the database as of its first read, while
        writers go on (WAL keeps the snapshot). For reading many tables as one moment."""
        with self.lock:
            self.conn.execute("BEGIN DEFERRED")
            try:
                yield
            finally:
                self.conn.execute("COMMIT")

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.conn.execute(sql, params)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _where(path: Path) -> str:
    """The database's absolute path, and what a relative DISPATCH_DB was relative to."""
    if path.is_absolute():
        return str(path)
    return f"{Path.cwd() / path} (DISPATCH_DB {str(path)!r} is relative to the current folder)"


def _check_place(path: Path, create: bool) -> None:
    """Refuse, naming DISPATCH_DB and the path, instead of creating a stray database or folder."""
    if path.is_dir():
        raise StoreError(
            f"DISPATCH_DB points to the folder {_where(path)}, not to a database file",
            f"Set DISPATCH_DB to a file, such as {path.absolute() / 'dispatch.sqlite3'}.",
        )
    if not path.parent.is_dir():
        raise StoreError(
            f"The folder of DISPATCH_DB does not exist: {path.parent.absolute()}",
            "Create that folder, or set DISPATCH_DB (in .env or the environment) to the "
            "outlet's database file.",
        )
    if not create and not path.exists():
        raise StoreError(
            f"No Dispatch database was found at {_where(path)}",
            "Run dispatch in the outlet's folder (where its .env is), or set DISPATCH_DB to the "
            "database file; `dispatch build`, `dispatch subscribers import` and `dispatch demo` "
            "start a new one.",
        )


def _not_a_database(path: Path, exc: sqlite3.Error) -> StoreError:
    return StoreError(
        f"DISPATCH_DB points to {_where(path)}, which is not a SQLite database ({exc})",
        "Set DISPATCH_DB to the outlet's database file (dispatch.sqlite3), or move the file that "
        "is there out of the way.",
    )


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """A raw connection with Dispatch's pragmas; autocommit mode (explicit transactions).

    With ``create=False`` the file must already exist (SQLite opens it read-write, never
    creating it); the folder is never created."""
    _check_place(path, create)
    target: str | Path = path
    if not create:
        target = f"{path.absolute().as_uri()}?mode=rw"
    try:
        conn = sqlite3.connect(
            target, isolation_level=None, check_same_thread=False, timeout=30.0, uri=not create
        )
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(
            f"Cannot open the database {_where(path)}: {exc}",
            "Check DISPATCH_DB and that its folder is writable.",
        ) from exc
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            raise
        raise _not_a_database(path, exc) from exc
    return conn


#: A migration that SQLite and PostgreSQL cannot both run has a PostgreSQL twin beside it,
#: ``NNNN_name.postgresql.sql``; it is recorded under the same name (NNNN_name.sql).
POSTGRES_SUFFIX = ".postgresql.sql"


def _migrations(engine: str = "sqlite") -> list[tuple[int, str, str]]:
    """(version, name, SQL) in order, the engine's twin chosen where there is one."""
    folder = resources.files("dispatch.store") / "migrations"
    texts = {e.name: e.read_text(encoding="utf-8") for e in folder.iterdir()}
    found = []
    for name, text in texts.items():
        if not name.endswith(".sql") or name.endswith(POSTGRES_SUFFIX):
            continue
        twin = name[: -len(".sql")] + POSTGRES_SUFFIX
        if engine == "postgresql" and twin in texts:
            text = texts[twin]
        version = int(name.split("_", 1)[0])
        found.append((version, name, text))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise StoreError("Two migrations share a version number", "This is a bug in Dispatch.")
    return found


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply every migration newer than the database, each in its own transaction."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    applied = {row[0] for row in conn.execute(f"SELECT version FROM {SCHEMA_TABLE}")}
    known = _migrations()
    newest_known = max((v for v, _, _ in known), default=0)
    if applied and max(applied) > newest_known:
        raise StoreError(
            f"The database is at schema version {max(applied)}, newer than this Dispatch "
            f"({newest_known})",
            "Upgrade Dispatch, or point DISPATCH_DB at another database.",
        )
    done = []
    for version, name, sql in known:
        if version in applied:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {SCHEMA_TABLE} (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, to_db_time(utcnow())),
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(
                f"Migration {name} failed: {exc}", "This is a bug in Dispatch."
            ) from exc
        done.append(version)
    return done


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (complete_statement copes with ; inside strings)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        statements.append(buffer.strip())
    return statements


def open_db(path: Path | PostgresURL, *, create: bool = False) -> Database:
    """Open and migrate the store at ``path``. Only the commands that start an outlet (build,
    subscribers import, demo) pass ``create=True``; every other one refuses a missing file
    rather than work on a stray empty database. A PostgreSQL database must exist (its server
    creates it); it is migrated like a SQLite one."""
    if isinstance(path, PostgresURL):
        from dispatch.store import postgres_db  # psycopg is loaded only for PostgreSQL

        return postgres_db.open_postgres(path)
    conn = connect(path, create=create)
    try:
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _not_a_database(path, exc) from exc
    except BaseException:
        conn.close()
        raise
    return Database(conn, path)
