"""`dispatch subscribers …`: import, list, export, unsubscribe and forget subscribers."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.errors import InputError
from dispatch.jobs import subscribers as jobs
from dispatch.models import SubscriberStatus
from dispatch.store import Database

STATUSES = [s.value for s in SubscriberStatus] + ["all"]


@click.group()
def subscribers() -> None:
    """Manage the list: import CSV files, list, export, unsubscribe, forget.

    \b
    Example:
      dispatch subscribers import subscribers/example.csv
      dispatch subscribers list --status active
    """


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print counts and invalid rows as JSON.")
@click.option(
    "--map",
    "mapping",
    metavar="FIELD=COLUMN,…",
    help="Which column is which, for a layout Dispatch does not know "
    "(fields: email, name, first_name, last_name, tags, language, optin_time, optin_ip, "
    "source, status).",
)
@click.option("--dry-run", is_flag=True, help="Show what would change; store nothing.")
@pass_app
def import_(app: App, file: Path, as_json: bool, mapping: str | None, dry_run: bool) -> None:
    """Import a subscriber CSV: `email,name[,tags…]` or another tool's export.

    Reads Mailchimp (audience, unsubscribed and cleaned exports), Substack, Ghost, listmonk,
    Buttondown and beehiiv exports and spreadsheets saved by Excel: comma, semicolon or tab,
    UTF-8, UTF-16 or Windows-1252 are found by themselves. Names, first names, tags, language
    and consent (opt-in time, IP, source) go to fields of their own. New addresses are added as
    active unless the file says the old tool would not mail them (then unsubscribed or
    bounced). Nobody who unsubscribed, bounced, complained or asked to be forgotten is ever
    resubscribed (counted as suppressed). Bad rows are reported with their line number; good
    rows still go in, in short batches. An unknown layout lists its columns: name them with
    --map.

    \b
    Example:
      dispatch subscribers import subscribers/example.csv
      dispatch subscribers import mailchimp-export.csv --dry-run
      dispatch subscribers import list.csv --map 'email=E-mail,name=Full name' --json
    """

    def database() -> Database | None:
        # Opened only once the file has been read; a dry run never creates the database.
        where = app.settings.db_path
        if dry_run and isinstance(where, Path) and not where.exists():
            return None
        return app.db(create=not dry_run)

    report = jobs.import_file(database, file, mapping, dry_run=dry_run)
    if as_json:
        echo_json(report.as_json())
        return
    verb = "Would import" if dry_run else "Imported"
    click.echo(
        f"{verb} {file} ({report.layout} layout, {report.encoding}, "
        f"{_DELIMITER_NAMES.get(report.delimiter, report.delimiter)}-separated): "
        f"{report.rows} rows: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.suppressed} suppressed, "
        f"{report.invalid} invalid." + (" Nothing was stored." if dry_run else "")
    )
    if report.ignored_columns:
        click.echo(
            f"  Columns not imported: {', '.join(report.ignored_columns)} "
            "(--map tags=<column> keeps one as tags).",
            err=True,
        )
    for row in report.invalid_rows:
        shown = f" {row.email}" if row.email else ""
        click.echo(f"  line {row.line}:{shown}: {row.reason}", err=True)


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


@subscribers.command("list")
@click.option("--status", type=click.Choice(STATUSES), default="all", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of subscribers.")
@pass_app
def list_(app: App, status: str, as_json: bool) -> None:
    """List subscribers with their status.

    \b
    Example:
      dispatch subscribers list --status unsubscribed
      dispatch subscribers list --json
    """
    people = jobs.list_subscribers(app.db(), status)
    if as_json:
        echo_json(
            [
                {
                    "email": s.email,
                    "status": s.status.value,
                    "name": s.name,
                    "first_name": s.first_name,
                    "tags": list(s.tags),
                    "language": s.language,
                    "consent_at": s.consent_at,
                    "consent_ip": s.consent_ip,
                    "consent_source": s.consent_source,
                }
                for s in people
            ]
        )
        return
    count = 0
    for s in people:
        count += 1
        tags = f"  [{', '.join(s.tags)}]" if s.tags else ""
        click.echo(f"{s.email:<40} {s.status.value:<13} {s.name}{tags}")
    click.echo(f"{count} subscribers" + ("" if status == "all" else f" ({status})"), err=True)


@subscribers.command("export")
@click.option("--status", type=click.Choice(STATUSES), default="active", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@pass_app
def export(app: App, status: str, out: Path | None) -> None:
    """Write subscribers as CSV (email,name,tags…), the format `import` reads.

    \b
    Example:
      dispatch subscribers export --out backup.csv
      dispatch subscribers export --status all > everyone.csv
    """
    if out is None:
        jobs.export_csv(app.db(), sys.stdout, status)
        return
    try:
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = jobs.export_csv(app.db(), handle, status)
    except OSError as exc:
        raise InputError(
            f"Cannot write {out}: {exc.strerror}", "Choose a file in a folder you can write to."
        ) from exc
    click.echo(f"Wrote {count} subscribers to {out}.", err=True)


@subscribers.command("unsubscribe")
@click.argument("email")
@pass_app
def unsubscribe(app: App, email: str) -> None:
    """Unsubscribe one address; no later import will resubscribe it.

    \b
    Example:
      dispatch subscribers unsubscribe ana@example.org
    """
    subscriber = jobs.unsubscribe(app.db(), email)
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        click.echo(f"{subscriber.email} is unsubscribed.")
    else:
        click.echo(
            f"{subscriber.email} stays {subscriber.status.value}: it is not mailed, and only a "
            "new confirmed signup can bring it back."
        )


@subscribers.command("forget")
@click.argument("email")
@pass_app
def forget(app: App, email: str) -> None:
    """Erase a person's data (name, tokens, history); keep only a hash that blocks re-import.

    \b
    Example:
      dispatch subscribers forget ana@example.org
    """
    found = jobs.forget(app.db(), email)
    if found:
        click.echo("Forgotten: their data is erased; a one-way hash keeps them off the list.")
    else:
        click.echo("Not on the list; its hash is now suppressed so no import can add it.")


COMMANDS = [subscribers]
