"""`dispatch db copy`: an outlet moves from SQLite to PostgreSQL and back, every table, counts
checked, never over a database that holds rows, no password on the command line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from dispatch.store import PostgresURL, open_db
from dispatch.store import copy as copy_store
from dispatch.store import subscribers as subscriber_store
from dispatch.subscribers import CsvRow
from tests.plugins.postgres import PASSWORD


def _fill(path: Path) -> None:
    """A small outlet: readers (one forgotten), an issue, its ledger, a payment link."""
    now = "2026-11-27T10:00:00+00:00"
    with open_db(path, create=True) as db:
        rows = [CsvRow(i, f"r{i}@example.org", f"Reader {i}") for i in range(1, 6)]
        subscriber_store.import_subscribers(db, rows, source="test")
        subscriber_store.forget(db, "r5@example.org")
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO issues (id, subject, created_at) VALUES ('2026-W48', 'Week 48', ?)",
                (now,),
            )
            conn.execute(
                "INSERT INTO deliveries (issue_id, subscriber_id, email, token, variant, state,"
                " created_at, updated_at) SELECT '2026-W48', id, email, 'tok' || id, 'default',"
                " 'sent', ?, ? FROM subscribers",
                (now, now),
            )
            conn.execute(
                "INSERT INTO payment_links (id, url, kind, livemode, created_at)"
                " VALUES ('plink_1', 'https://buy.stripe.com/test_1', 'custom', 0, ?)",
                (now,),
            )


def _contents(db) -> dict[str, list[tuple]]:
    return {
        t: sorted(tuple(r) for r in db.execute(f"SELECT * FROM {t}").fetchall())
        for t in copy_store.tables_in_order()
    }


def test_an_outlet_moves_to_postgresql_and_back_unchanged(run_cli, pg_url, tmp_path):
    source = tmp_path / "outlet.sqlite3"
    _fill(source)
    bare = pg_url.replace(f":{PASSWORD}@", "@")
    result = run_cli("db", "copy", str(source), bare, "--json", env={"PGPASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    copied = json.loads(result.output)["tables"]
    assert copied["subscribers"] == 4 and copied["deliveries"] == 4
    assert copied["suppressions"] == 1 and copied["payment_links"] == 1
    back = tmp_path / "back.sqlite3"
    again = run_cli("db", "copy", bare, f"sqlite:///{back}", env={"PGPASSWORD": PASSWORD})
    assert again.exit_code == 0, again.output
    assert "every count matches" in again.output
    with open_db(source) as a, open_db(back) as b:
        assert _contents(a) == _contents(b)
    with open_db(PostgresURL.parse(pg_url, tmp_path)) as pg:  # new rows take new ids
        subscriber_store.import_subscribers(pg, [CsvRow(1, "new@example.org", "")], "t")
        ids = [r[0] for r in pg.execute("SELECT id FROM subscribers ORDER BY id")]
        assert len(ids) == 5 and ids[-1] > ids[-2]


def test_a_target_with_rows_is_refused_and_left_alone(run_cli, tmp_path):
    source, target = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    _fill(source)
    _fill(target)
    result = run_cli("db", "copy", str(source), str(target))
    assert result.exit_code == 1
    assert "The target database is not empty" in result.output
    with open_db(target) as db:
        assert db.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0] == 4


def test_a_password_on_the_command_line_is_refused_and_not_echoed(run_cli, tmp_path):
    source = tmp_path / "a.sqlite3"
    _fill(source)
    url = "postgresql://news:hunter2-secret@127.0.0.1:1/news"
    result = run_cli("db", "copy", str(source), url)
    assert result.exit_code != 0
    assert "has a password in it" in result.output and "PGPASSWORD" in result.output
    assert "hunter2-secret" not in result.output


def test_a_value_postgresql_cannot_hold_names_the_table_and_copies_nothing(
    run_cli, pg_url, tmp_path
):
    """SQLite keeps text in an INTEGER column; PostgreSQL refuses it: the copy says which
    table and leaves the target empty, so it can be fixed and run again."""
    source = tmp_path / "outlet.sqlite3"
    _fill(source)
    with open_db(source) as db:
        db.execute("UPDATE deliveries SET attempts = 'many' WHERE id = 1")
    bare = pg_url.replace(f":{PASSWORD}@", "@")
    result = run_cli("db", "copy", str(source), bare, env={"PGPASSWORD": PASSWORD})
    assert result.exit_code == 1
    assert "Copying the table deliveries failed" in result.output
    with open_db(PostgresURL.parse(pg_url, tmp_path)) as pg:
        assert pg.execute("SELECT COUNT(*) FROM subscribers").fetchone()[0] == 0


def test_writes_to_the_source_during_a_copy_are_left_out_whole(tmp_path):
    """The copy reads one moment of the source: an issue and its ledger row written while the
    copy runs (after `subscribers` was copied, before `issues` and `deliveries`) land in the
    copy not at all rather than half, and the counts match that moment."""
    source_path, target_path = tmp_path / "outlet.sqlite3", tmp_path / "copy.sqlite3"
    _fill(source_path)
    writer = sqlite3.connect(source_path, isolation_level=None)

    def write_meanwhile(table: str, rows: int) -> None:
        if table == "subscribers":
            writer.execute(
                "INSERT INTO issues (id, subject, created_at) VALUES ('2026-W49', 'Week 49',"
                " '2026-12-04T10:00:00+00:00')"
            )
            writer.execute(
                "INSERT INTO deliveries (issue_id, subscriber_id, email, token, variant, state,"
                " created_at, updated_at) SELECT '2026-W49', 1, 'r1@example.org', 'late',"
                " 'default', 'sent', created_at, created_at FROM issues WHERE id = '2026-W49'"
            )

    with open_db(source_path) as source, open_db(target_path, create=True) as target:
        copied = copy_store.copy_tables(source, target, progress=write_meanwhile)
        assert copied["deliveries"] == 4
        assert copy_store.count(target, "deliveries") == 4
        assert copy_store.count(target, "issues") == 1
        assert copy_store.count(source, "deliveries") == 5  # the write itself went through
    writer.close()
