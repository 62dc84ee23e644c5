"""`dispatch report`: who gave after which issue."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.reports import build_report, render_table, write_chart, write_csv


@click.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True,
              help='Print JSON: {"issues": [...], "donors": [...], "unattributed": {...}, '
              '"totals": {...}}; with ISSUE, just that issue\'s object.')
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write one row per issue to this CSV file.")
@click.option("--chart", "chart_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw gifts and conversion per issue into this .svg file.")
@pass_app
def report(app: App, issue: str | None, as_json: bool, csv_file: Path | None,
           chart_file: Path | None) -> None:
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
    """
    data = build_report(app.db(), issue)
    if csv_file is not None:
        write_csv(data, csv_file)
    if chart_file is not None:
        write_chart(data, chart_file, locale=app.settings.language)
    if as_json:
        echo_json(data["issues"][0] if issue else data)
        return
    click.echo(render_table(data, locale=app.settings.language))
    for path, what in ((csv_file, "CSV"), (chart_file, "Chart")):
        if path is not None:
            click.echo(f"{what} written to {path}")


COMMANDS = [report]
