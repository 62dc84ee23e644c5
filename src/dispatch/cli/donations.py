"""`dispatch donations …` and `dispatch campaign …`: Stripe links, sync, thanks, campaigns."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.errors import ExitStatus
from dispatch.jobs import campaigns as campaign_jobs
from dispatch.jobs.appeals import SEGMENTS, send_appeal, thank_donors
from dispatch.jobs.donations import setup_donations, sync_donations
from dispatch.money import format_money


def _money(app: App, minor_units: int, currency: str) -> str:
    """Exact, in DISPATCH_LANGUAGE: "$12.50", "KWD 1.250"."""
    return format_money(minor_units, currency, locale=app.settings.language)


@click.group()
def donations() -> None:
    """Stripe donations: create the Payment Link, pull gifts, thank donors.

    \b
    Example:
      dispatch donations setup
      dispatch donations sync --json
      dispatch donations list --issue 2026-W48
    """


@donations.command("setup")
@click.option("--currency", help="ISO currency of the links (default: DISPATCH_CURRENCY).")
@click.option(
    "--preset", metavar="AMOUNT", help="Amount shown first on the pay-what-you-want page."
)
@click.option(
    "--fixed",
    multiple=True,
    metavar="AMOUNT",
    help="Also make a one-off link for this fixed amount; repeat for several.",
)
@click.option(
    "--monthly",
    multiple=True,
    metavar="AMOUNT",
    help="Also make a monthly (subscription) link for this amount; repeat for several.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the links as JSON.")
@pass_app
def setup(
    app: App,
    currency: str | None,
    preset: str | None,
    fixed: tuple[str, ...],
    monthly: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create (or adopt) the outlet's donation Payment Link in Stripe.

    Creates a Product, a pay-what-you-want Price and a Payment Link whose button says
    "Donate", and stores the link. Rerunning finds the stored link and creates only what is
    missing; with DISPATCH_PAYMENT_LINK set, that link is adopted instead. Amounts are in
    major units (12.50 USD, 1000 JPY).

    \b
    Example:
      dispatch donations setup --currency eur --preset 10
      dispatch donations setup --fixed 5 --fixed 25 --monthly 10
    """
    result = setup_donations(
        app.db(), app.settings, currency=currency, preset=preset, fixed=fixed, monthly=monthly
    )
    if as_json:
        echo_json({"mode": result.mode, "links": result.links})
        return
    for link in result.links:
        verb = "Created" if link["created"] else "Found"
        amount = (
            f" {_money(app, link['amount_minor'], link['currency'])}"
            if link["amount_minor"]
            else ""
        )
        click.echo(f"{verb} {link['kind']}{amount} link ({result.mode} mode): {link['url']}")
    click.echo("Personal donation links in each issue now start from the first link above.")


@donations.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def sync(app: App, as_json: bool) -> None:
    """Pull completed Checkout Sessions and refunds from Stripe and attribute each gift; then
    monthly and yearly gifts: subscriptions, their invoices (renewals, failed cards) and
    disputes, everything a missed webhook would have said.

    Safe to rerun at any time: each Stripe object is counted once. A gift paid with a
    delayed method stays pending until a later sync sees it paid (or failed).

    \b
    Example:
      dispatch donations sync
      dispatch donations sync --json   # {"new": 3, "updated": 1, "unattributed": 0, ...}
    """
    result = sync_donations(app.db(), app.settings)
    counts = result.as_dict()
    if as_json:
        echo_json(counts)
        return
    click.echo(
        f"Synced {counts['sessions_seen']} completed sessions from {counts['payment_links']} "
        f"payment link(s) ({counts['mode']} mode): {counts['new']} new, {counts['updated']} "
        f"updated, {counts['unattributed']} of the new ones unattributed, {counts['pending']} "
        f"pending payment; refunds: {counts['refunds_new']} new, "
        f"{counts['refunds_updated']} updated; recurring: {counts['subscriptions_new']} new "
        f"subscriptions, {counts['invoices_new']} new invoices, {counts['disputes_new']} new "
        "disputes."
    )


@donations.command("thank")
@click.option(
    "--max-age-days",
    type=click.IntRange(min=1),
    default=14,
    show_default=True,
    help="Only gifts paid this recently (older ones are never thanked late).",
)
@click.option("--dry-run", is_flag=True, help="Show which gifts would be thanked; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
@pass_app
def thank(app: App, ctx: click.Context, max_age_days: int, dry_run: bool, as_json: bool) -> None:
    """Send a thank-you email for each new gift, naming the issue that prompted it.

    Each gift is thanked once, whatever happens: its thank-you is fixed in the send ledger
    before it is sent, and rerunning resumes. A gift whose payer is not an active subscriber is
    skipped (Stripe's own receipt still reaches them). Run after `dispatch donations sync`.

    \b
    Example:
      dispatch donations sync && dispatch donations thank
      dispatch donations thank --dry-run --json
    """
    result = thank_donors(app.db(), app.settings, max_age_days=max_age_days, dry_run=dry_run)
    if as_json:
        echo_json(result.as_dict())
    elif dry_run:
        click.echo(f"Would thank {len(result.dry_run)} gift(s):")
        for item in result.dry_run:
            who = (
                f"subscriber #{item['subscriber_id']}"
                if item["subscriber_id"]
                else "nobody (payer is not a subscriber)"
            )
            click.echo(
                f"  {_money(app, item['amount_minor'], item['currency']):>14}  "
                f"{item['issue'] or 'no issue':<12}  {who}"
            )
    else:
        click.echo(
            f"Thank-yous: {result.sent} sent, {len(result.failed)} failed, "
            f"{len(result.uncertain)} in doubt, {result.skipped} gift(s) with nobody to thank."
        )
        for donation_id, reply in result.failed:
            click.echo(f"  gift #{donation_id}: {reply}", err=True)
        if result.uncertain:
            click.echo(
                "  In doubt (a send was interrupted mid-message): resolve with "
                "`dispatch send thanks-<gift> --resend-uncertain` or --skip-uncertain.",
                err=True,
            )
    if result.failed:
        ctx.exit(ExitStatus.PARTIAL)


@donations.command("list")
@click.option("--issue", help="Only gifts attributed to this issue.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="How many, newest first (0 = all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the donations as JSON.")
@pass_app
def list_(app: App, issue: str | None, limit: int, as_json: bool) -> None:
    """List donations, newest first, net of refunds (no payer addresses are shown).

    \b
    Example:
      dispatch donations list --issue 2026-W48
    """
    rows = campaign_jobs.donation_rows(app.db(), issue, limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No donations recorded yet. Run `dispatch donations sync`.")
        return
    for r in rows:
        flags = " (possibly forwarded)" if r["possibly_forwarded"] else ""
        refunded = (
            f", refunded {_money(app, r['refunded_minor'], r['currency'])}"
            if r["refunded_minor"]
            else ""
        )
        who = f"subscriber #{r['subscriber_id']}" if r["subscriber_id"] else "unattributed"
        click.echo(
            f"{r['created'][:10]}  {_money(app, r['amount_minor'], r['currency']):>14}  "
            f"{r['status']:<7}  {r['issue'] or '-':<10}  {who}{refunded}{flags}"
        )


@click.group()
def campaign() -> None:
    """Fundraising campaigns: a goal, dates, progress in every issue, standalone appeals.

    \b
    Example:
      dispatch campaign create "Winter drive" --goal 5000 --currency usd \\
          --start 2026-12-01 --end 2026-12-31
      dispatch campaign list
    """


@campaign.command("create")
@click.argument("name")
@click.option("--goal", required=True, metavar="AMOUNT", help="Goal in major units, e.g. 5000.")
@click.option("--currency", help="ISO currency (default: DISPATCH_CURRENCY).")
@click.option(
    "--start",
    "starts",
    type=click.DateTime(["%Y-%m-%d"]),
    required=True,
    help="First day (UTC), YYYY-MM-DD.",
)
@click.option(
    "--end",
    "ends",
    type=click.DateTime(["%Y-%m-%d"]),
    required=True,
    help="Last day (UTC), YYYY-MM-DD.",
)
@pass_app
def create(
    app: App, name: str, goal: str, currency: str | None, starts: datetime, ends: datetime
) -> None:
    """Create a campaign; while it runs, its progress shows in each issue's appeal.

    Only gifts in the campaign's currency count toward its goal (currencies are never
    converted or added together).

    \b
    Example:
      dispatch campaign create "Winter drive" --goal 5000 --start 2026-12-01 --end 2026-12-31
    """
    row = campaign_jobs.create(
        app.db(),
        app.settings,
        name=name,
        goal=goal,
        currency=currency,
        starts_on=starts.date(),
        ends_on=ends.date(),
    )
    click.echo(
        f"Created campaign {row['name']!r}: {_money(app, row['goal_minor'], row['currency'])} "
        f"from {row['starts_on']} to {row['ends_on']}."
    )


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the campaigns as JSON.")
@pass_app
def list_campaigns(app: App, as_json: bool) -> None:
    """List campaigns with their progress.

    \b
    Example:
      dispatch campaign list --json
    """
    rows = campaign_jobs.overview(app.db())
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No campaigns. Create one with `dispatch campaign create NAME --goal ...`.")
        return
    for r in rows:
        click.echo(
            f"{r['name']}: {_money(app, r['raised_minor'], r['currency'])} of "
            f"{_money(app, r['goal_minor'], r['currency'])} ({r['percent']}%, "
            f"{r['donors']} donors), {r['starts_on']} to {r['ends_on']} [{r['state']}]"
        )


@campaign.command("appeal")
@click.option(
    "--segment",
    type=click.Choice(list(SEGMENTS)),
    default="never-donated",
    show_default=True,
    help="Who gets it (donor history from synced gifts).",
)
@click.option("--subject", help="Subject line (default: 'Will you support <outlet>?').")
@click.option("--message", default="", help="The editor's message above the appeal.")
@click.option(
    "--message-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the message from this UTF-8 text file (paragraphs split by blank lines).",
)
@click.option(
    "--id",
    "issue_id",
    help="Issue id (default: appeal-<date>-<segment>); rerun with the same id to resume.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the send summary as JSON.")
@click.pass_context
@pass_app
def appeal(
    app: App,
    ctx: click.Context,
    segment: str,
    subject: str | None,
    message: str,
    message_file: Path | None,
    issue_id: str | None,
    as_json: bool,
) -> None:
    """Send a standalone appeal email to a segment, through the send engine and its ledger.

    Each reader gets the donor-aware appeal (recent donors are thanked, lapsed donors asked
    to renew) with the running campaign's progress. Rerunning resumes the same appeal: nobody
    gets it twice.

    \b
    Example:
      dispatch campaign appeal --segment never-donated --message "Our winter drive ends Sunday."
      dispatch campaign appeal --segment lapsed --id appeal-renewals
    """
    if message_file is not None:
        message = message_file.read_text(encoding="utf-8")
    result = send_appeal(
        app.db(), app.settings, segment=segment, subject=subject, message=message, issue_id=issue_id
    )
    summary = result.summary
    if as_json:
        echo_json(
            {
                "issue": result.issue_id,
                "fixed": result.fixed,
                **(summary.as_json() if summary else {}),
            }
        )
    elif summary is not None:
        counts = summary.counts
        click.echo(
            f"Appeal {result.issue_id}: {counts.get('sent', 0)} sent, "
            f"{counts.get('failed', 0)} failed, {counts.get('uncertain', 0)} in doubt."
        )
    if summary is not None and (summary.failed or summary.uncertain):
        ctx.exit(ExitStatus.PARTIAL)


COMMANDS = [donations, campaign]
