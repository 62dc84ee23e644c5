"""`dispatch send`, `dispatch status` and `dispatch weekly`: mail an issue and follow its ledger."""

from __future__ import annotations

from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, is_tty, pass_app
from dispatch.errors import PartialSendError
from dispatch.jobs.copies import dry_run, send_test_copies
from dispatch.jobs.send import SendOptions, send_issue
from dispatch.jobs.status import SendSummary, issue_status
from dispatch.jobs.weekly import WeeklyResult, run_weekly
from dispatch.models import Persona

LIST_LIMIT = 20


def _print_counts(summary: SendSummary) -> None:
    counts = summary.counts
    total = sum(counts.values())
    shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    click.echo(
        f"Issue {summary.issue_id} ({summary.issue_status}): {total} recipients"
        + (f": {shown}" if shown else "")
    )
    if counts.get("sending"):
        click.echo(
            f"{counts['sending']} in flight now"
            if summary.running
            else f"{counts['sending']} were in flight when a send stopped: the next "
            f"`dispatch send {summary.issue_id}` marks them uncertain"
        )
    if len(summary.senders) > 1:  # a shared send (PostgreSQL): who carried what
        click.echo(
            "Senders: "
            + "; ".join(
                f"{host} (pid {pid}) {state}, {sent} sent"
                for host, pid, state, sent in summary.senders
            )
        )
    if summary.bounced_total and not summary.bounced:
        click.echo(
            f"{summary.bounced_total} refused for good earlier (hard bounces): marked bounced, "
            "never mailed again."
        )
    lists = (
        ("Bounced now", summary.bounced, summary.bounced_now),
        ("Failed", summary.failed, summary.counts.get("failed", 0) - summary.bounced_total),
        ("Uncertain", summary.uncertain, summary.counts.get("uncertain", 0)),
    )
    for title, rows, total in lists:
        if not rows:
            continue
        if title == "Bounced now":
            click.echo(
                "Bounced now: the relay refused these addresses for good; they are marked "
                "bounced and will never be mailed again."
            )
        if title == "Uncertain":
            click.echo(
                "Uncertain: their copy was in flight when a run stopped, or went out and the "
                "relay's reply was lost; they may or may not have it. Check the relay's log, "
                f"then `dispatch send {summary.issue_id} --skip-uncertain` (never mail them "
                "again) or `--resend-uncertain` (mail them again: some may get two copies)."
            )
        click.echo(f"{title} ({total}):")
        for email, reply in rows[:LIST_LIMIT]:
            click.echo(f"  {email or '(forgotten)'}" + (f"  {reply}" if reply else ""))
        if total > LIST_LIMIT:
            click.echo(
                f"  ... and {total - LIST_LIMIT} more (dispatch status "
                f"{summary.issue_id} --json lists up to 10,000)"
            )


def _verdict(summary: SendSummary) -> None:
    """Exit 3 (with the list already printed) when someone could not be mailed."""
    if summary.bounced_now and not summary.failed:
        raise PartialSendError(
            f"{summary.bounced_now} recipients of {summary.issue_id} were refused for good "
            "(hard bounces)",
            "They are marked bounced and will not be mailed again; nothing to do unless an "
            "address was mistyped (fix it and import it anew).",
        )
    if summary.failed:
        raise PartialSendError(
            f"{summary.counts.get('failed', len(summary.failed)) - summary.bounced_total} of "
            f"{sum(summary.counts.values())} recipients of "
            f"{summary.issue_id} failed permanently",
            f"Fix the addresses or the relay, then `dispatch send {summary.issue_id} "
            "--retry-failed` to try them again on purpose.",
        )
    if summary.uncertain:
        raise PartialSendError(
            f"{summary.counts.get('uncertain', len(summary.uncertain))} recipients of "
            f"{summary.issue_id} are uncertain (a "
            "previous run stopped while their copy was in flight)",
            f"Check the relay's log, then `dispatch send {summary.issue_id} "
            "--resend-uncertain` or `--skip-uncertain`.",
        )


def _notice(message: str) -> None:
    click.echo(message, err=True)


def _run_send(app: App, issue: str, options: SendOptions, as_json: bool) -> SendSummary:
    db = app.db()
    bar = None

    def on_start(total: int) -> None:
        nonlocal bar
        if is_tty() and not as_json:
            bar = click.progressbar(length=total, label=f"Sending {issue}", show_pos=True)
            bar.__enter__()

    def progress(n: int) -> None:
        if bar is not None:
            bar.update(n)

    try:
        return send_issue(
            db,
            app.settings,
            issue,
            options,
            progress=progress,
            on_start=on_start,
            notice=_notice,
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@click.command()
@click.argument("issue")
@click.option(
    "--to",
    "to",
    multiple=True,
    metavar="ADDR",
    help="Send a test copy to this address instead (repeatable); no ledger.",
)
@click.option(
    "--persona",
    type=click.Choice([p.value for p in Persona]),
    default=Persona.NON_DONOR.value,
    show_default=True,
    help="Which reader's copy --to sends.",
)
@click.option(
    "--dry-run",
    "dry_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each active subscriber's copy as a .eml file here; send nothing.",
)
@click.option("--limit", type=click.IntRange(min=1), help="With --dry-run: only the first N.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=64),
    help="SMTP connections in parallel (default DISPATCH_SMTP_CONCURRENCY).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    metavar="PER_SECOND",
    help="Never more than this many messages per second (default DISPATCH_SMTP_RATE; 0 = no "
    "cap: the send finds the relay's quota itself).",
)
@click.option(
    "--rate-per-connection",
    type=click.FloatRange(min=0),
    metavar="PER_SECOND",
    help="At most this many messages per second on each connection (default "
    "DISPATCH_SMTP_RATE_PER_CONNECTION; 0 = no limit).",
)
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Send again to the uncertain recipients (in flight when a run stopped, or the "
    "relay's reply was lost): some may get a second copy.",
)
@click.option(
    "--skip-uncertain",
    is_flag=True,
    help="Mark the uncertain recipients skipped: never mailed again by this issue.",
)
@click.option("--retry-failed", is_flag=True, help="Try permanently failed recipients again.")
@click.option(
    "--without-one-click-unsubscribe",
    "without_one_click",
    is_flag=True,
    help="Send to more than 5,000 although DISPATCH_PUBLIC_URL (the https one-click "
    "unsubscribe) is not set.",
)
@click.option(
    "--no-bounce-breaker",
    "no_bounce_breaker",
    is_flag=True,
    help="Mark readers bounced even when many in a row get the same refusal (normally that "
    "stops the run as a relay problem and bounces none of them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def send(
    app: App,
    issue: str,
    to: tuple[str, ...],
    persona: str,
    dry_dir: Path | None,
    limit: int | None,
    concurrency: int | None,
    rate: float | None,
    rate_per_connection: float | None,
    resend_uncertain: bool,
    skip_uncertain: bool,
    retry_failed: bool,
    without_one_click: bool,
    no_bounce_breaker: bool,
    as_json: bool,
) -> None:
    """Send an issue to every active subscriber, each their own copy; rerun to resume.

    The recipients are fixed when the send starts (one ledger row each); a rerun after any
    interruption, even a kill -9, sends only what is left, so nobody is mailed twice or
    skipped. Each row is written to the send journal just before its message goes: if the run dies
    then, or the connection drops after the message was sent but before the relay answered,
    that row is "uncertain" (it may have arrived). Uncertain rows are never resent on their
    own: `dispatch status ISSUE` lists them and you choose --skip-uncertain or
    --resend-uncertain. Temporary refusals (4xx, dropped connections) are retried with
    backoff for as long as the run lasts. The send paces itself at the relay's quota, found
    from its throttling replies (454, 421, "rate limit") and remembered for the next send;
    --rate caps it. Permanent refusals (5xx) are listed and exit with status 3; an unknown
    address or disabled mailbox (a hard bounce) also marks its reader bounced, never mailed
    again. --retry-failed tries the other failures again on purpose.

    \b
    Example:
      dispatch send 2026-W48 --to me@example.org     # a test copy, no ledger
      dispatch send 2026-W48 --dry-run out/ --limit 5
      dispatch send 2026-W48 --concurrency 4 --rate 14   # never above 14 a second
      dispatch send 2026-W48 --rate-per-connection 5     # a relay that limits each session
      dispatch send 2026-W48 --skip-uncertain            # after a crash: don't risk doubles
      dispatch send 2026-W48 --resend-uncertain          # after a crash: nobody left out
      dispatch send 2026-W48 --retry-failed              # permanent failures, fixed since
    """
    if limit is not None and dry_dir is None:
        raise click.UsageError("--limit goes with --dry-run")
    if to and dry_dir:
        raise click.UsageError("Use either --to or --dry-run, not both")
    if resend_uncertain and skip_uncertain:
        raise click.UsageError("Use either --resend-uncertain or --skip-uncertain")
    if to:
        _send_test_copies(app, issue, to, persona, as_json)
    elif dry_dir is not None:
        _dry_run(app, issue, dry_dir, limit, as_json)
    else:
        options = SendOptions(
            concurrency=concurrency,
            rate=rate,
            rate_per_connection=rate_per_connection,
            resend_uncertain=resend_uncertain,
            skip_uncertain=skip_uncertain,
            retry_failed=retry_failed,
            without_one_click=without_one_click,
            bounce_breaker=not no_bounce_breaker,
        )
        _send_to_list(app, issue, options, as_json)


def _send_test_copies(
    app: App, issue: str, to: tuple[str, ...], persona: str, as_json: bool
) -> None:
    """`send --to`: one copy per address as ``persona`` sees it; exit 3 if any is refused."""
    copies = send_test_copies(app.db(), app.settings, issue, to, persona)
    if as_json:
        echo_json([{"to": c.address, "ok": c.ok, "reply": c.reply} for c in copies])
    for c in copies if not as_json else ():
        click.echo(
            f"{'Sent' if c.ok else 'FAILED'} test copy of {issue} ({persona}) to "
            f"{c.address}" + ("" if c.ok else f": {c.reply}")
        )
    bad = [c for c in copies if not c.ok]
    if bad:
        raise PartialSendError(
            f"{len(bad)} of {len(copies)} test copies were refused",
            "See the relay's replies above.",
        )


def _dry_run(app: App, issue: str, dry_dir: Path, limit: int | None, as_json: bool) -> None:
    """`send --dry-run DIR`: each active subscriber's copy as a .eml file; nothing sent."""
    written = dry_run(app.db(), app.settings, issue, dry_dir, limit)
    if as_json:
        echo_json({"issue": issue, "files": [str(p) for p in written]})
    else:
        click.echo(
            f"Wrote {len(written)} messages of {issue} to {dry_dir} "
            "(nothing sent, ledger untouched)."
        )


def _send_to_list(app: App, issue: str, options: SendOptions, as_json: bool) -> None:
    """The list send (or its resumption): the summary, then the exit status it deserves."""
    summary = _run_send(app, issue, options, as_json)
    if as_json:
        echo_json(summary.as_json())
    else:
        _print_send(summary)
    _verdict(summary)


def _print_send(summary: SendSummary) -> None:
    issue = summary.issue_id
    if summary.fixed is not None:
        click.echo(f"Fixed the ledger of {issue}: {summary.fixed} recipients.")
    elif summary.complete and not summary.sent_now and not summary.failed_now:
        click.echo(f"{issue} has been sent already; nobody was mailed again.")
    if summary.newly_uncertain:
        click.echo(
            f"{summary.newly_uncertain} recipients were in flight when the last run "
            "stopped: marked uncertain."
        )
    if summary.uncertain_now:
        click.echo(
            f"{summary.uncertain_now} messages went out but the relay's reply was lost: "
            "marked uncertain."
        )
    if summary.throttled and summary.learnt_rate:
        click.echo(
            f"The relay throttled {summary.throttled} times; it allows about "
            f"{summary.learnt_rate:.1f} messages a second (remembered for the next send)."
        )
    click.echo(
        f"Sent {summary.sent_now} now, {summary.failed_now} failed, in {summary.seconds:.1f} s."
    )
    _print_counts(summary)


@click.command()
@click.argument("issue")
@click.option("--json", "as_json", is_flag=True, help="Print counts and lists as JSON.")
@pass_app
def status(app: App, issue: str, as_json: bool) -> None:
    """Show an issue's ledger: how many recipients in each state, who failed, who is uncertain.

    \b
    Example:
      dispatch status 2026-W48
      dispatch status 2026-W48 --json
    """
    summary = issue_status(app.db(), issue)
    if as_json:
        data = summary.as_json()
        echo_json(
            {k: data[k] for k in ("issue", "status", "counts", "failed", "replies", "uncertain")}
        )
        return
    _print_counts(summary)


def _print_weekly(result: WeeklyResult) -> None:
    for line in result.messages:
        click.echo(line)
    if result.summary is not None:
        _print_counts(result.summary)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print what happened as JSON.")
@pass_app
def weekly(app: App, as_json: bool) -> None:
    """What cron runs: resume an interrupted send, else send your latest unsent draft as you
    left it, else build and send this week's issue.

    Does nothing when this ISO week's digest has gone out already, or when there is nothing
    new; running it twice is harmless. `dispatch issue delete ISSUE` discards a draft you do
    not want sent.

    \b
    Example:
      .venv/bin/dispatch weekly
      # in crontab, Mondays at 07:00 (the folder that holds .env and .venv):
      0 7 * * 1  cd /srv/dispatch && .venv/bin/dispatch weekly >> weekly.log 2>&1
    """
    result = run_weekly(app.db(), app.settings)
    if as_json:
        echo_json(result.as_json())
    else:
        _print_weekly(result)
    if result.summary is not None:
        _verdict(result.summary)


COMMANDS = [send, status, weekly]
