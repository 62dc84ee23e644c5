"""The PostgreSQL engine behind the same :class:`~dispatch.store.Database` interface.

The store's SQL is written once with SQLite's ``?`` placeholders; :func:`translate` turns them
into psycopg's ``%s`` (and doubles a literal ``%``), leaving string literals, quoted names and
comments alone. Rows read by column name or position, as ``sqlite3.Row`` does. Connections come
from one psycopg_pool pool per URL; the password is never shown (see ``target.redact_url``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

import psycopg
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool, PoolTimeout

from dispatch.errors import StoreError
from dispatch.store.target import PostgresURL, redact_url

CONNECT_TIMEOUT = 10  # seconds: a wrong host or password fails well inside this
POOL_MAX = 8

_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked worker (gunicorn) must not use its parent's connections: it makes its own."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


@lru_cache(maxsize=2048)  # the store's statements are a few hundred constant strings
def translate(sql: str) -> str:
    """``?`` -> ``%s`` and ``%`` -> ``%%`` outside '...' literals, "..." names and comments
    (psycopg reads ``%`` everywhere in a query, so a literal one is doubled inside quotes too)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"":  # a literal or a quoted name; '' and "" are escaped quotes inside
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i : end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif ch == "?":
            out.append("%s")
            i += 1
        elif sql.startswith("temp.", i) and (i == 0 or not _is_name(sql[i - 1])):
            out.append("pg_temp.")  # SQLite's schema of temporary tables
            i += len("temp.")
        elif ch == "%":
            out.append("%%")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _is_name(ch: str) -> bool:
    return ch.isalnum() or ch in "_$."


def _adapt(params: Sequence[Any] | dict[str, Any]) -> Sequence[Any]:
    """SQLite stores booleans as 0/1 in INTEGER columns; PostgreSQL would refuse a boolean."""
    if isinstance(params, dict):
        raise TypeError("named parameters are not used by the store")
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


class Row(tuple):  # type: ignore[type-arg]
    """A row readable by position or by column name, like ``sqlite3.Row``."""

    _names: tuple[str, ...]
    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                raise IndexError(f"No item with that key: {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> RowMaker[Row]:
    names = tuple(c.name for c in cursor.description or ())
    index = {name: i for i, name in enumerate(names)}

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row._names, row._index = names, index
        return row

    return make


class PgCursor:
    """A psycopg cursor with sqlite3's ``lastrowid``: the id the last INSERT on this
    connection took from an identity column (``lastval()``), read only when asked for."""

    def __init__(self, cursor: Any, raw: psycopg.Connection[Any]) -> None:
        self._cursor = cursor
        self._raw = raw

    @property
    def lastrowid(self) -> int | None:
        try:
            with self._raw.transaction():  # a savepoint: a failed lastval() spoils nothing
                row = self._raw.execute("SELECT lastval()").fetchone()
        except psycopg.errors.ObjectNotInPrerequisiteState:  # no INSERT took an id yet
            return None
        return int(row[0]) if row else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class PgConnection:
    """What the store's code calls ``conn``: ``execute`` and ``executemany`` with ``?``."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        try:
            cursor = self.raw.execute(translate(sql), _adapt(params))
        except psycopg.OperationalError as exc:
            _raise_lost(self.raw, exc)
            raise
        return PgCursor(cursor, self.raw)

    def executemany(self, sql: str, seq: Any) -> Any:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(translate(sql), [_adapt(p) for p in seq])
        except psycopg.OperationalError as exc:
            _raise_lost(self.raw, exc)
            raise
        return cursor

    def executescript(self, script: str) -> None:
        """Several statements without parameters (the simple query protocol allows that)."""
        self.raw.execute(script.encode("utf-8"))


def _raise_lost(raw: psycopg.Connection[Any], exc: psycopg.OperationalError) -> None:
    """A connection that broke mid-command (server restarted, network gone) as a StoreError;
    other operational errors (a lock timeout the web retries) are left to the caller."""
    if not raw.closed and exc.sqlstate is not None and not exc.sqlstate.startswith(("08", "57")):
        return
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    raise StoreError(
        f"The connection to the PostgreSQL database was lost ({reason})",
        "Check that the server is up and reachable, then rerun the command to go on.",
    ) from exc


def _connect_error(target: PostgresURL, exc: BaseException) -> StoreError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = psycopg.conninfo.conninfo_to_dict(target.url).get("password")
    if password:
        detail = detail.replace(str(password), "***")
    return StoreError(
        f"Cannot connect to the PostgreSQL database {target} ({detail})",
        "Check DISPATCH_DB's host, port, user and database (make it with createdb); the "
        "password comes from the URL, "
        "PGPASSWORD or a libpq service/password file.",
    )


#: How long a statement waits for a lock another transaction holds (SQLite's busy_timeout).
LOCK_TIMEOUT_MS = 30_000


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.row_factory = _row_factory
    conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


def _reset(conn: psycopg.Connection[Any]) -> None:
    """A connection given back to the pool forgets what its borrower SET."""
    conn.execute("RESET ALL")
    conn.execute("SELECT pg_advisory_unlock_all()")  # a borrower's session locks end with it
    conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


def _pool(target: PostgresURL) -> ConnectionPool:
    """One pool per URL; its first connection is made here so a bad URL or password fails at
    once with the server's reason (a pool would only time out)."""
    with _pools_lock:
        pool = _pools.get(target.url)
        if pool is not None:
            return pool
        kwargs = {
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "dispatch",
        }
        try:
            psycopg.connect(target.url, **kwargs).close()  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise _connect_error(target, exc) from None
        pool = ConnectionPool(
            target.url,
            kwargs=kwargs,
            configure=_configure,
            reset=_reset,
            min_size=1,
            max_size=POOL_MAX,
            name=redact_url(target.url),
            open=True,
            timeout=CONNECT_TIMEOUT,
        )
        _pools[target.url] = pool
        return pool


def close_pools() -> None:
    """Close every pool (tests, and the end of a process that wants a clean exit)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def connect(target: PostgresURL) -> tuple[ConnectionPool, psycopg.Connection[Any]]:
    pool = _pool(target)
    try:
        raw = pool.getconn()
    except PoolTimeout as exc:
        raise _connect_error(target, exc) from None
    return pool, raw


@contextmanager
def transaction(raw: psycopg.Connection[Any]) -> Iterator[None]:
    with raw.transaction():
        yield


def as_sqlite_like(conn: PgConnection) -> Any:
    """The store's functions are typed for sqlite3; the wrapper offers the same calls."""
    return cast(Any, conn)
