"""`dispatch donations …` and `dispatch campaign …`: Stripe links, sync, thanks, campaigns."""

from __future__ import annotations

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.jobs import campaigns as campaign_jobs
from dispatch.jobs.donations import setup_donations, sync_donations
from dispatch.models import format_money


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
@click.option("--preset", metavar="AMOUNT",
              help="Amount shown first on the pay-what-you-want page.")
@click.option("--fixed", multiple=True, metavar="AMOUNT",
              help="Also make a one-off link for this fixed amount; repeat for several.")
@click.option("--monthly", multiple=True, metavar="AMOUNT",
              help="Also make a monthly (subscription) link for this amount; repeat for several.")
@click.option("--json", "as_json", is_flag=True, help="Print the links as JSON.")
@pass_app
def setup(app: App, currency: str | None, preset: str | None, fixed: tuple[str, ...],
          monthly: tuple[str, ...], as_json: bool) -> None:
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
    result = setup_donations(app.db(), app.settings, currency=currency, preset=preset,
                             fixed=fixed, monthly=monthly)
    if as_json:
        echo_json({"mode": result.mode, "links": result.links})
        return
    for link in result.links:
        verb = "Created" if link["created"] else "Found"
        amount = (f" {format_money(link['amount_minor'], link['currency'])}"
                  if link["amount_minor"] else "")
        click.echo(f"{verb} {link['kind']}{amount} link ({result.mode} mode): {link['url']}")
    click.echo("Personal donation links in each issue now start from the first link above.")


@donations.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def sync(app: App, as_json: bool) -> None:
    """Pull completed Checkout Sessions and refunds from Stripe and attribute each gift.

    Safe to rerun at any time: each session and refund is counted once. A gift paid with a
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
        f"{counts['refunds_updated']} updated."
    )


@donations.command("list")
@click.option("--issue", help="Only gifts attributed to this issue.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many, newest first (0 = all).")
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
        refunded = f", refunded {format_money(r['refunded_minor'], r['currency'])}" \
            if r["refunded_minor"] else ""
        who = f"subscriber #{r['subscriber_id']}" if r["subscriber_id"] else "unattributed"
        click.echo(
            f"{r['created'][:10]}  {format_money(r['amount_minor'], r['currency']):>14}  "
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
@click.option("--start", "starts", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day (UTC), YYYY-MM-DD.")
@click.option("--end", "ends", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Last day (UTC), YYYY-MM-DD.")
@pass_app
def create(app: App, name: str, goal: str, currency: str | None, starts, ends) -> None:
    """Create a campaign; while it runs, its progress shows in each issue's appeal.

    Only gifts in the campaign's currency count toward its goal (currencies are never
    converted or added together).

    \b
    Example:
      dispatch campaign create "Winter drive" --goal 5000 --start 2026-12-01 --end 2026-12-31
    """
    row = campaign_jobs.create(app.db(), app.settings, name=name, goal=goal, currency=currency,
                               starts_on=starts.date(), ends_on=ends.date())
    click.echo(
        f"Created campaign {row['name']!r}: {format_money(row['goal_minor'], row['currency'])} "
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
        click.echo('No campaigns. Create one with `dispatch campaign create NAME --goal ...`.')
        return
    for r in rows:
        click.echo(
            f"{r['name']}: {format_money(r['raised_minor'], r['currency'])} of "
            f"{format_money(r['goal_minor'], r['currency'])} ({r['percent']}%, "
            f"{r['donors']} donors), {r['starts_on']} to {r['ends_on']} [{r['state']}]"
        )


COMMANDS = [donations, campaign]
