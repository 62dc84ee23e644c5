"""`dispatch db copy`: move an outlet between SQLite and PostgreSQL."""

from __future__ import annotations

import click

from dispatch.cli._app import echo_json
from dispatch.jobs.database import copy_database


@click.group()
def db() -> None:
    """The database itself (DISPATCH_DB: a SQLite file or a postgresql:// URL).

    \b
    Example:
      PGPASSWORD=... dispatch db copy dispatch.sqlite3 postgresql://news@db.internal/news
    """


@db.command("copy")
@click.argument("source")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help='Print {"source", "target", "tables"}.')
def copy(source: str, target: str, as_json: bool) -> None:
    """Copy every table from SOURCE into TARGET, which must be empty, and check the counts.

    SOURCE and TARGET are written like DISPATCH_DB: a SQLite file (a path or
    sqlite:///relative/path) or postgresql://user@host/db. A PostgreSQL password comes from
    PGPASSWORD or a libpq password/service file, never from the command line. A missing
    SQLite TARGET is created; a PostgreSQL one must exist (createdb). SOURCE is left as it is.

    \b
    Example:
      PGPASSWORD=... dispatch db copy dispatch.sqlite3 postgresql://news@db.internal/news
      dispatch db copy postgresql://news@db.internal/news sqlite:///back.sqlite3
    """
    result = copy_database(source, target)
    if as_json:
        echo_json({"source": result.source, "target": result.target, "tables": result.tables})
        return
    for table, rows in result.tables.items():
        click.echo(f"{table:<20} {rows:>9,}")
    total = sum(result.tables.values())
    click.echo(
        f"Copied {total:,} rows in {len(result.tables)} tables from {result.source} "
        f"to {result.target}; every count matches."
    )


COMMANDS = [db]
