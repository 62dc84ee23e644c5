"""`dispatch report`: who gave after which issue."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.jobs.reporting import build_report, write_html, write_newsmatch
from dispatch.reports import render_table, write_chart, write_csv


@click.command()
@click.argument("issue", required=False)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print JSON: {"issues": [...], "donors": [...], "unattributed": {...}, '
    '"totals": {...}}; with ISSUE, just that issue\'s object.',
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write one row per issue to this CSV file.",
)
@click.option(
    "--chart",
    "chart_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw gifts and conversion per issue into this .svg file.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write one self-contained page (charts, no scripts, works offline) "
    "with MRR month by month, lifetime value per issue and retention.",
)
@click.option(
    "--newsmatch",
    "newsmatch_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the matching-campaign CSV: new recurring donors between --since "
    "and --until with their annualised value (12x a monthly gift).",
)
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First day for --newsmatch.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day for --newsmatch.")
@pass_app
def report(
    app: App,
    issue: str | None,
    as_json: bool,
    csv_file: Path | None,
    chart_file: Path | None,
    html_file: Path | None,
    newsmatch_file: Path | None,
    since: datetime | None,
    until: datetime | None,
) -> None:
    """Per issue: recipients, sent, failed, bounced, unsubscribed since, donation clicks,
    gifts (count and net amount per currency), donors and conversion; then unattributed gifts.

    Amounts in --json and --csv are integers in the currency's minor unit (cents; yen for
    JPY), net of refunds, never added across currencies. Conversion is the share of
    recipients the issue was sent to who gave through their link. Run `dispatch donations
    sync` first for fresh numbers.

    \b
    Example:
      dispatch report
      dispatch report 2026-W48 --json
      dispatch report --csv report.csv --chart trend.svg
      dispatch report --html board.html
      dispatch report --newsmatch newsmatch.csv --since 2026-11-01 --until 2026-12-31
    """
    if newsmatch_file is not None and (since is None or until is None):
        raise click.UsageError("--newsmatch needs --since and --until (YYYY-MM-DD).")
    data = build_report(app.db(), issue)
    if html_file is not None:
        write_html(data, html_file, app.settings)
    if newsmatch_file is not None:
        assert since is not None and until is not None
        write_newsmatch(app.db(), since.date(), until.date(), newsmatch_file)
    if csv_file is not None:
        write_csv(data, csv_file)
    if chart_file is not None:
        write_chart(data, chart_file, locale=app.settings.language)
    if as_json:
        echo_json(data["issues"][0] if issue else data)
        return
    click.echo(render_table(data, locale=app.settings.language))
    for path, what in (
        (csv_file, "CSV"),
        (chart_file, "Chart"),
        (html_file, "Page"),
        (newsmatch_file, "NewsMatch CSV"),
    ):
        if path is not None:
            click.echo(f"{what} written to {path}")


COMMANDS = [report]
