"""Reading a week's bounce mailbox: speed, the dry run against the real run, and moved bytes.

Builds a database of N readers mailed one issue and a Maildir of M messages shaped like a real
week's (hard and soft DSNs, the same DSN delivered twice, plain-text Exim bounces, spam
complaints, readers' replies, unreadable files), then runs the real
``jobs.bounces.process_bounces`` twice: with ``dry_run`` and for real. It prints messages per
second for each, whether the two summaries agree, and how many processed copies are
byte-identical to what arrived.

Usage: .venv/bin/python bench/bounces.py [--readers 20000] [--messages 652]
"""

from __future__ import annotations

import argparse
import mailbox
import os
import platform
import random
import tempfile
import time
from pathlib import Path

from dispatch.config import Settings
from dispatch.jobs.bounces import process_bounces
from dispatch.store import issues as issue_store
from dispatch.store import ledger, open_db

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures" / "dsn"
ISSUE = "2026-W48"


def setup(db_path: Path, readers: int) -> None:
    db = open_db(db_path, create=True)
    now = "2026-11-27T07:00:00+00:00"
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO subscribers (email, name, status, unsub_token, source, created_at,"
            " updated_at) VALUES (?, '', 'active', ?, 'bench', ?, ?)",
            [(f"r{i}@example.org", f"tok{i:020d}", now, now) for i in range(readers)],
        )
    issue_store.create_issue(db, ISSUE, subject="Bench")
    ledger.fix_deliveries(db, ISSUE, {}, "non_donor")
    db.execute("UPDATE deliveries SET state = 'sent'")
    db.close()


def week(readers: int, count: int) -> list[bytes]:
    """``count`` messages: mostly DSNs for random readers, some twice, and the odd rest."""
    hard = (FIXTURES / "rfc3464-hard-5.1.1.eml").read_bytes()
    soft = (FIXTURES / "rfc3464-soft-4.2.2.eml").read_bytes()
    exim = (FIXTURES / "exim-plain.eml").read_bytes()
    reply = (FIXTURES / "autoreply-not-a-bounce.eml").read_bytes()
    rng = random.Random(9)
    out: list[bytes] = []
    while len(out) < count:
        n = rng.randrange(readers)
        kind = rng.random()
        if kind < 0.55:
            raw = hard.replace(b"ben@example.test", f"r{n}@example.org".encode())
            raw = raw.replace(b"<2026-W48.2.", f"<2026-W48.{n + 1}.".encode())
            raw = raw.replace(b"4Q1x2y3z4@mx", f"{n}-{len(out)}@mx".encode())
            out.append(raw)
            if rng.random() < 0.3:
                out.append(raw)  # the same DSN delivered twice
        elif kind < 0.75:
            raw = soft.replace(b"cleo@example.test", f"r{n}@example.org".encode())
            out.append(raw.replace(b"B2Q7Uq0a3Jf9", f"{len(out)}".encode()))
        elif kind < 0.88:
            raw = exim.replace(b"eve@example.test", f"r{n}@example.org".encode()).replace(
                b"\n", b"\r\n"
            )
            out.append(raw.replace(b"1vXyZa-0007Qp-2B", f"{len(out)}".encode()))
        elif kind < 0.97:
            out.append(reply)
        else:
            out.append(b"" if rng.random() < 0.5 else os.urandom(2000))
    return out[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readers", type=int, default=20000)
    parser.add_argument("--messages", type=int, default=652)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        setup(root / "db.sqlite3", args.readers)
        box = mailbox.Maildir(root / "bounces", create=True)
        arrived = {}
        for raw in week(args.readers, args.messages):
            key = box.add(raw)
            arrived[key] = raw
        settings = Settings.from_mapping({"DISPATCH_DB": str(root / "db.sqlite3")})
        keys = ("messages", "hard", "soft", "suppressed", "already_processed", "unmatched")
        keys += ("ignored", "unreadable", "complaints", "complained")
        results = {}
        for dry in (True, False):
            db = open_db(root / "db.sqlite3")
            started = time.perf_counter()
            _, summary = process_bounces(db, settings, maildir=root / "bounces", dry_run=dry)
            elapsed = time.perf_counter() - started
            db.close()
            report = summary.as_dict()
            results[dry] = {k: report[k] for k in keys}
            print(
                f"{'dry run' if dry else 'real run'}: {args.messages / elapsed:,.0f} msg/s "
                f"({elapsed:.2f} s) {results[dry]}"
            )
        print(f"dry run and real run agree: {results[True] == results[False]}")
        moved = root / "bounces" / ".processed"
        same = total = 0
        for sub in ("new", "cur"):
            for name in os.listdir(moved / sub):
                total += 1
                same += (moved / sub / name).read_bytes() == arrived[name.split(":")[0]]
        print(f"processed copies byte-identical: {same} of {total}")


if __name__ == "__main__":
    main()
