"""`dispatch doctor`: the preflight before a send, one line per check with what to fix."""

from __future__ import annotations

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.config import load_settings_leniently
from dispatch.errors import DispatchError, ExitStatus
from dispatch.jobs.doctor import run_doctor


class DoctorFailed(DispatchError):
    """A blocking problem: the send would fail or hurt the outlet's deliverability."""


@click.command("doctor")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print {"ok": ..., "checks": [{"name", "status", "detail", "fix"}]}.',
)
@pass_app
def doctor(app: App, as_json: bool) -> None:
    """Check what a send needs and say what to fix; nothing is sent.

    \b
    The relay (connect, STARTTLS, login), the From domain's SPF, DKIM and DMARC
    records, one-click unsubscribe, the public URL, the Payment Link (against Stripe
    when STRIPE_SECRET_KEY is set), the templates, and the list's size against the
    Gmail, Yahoo and Outlook bulk-sender rules (SPF, DKIM and DMARC required from
    5,000 a day: below that they warn, above it they fail). Ends within 30 s even when
    DNS never answers. Exit status 1 when any check fails.

    \b
    Example:
      dispatch doctor                 # before the week's first send
      dispatch doctor --json
    """
    settings, problems = load_settings_leniently(env_file=app.env_file, use_dotenv=app.use_dotenv)
    app.settings = settings
    report = run_doctor(settings, problems, app.db)
    if as_json:
        echo_json(report.as_dict())
        if not report.ok:
            raise click.exceptions.Exit(ExitStatus.ERROR)
        return
    width = max(len(check.name) for check in report.checks)
    for check in report.checks:
        click.echo(f"{check.status.value:<4}  {check.name:<{width}}  {check.detail}")
        if check.fix and check.status.value != "ok":
            click.echo(f"{'':<4}  {'':<{width}}  fix: {check.fix}")
    failed = report.failed
    if failed:
        names = ", ".join(check.name for check in failed)
        raise DoctorFailed(
            f"{len(failed)} check{'s' if len(failed) > 1 else ''} failed ({names})",
            "Fix what each says above, then rerun `dispatch doctor` before sending.",
        )
    click.echo(
        "Ready to send."
        if all(ch.status.value == "ok" for ch in report.checks)
        else "Ready to send; the warnings above are worth fixing."
    )


COMMANDS = [doctor]
