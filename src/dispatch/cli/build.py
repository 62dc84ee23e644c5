"""`dispatch build`, `dispatch preview` and `dispatch issue …`: make and shape an issue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.jobs.build import BuildResult, build_issue
from dispatch.jobs.preview import preview_issue
from dispatch.models import Article

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _article_json(article: Article) -> dict[str, str | None]:
    return {
        "title": article.title,
        "url": article.url,
        "published": article.published.isoformat() if article.published else None,
    }


def _print_build(result: BuildResult) -> None:
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    span = f"{result.since:%Y-%m-%d %H:%M} to {result.until:%Y-%m-%d %H:%M} UTC"
    if result.issue is None:
        click.echo(
            f"Nothing new to send: no article published {span} that an earlier issue did not carry"
            f" ({result.found} found, {result.already_sent} already sent, "
            f"{result.outside_window} outside the window). No issue was built; "
            "use --force to build one anyway."
        )
        return
    issue = result.issue
    verb = "Rebuilt" if result.replaced_draft else "Built"
    if not issue.articles:
        click.echo(
            f"{verb} issue {issue.id} with 0 articles ({span}), because of --force: nothing "
            f"was new ({result.found} found, {result.already_sent} already sent, "
            f"{result.outside_window} outside the window). It is kept as a draft, and "
            f"`dispatch send` refuses it while it has no articles. Build again when there is "
            f"news, or discard it: dispatch issue delete {issue.id}"
        )
        return
    click.echo(f"{verb} issue {issue.id} with {len(issue.articles)} articles ({span}):")
    for number, article in enumerate(issue.articles, 1):
        click.echo(f"  {number:>2}. {article.title}  [{_date(article)}]")
    if result.left_out:
        _print_left_out(result)
    click.echo(f"Subject: {issue.subject}")
    click.echo(
        f"Next: dispatch preview {issue.id} --out preview/   then   dispatch send {issue.id}"
    )


def _date(article: Article) -> str:
    return f"{article.published:%a %d %b}" if article.published else "undated"


def _print_left_out(result: BuildResult, shown: int = 10) -> None:
    left = result.left_out
    click.echo(
        f"Left out {len(left)} older article(s): an issue holds at most {result.max_articles} "
        "(DISPATCH_MAX_ARTICLES); the newest were kept. Left out:"
    )
    for article in left[:shown]:
        click.echo(f"      {article.title}  [{_date(article)}]")
    if len(left) > shown:
        click.echo(f"      … and {len(left) - shown} more")


@click.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="URL_OR_PATH",
    help="A feed URL, a feed file or a folder of articles; repeat for several. "
    "Default: DISPATCH_SOURCES.",
)
@click.option("--since", type=click.DateTime(DATE_FORMATS), help="Start of the window (UTC).")
@click.option(
    "--until",
    type=click.DateTime(DATE_FORMATS),
    help="End of the window (UTC); a bare date includes that whole day.",
)
@click.option("--id", "issue_id", help="Issue id (default: the ISO week, like 2026-W48).")
@click.option("--subject", help="Subject line (default: the outlet and the top story).")
@click.option("--preheader", help="The preview line mail apps show after the subject.")
@click.option("--note", help="An editor's note shown above the articles.")
@click.option("--force", is_flag=True, help="Build even if there is nothing new.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def build(
    app: App,
    sources: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    issue_id: str | None,
    subject: str | None,
    preheader: str | None,
    note: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Collect the week's new articles into an issue and render it.

    The window is, by default, everything since the last issue went out (or the last 7 days,
    DISPATCH_WINDOW_DAYS). Articles an earlier sent issue carried are left out; the same story
    from two sources counts once; an issue holds at most DISPATCH_MAX_ARTICLES (default 30),
    the newest. Rebuilding a draft keeps its pins, drops, note and the subject and preheader
    you set.

    \b
    Example:
      dispatch build
      dispatch build --source https://example.org/feed/ --source articles/ --since 2026-11-16
      dispatch build --until 2026-11-22 --json
    """
    until_dt = _utc(until)
    if until is not None and until.hour == until.minute == 0:
        until_dt = _utc(until + timedelta(days=1))
    result = build_issue(
        app.db(create=True),
        app.settings,
        sources=sources,
        since=_utc(since),
        until=until_dt,
        issue_id=issue_id,
        subject=subject,
        preheader=preheader,
        note=note,
        force=force,
    )
    if as_json:
        for warning in result.warnings:
            click.echo(f"Warning: {warning}", err=True)
        echo_json(
            {
                "issue": result.issue.id if result.issue else None,
                "articles": [_article_json(a) for a in result.issue.articles]
                if result.issue
                else [],
                "since": result.since.isoformat(),
                "until": result.until.isoformat(),
                "warnings": result.warnings,
                "left_out": [_article_json(a) for a in result.left_out],
            }
        )
    else:
        _print_build(result)


@click.command()
@click.argument("issue_id", metavar="ISSUE")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the previews into (created if needed).",
)
@pass_app
def preview(app: App, issue_id: str, out_dir: Path) -> None:
    """Write an issue as each kind of reader gets it: non_donor, recent_donor, lapsed_donor.

    Each kind gets an .html file (open it in a browser) and a .txt file (the plain-text part).
    Personal links are clearly fake stand-ins. For a real test email use `dispatch send --to`.

    \b
    Example:
      dispatch preview 2026-W48 --out preview/
    """
    files = preview_issue(app.db(), app.settings, issue_id, out_dir)
    click.echo(f"Subject: {files[0].subject}" if files else "No variants written.")
    for f in files:
        click.echo(f"  {f.persona:<13} {f.html_path}  {f.text_path}")


COMMANDS = [build, preview]
