"""Copy an outlet's every table from one database to another (SQLite <-> PostgreSQL).

Tables go in the order the migrations create them (a referenced table before the tables that
point at it), in one transaction on the target, which must be empty; each table's count is
compared afterwards with the source's, read in one snapshot (a webhook or signup writing to
the source meanwhile cannot leave the copy half old, half new). Identity columns on PostgreSQL
are moved past the copied ids."""

from __future__ import annotations

import re
from collections.abc import Callable

from dispatch.errors import StoreError
from dispatch.store import SCHEMA_TABLE, Database, _migrations

BATCH = 1000
_CREATE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)", re.IGNORECASE)


def tables_in_order() -> list[str]:
    """Every table the migrations create, in creation order."""
    seen: list[str] = []
    for _, _, sql in _migrations():
        for name in _CREATE.findall(sql):
            if name not in seen:
                seen.append(name)
    return seen


def _columns(db: Database, table: str) -> list[str]:
    if db.engine == "sqlite":
        return [r["name"] for r in db.execute(f"PRAGMA table_info({table})")]
    rows = db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    return [r[0] for r in rows]


def count(db: Database, table: str) -> int:
    return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def schema_version(db: Database) -> int:
    return int(db.execute(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA_TABLE}").fetchone()[0])


def copy_tables(
    source: Database, target: Database, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Copy every table; {table: rows}. Refuses a target that holds any row."""
    tables = tables_in_order()
    if schema_version(source) != schema_version(target):
        raise StoreError(
            f"The two databases are at different schema versions ({schema_version(source)} "
            f"and {schema_version(target)})",
            "Open both with the same Dispatch (any command migrates them), then copy again.",
        )
    filled = [t for t in tables if count(target, t)]
    if filled:
        raise StoreError(
            f"The target database is not empty ({', '.join(filled)} hold rows); nothing copied",
            "Copy into a new, empty database: a new SQLite file, or a PostgreSQL database "
            "made with createdb.",
        )
    with source.snapshot():
        copied = _copy_snapshot(source, target, tables, progress)
        expected = {t: count(source, t) for t in tables}
    wrong = {t: (expected[t], count(target, t)) for t in tables if count(target, t) != expected[t]}
    if wrong:
        detail = ", ".join(f"{t}: {a} in the source, {b} copied" for t, (a, b) in wrong.items())
        raise StoreError(f"The copy's counts do not match ({detail})", "This is a bug in Dispatch.")
    return copied


def _copy_snapshot(
    source: Database,
    target: Database,
    tables: list[str],
    progress: Callable[[str, int], None] | None,
) -> dict[str, int]:
    copied: dict[str, int] = {}
    with target.transaction() as out:
        for table in tables:
            wanted = _columns(target, table)
            columns = [c for c in _columns(source, table) if c in wanted]
            names = ", ".join(columns)
            marks = ", ".join("?" for _ in columns)
            insert = f"INSERT INTO {table} ({names}) VALUES ({marks})"
            rows = source.execute(f"SELECT {names} FROM {table}")
            copied[table] = 0
            while batch := rows.fetchmany(BATCH):
                try:
                    out.executemany(insert, [tuple(r) for r in batch])
                except Exception as exc:  # either engine's error: name the table, keep nothing
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise StoreError(
                        f"Copying the table {table} failed ({reason}); nothing was copied",
                        "Fix what the reason names in SOURCE, then copy again into the "
                        "still empty TARGET.",
                    ) from exc
                copied[table] += len(batch)
            if target.engine == "postgresql" and "id" in columns:
                sequence = out.execute("SELECT pg_get_serial_sequence(?, 'id')", (table,))
                name = sequence.fetchone()[0]
                if name is not None:  # an identity column: new rows take ids after these
                    out.execute(
                        f"SELECT setval(?, COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}",
                        (name,),
                    )
            if progress is not None:
                progress(table, copied[table])
    return copied
