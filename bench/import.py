"""How fast does a large subscriber import go, and how long does it hold the write lock?

Writes a CSV of N generated readers (Mailchimp-like: names, tags and opt-in columns), imports it
with the real job (``jobs.subscribers.import_file``) into a fresh database and prints the rows
per second, the longest single write transaction, and the longest wait of a second writer (a
stand-in for the web's unsubscribe) that writes every 20 ms on its own connection meanwhile.
A second import of the same file (every row unchanged) and a third of a file where every
reader's tags changed (every row updated) are timed too.

Usage: .venv/bin/python bench/import.py [--rows 200000] [--batch 500] [--db postgresql://...]
(--db: an empty PostgreSQL database, made with createdb; the password from PGPASSWORD)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

from dispatch.config import database_target
from dispatch.jobs.subscribers import import_file
from dispatch.store import Database, open_db
from dispatch.store import subscribers as store

HEADER = "Email Address,First Name,Last Name,OPTIN_TIME,OPTIN_IP,LATITUDE,LEID,TAGS\n"


def write_file(path: Path, rows: int, shift: int = 0) -> None:
    """``shift`` changes every reader's second tag (a file of updates)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(rows):
            out.write(
                f"reader{i}@example.org,Reader,Number {i},2024-01-01 00:00:00,203.0.113.{i % 250},"
                f'51.5,{i},"""weekly"",""r{(i + shift) % 7}"""\n'
            )


def web_writer(other: Database, stop: threading.Event, waits: list[float]) -> None:
    """Another connection's short write transaction every 20 ms (the store's own, so it
    waits for the same lock a web request's write would: SQLite's or PostgreSQL's)."""
    while not stop.is_set():
        started = time.perf_counter()
        with other.transaction() as conn:
            conn.execute("UPDATE meta SET value = value WHERE key = 'bench'")
        waits.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    other.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=store.IMPORT_BATCH)
    parser.add_argument("--db", help="an empty PostgreSQL database (default: a new SQLite file)")
    args = parser.parse_args()
    store.IMPORT_BATCH = args.batch  # what import_subscribers uses when given no batch size
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "big.csv"
        write_file(csv_path, args.rows)
        changed_path = Path(tmp) / "changed.csv"
        write_file(changed_path, args.rows, shift=1)
        print(
            f"file: {args.rows:,} rows, {csv_path.stat().st_size / 1e6:.1f} MB, batch {args.batch}"
        )
        target = database_target(args.db) if args.db else Path(tmp) / "bench.sqlite3"
        print(f"database: {'PostgreSQL' if args.db else 'SQLite'}")
        db = open_db(target, create=True)
        db.execute("INSERT INTO meta (key, value) VALUES ('bench', '0')")
        runs = (
            ("first import (all added)", csv_path),
            ("second import (all unchanged)", csv_path),
            ("third import (all updated)", changed_path),
        )
        for label, path in runs:
            stop, waits = threading.Event(), list[float]()
            writer = threading.Thread(target=web_writer, args=(open_db(target), stop, waits))
            writer.start()
            started = time.perf_counter()
            report = import_file(db, path)
            elapsed = time.perf_counter() - started
            stop.set()
            writer.join()
            print(
                f"{label}: {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s, "
                f"longest write transaction {report.longest_write_ms:.1f} ms, "
                f"other writer: {len(waits)} writes, longest wait {max(waits):.1f} ms "
                f"(added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
                f"invalid {report.invalid})"
            )
        db.close()


if __name__ == "__main__":
    main()
