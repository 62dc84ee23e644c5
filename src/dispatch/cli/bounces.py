"""`dispatch bounces process`: read bounces from a mailbox, suppress hard-bouncing addresses."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, is_tty, pass_app
from dispatch.jobs import bounces as bounce_jobs


@click.group("bounces")
def bounces() -> None:
    """Bounces: read delivery failures back and stop mailing dead addresses.

    \b
    Point the envelope sender (Return-Path) of your mail at a mailbox Dispatch can read,
    then run `dispatch bounces process` after each send (cron is fine).

    \b
    Example:
      dispatch bounces process --maildir ~/Maildir/.bounces
    """


@bounces.command("process")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    help="A Maildir folder (cur/, new/) holding the bounces.",
)
@click.option(
    "--mbox",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An mbox file holding the bounces (read only).",
)
@click.option(
    "--imap",
    metavar="URL",
    help="imaps://user:password@host/INBOX (unseen mail; marked seen when done). "
    "Prefer DISPATCH_BOUNCE_MAILBOX: a password in a flag shows in `ps`.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Classify and match, change nothing; reports what a real run would do.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Leave every message where it is (default: Maildir moves processed ones to "
    ".processed and unreadable ones to .unreadable, IMAP marks them seen).",
)
@click.option("--json", "as_json", is_flag=True, help="Print counts and bounces as JSON.")
@pass_app
def process(
    app: App,
    maildir: Path | None,
    mbox: Path | None,
    imap: str | None,
    dry_run: bool,
    keep: bool,
    as_json: bool,
) -> None:
    """Read DSNs and spam complaints, match them to issues and readers, suppress.

    A hard bounce (5.x.x: no such user, domain gone) marks the subscriber `bounced`: never
    mailed again, and no import overturns it. Soft bounces (4.x.x: mailbox full) are counted;
    DISPATCH_SOFT_BOUNCE_LIMIT of them on consecutive issues count as a hard one. Messages that
    are not bounces (auto-replies) are left alone. A spam complaint (ARF feedback report,
    Microsoft JMRP) marks the reader `complained`. A message that cannot be read is moved to
    the `unreadable` folder (an mbox: copied to FILE.unreadable) and listed; the run goes on.
    Rerunning is safe: each DSN and report counts once. With no mailbox option,
    DISPATCH_BOUNCE_MAILBOX is read.

    \b
    Example:
      dispatch bounces process --maildir ~/Maildir/.bounces
      dispatch bounces process --mbox /var/mail/bounces --dry-run
      dispatch bounces process --json   # reads DISPATCH_BOUNCE_MAILBOX, e.g. imaps://...
    """
    show_progress = is_tty() and not as_json

    def progress(n: int) -> None:
        if n % 100 == 0:
            click.echo(f"\r{n} messages read...", nl=False, err=True)

    label, summary = bounce_jobs.process_bounces(
        app.db(),
        app.settings,
        maildir=maildir,
        mbox=mbox,
        imap=imap,
        dry_run=dry_run,
        keep=keep,
        progress=progress if show_progress else None,
    )
    if show_progress and summary.messages >= 100:
        click.echo("", err=True)
    if as_json:
        echo_json({"mailbox": label, "dry_run": dry_run, **summary.as_dict()})
        return
    click.echo(f"Read {summary.messages} messages from {label}.")
    if dry_run:
        click.echo(
            f"Dry run: would record {summary.hard} hard and {summary.soft} soft bounces "
            f"and suppress {summary.suppressed} subscribers. Nothing was changed."
        )
    else:
        click.echo(
            f"Recorded {summary.hard} hard and {summary.soft} soft bounces; "
            f"{summary.suppressed} subscribers suppressed."
        )
    for entry in summary.details:
        if entry["result"] == "suppressed":
            verb = "would suppress" if dry_run else "suppressed"
            click.echo(
                f"  {verb} {entry['address']} ({entry['kind']}, {entry['status']}"
                f"{', issue ' + entry['issue'] if entry['issue'] else ''})"
            )
    if summary.complaints:
        verb = "would mark" if dry_run else "marked"
        click.echo(
            f"Read {summary.complaints} spam complaints; {verb} {summary.complained} "
            "readers complained (never mailed again)."
        )
        for entry in summary.details:
            if entry["kind"] == "complaint" and entry["result"] == "complained":
                click.echo(
                    f"  {entry['address'] or '(forgotten reader)'}"
                    f"{' (issue ' + entry['issue'] + ')' if entry['issue'] else ''}"
                )
    if summary.unsubscribed:
        click.echo(
            f"Unsubscribed {summary.unsubscribed} readers who asked by email "
            "(List-Unsubscribe mailto)."
        )
    if summary.ignored:
        click.echo(f"Left alone {summary.ignored} messages that are not bounces.")
    if summary.unmatched:
        click.echo(f"{summary.unmatched} bounces or complaints matched no subscriber:")
        for entry in summary.details:
            if entry["result"] == "unmatched":
                click.echo(f"  {entry['address'] or '(no address given)'} ({entry['kind']})")
    if summary.already:
        click.echo(f"{summary.already} bounces were processed before (skipped).")
    if summary.unreadable:
        moved = any(p["moved"] == "yes" for p in summary.problems)
        where = f"; moved to {summary.unreadable_folder}" if moved else ""
        aside = "would be set aside" if dry_run else "set aside"
        click.echo(
            f"{summary.unreadable} messages could not be read ({aside}, the run went on{where}):"
        )
        for problem in summary.problems:
            click.echo(f"  {problem['message']}: {problem['reason']}")
    for issue, counts in sorted(summary.by_issue.items()):
        complaints = f", {counts['complaints']} complaints" if counts.get("complaints") else ""
        click.echo(f"  {issue}: {counts['hard']} hard, {counts['soft']} soft{complaints}")


COMMANDS = [bounces]
