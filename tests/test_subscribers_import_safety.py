"""Imports that never lose rows silently, keep write locks short, and exports that are safe to
open in a spreadsheet."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.store import subscribers as store
from dispatch.subscribers import CsvRow
from tests.conftest import sqlite_only


def run_import(run_cli, path: Path) -> dict:
    result = run_cli("subscribers", "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _accounted(report: dict) -> int:
    keys = ("added", "updated", "unchanged", "suppressed", "invalid")
    return sum(report[k] for k in keys)


def test_one_stray_quote_costs_one_row_not_the_rest_of_the_file(tmp_path, run_cli):
    lines = [f"p{i}@example.org,Person {i}" for i in range(1, 301)]
    lines[100] = 'jo@example.org,"Jo Smith'  # line 101: the quote is never closed
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run_import(run_cli, path)
    assert (report["added"], report["invalid"], report["rows"]) == (299, 1, 300)
    assert report["invalid_rows"][0]["line"] == 101
    assert "quote" in report["invalid_rows"][0]["reason"]
    assert _accounted(report) == report["rows"]


def test_a_quote_closed_rows_later_does_not_swallow_the_rows_between(tmp_path, run_cli):
    text = (
        "ana@example.org,Ana\n"
        'jo@example.org,"Jo Smith\n'  # 2: opened ...
        "bo@example.org,Bo\n"
        'cy@example.org,"Cy"\n'  # ... and a later quote would close it: one giant "name"
        "di@example.org,Di\n"
    )
    path = tmp_path / "list.csv"
    path.write_text(text, encoding="utf-8")
    report = run_import(run_cli, path)
    assert report["invalid"] == 1 and report["invalid_rows"][0]["line"] == 2
    assert report["added"] == 4 and _accounted(report) == report["rows"] == 5
    result = run_cli("subscribers", "list", "--json")
    names = {p["email"]: p["name"] for p in json.loads(result.stdout)}
    assert names["bo@example.org"] == "Bo" and names["cy@example.org"] == "Cy"


def test_a_quoted_name_with_a_line_break_is_still_one_good_row(tmp_path, run_cli):
    path = tmp_path / "list.csv"
    path.write_text('ana@example.org,"Ana\nSouza"\nbo@example.org,Bo\n', encoding="utf-8")
    report = run_import(run_cli, path)
    assert (report["added"], report["invalid"], report["rows"]) == (2, 0, 2)


def _rows(n: int, start: int = 0) -> list[CsvRow]:
    return [CsvRow(i, f"r{i}@example.org", f"Reader {i}") for i in range(start, start + n)]


@sqlite_only  # SQLite's one writer at a time; PostgreSQL locks rows
def test_import_commits_in_batches_so_other_writers_never_wait(db):
    store.import_subscribers(db, _rows(5), source="seed")  # r0..r4 exist
    other = sqlite3.connect(db.path, timeout=0, isolation_level=None)  # a worker that never waits
    writes = []

    def rows() -> Iterator[CsvRow]:
        for row in _rows(30, start=5):
            if row.line == 20:  # between two batches of 10
                # a reader unsubscribes through the web while the import is running
                other.execute(
                    "UPDATE subscribers SET status = 'unsubscribed' WHERE email = 'r2@example.org'"
                )
                writes.append("ok")
            yield row
        yield from _rows(5)  # the file also lists the five already stored

    counts = store.import_subscribers(db, rows(), source="big", batch_size=10)
    assert writes == ["ok"]  # no "database is locked"
    assert (counts.added, counts.unchanged, counts.suppressed) == (30, 4, 1)
    person = store.get_subscriber(db, "r2@example.org")
    assert person is not None and person.status.value == "unsubscribed"  # suppression won
    other.close()


def test_an_interrupted_import_leaves_whole_batches(db):
    def rows() -> Iterator[CsvRow]:
        for row in _rows(25):
            if row.line == 22:
                raise KeyboardInterrupt
            yield row

    with pytest.raises(KeyboardInterrupt):
        store.import_subscribers(db, rows(), source="cut", batch_size=10)
    stored = db.execute("SELECT email, name, unsub_token FROM subscribers ORDER BY id").fetchall()
    assert len(stored) == 20
    assert all(r["name"].startswith("Reader ") and r["unsub_token"] for r in stored)


def test_export_guards_a_formula_in_the_address_and_reads_it_back(tmp_path, run_cli):
    path = tmp_path / "in.csv"
    path.write_text("email,name\n=2*3@example.org,Eq\n+1@example.org,Plus\n", encoding="utf-8")
    assert run_import(run_cli, path)["added"] == 2
    out = tmp_path / "out.csv"
    assert run_cli("subscribers", "export", "--out", str(out)).exit_code == 0
    exported = out.read_text(encoding="utf-8").splitlines()
    assert "'=2*3@example.org,Eq" in exported and "'+1@example.org,Plus" in exported
    assert not any(line.startswith(("=", "+")) for line in exported)
    again = run_import(run_cli, out)
    assert (again["unchanged"], again["invalid"]) == (2, 0)
