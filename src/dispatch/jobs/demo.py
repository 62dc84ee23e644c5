"""`dispatch demo`: the weekly job on the bundled sample site, with no network and no settings.

Everything lives in one work folder (reset on each run): a fresh SQLite database, the issue's
previews and, once the send is wired in, a Maildir of the messages a loopback SMTP server got.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dispatch.config import Secret, Settings
from dispatch.devsmtp import DevSmtpServer
from dispatch.errors import InputError
from dispatch.jobs.build import BuildResult, build_issue
from dispatch.jobs.preview import PreviewFile, preview_issue
from dispatch.jobs.send import send_issue
from dispatch.jobs.status import SendSummary, issue_status
from dispatch.jobs.subscribers import ImportReport, import_file
from dispatch.sample import SAMPLE_DIR, SAMPLE_SOURCES, SAMPLE_WINDOW
from dispatch.store import Database, local_path, open_db

DEMO_MARKER = ".dispatch-demo"


def dispatch_command(cwd: Path | None = None) -> str:
    """How to type the `dispatch` that is running now: ``.venv/bin/dispatch`` after the README's
    install (a bare ``dispatch`` is not on the PATH unless the venv is activated), else its full
    path, else ``python -m dispatch`` with this interpreter."""
    script = Path(sys.prefix) / "bin" / "dispatch"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m dispatch"
    here = (cwd or Path.cwd()).resolve()
    if script.parent.parent.parent.resolve() == here:  # the venv sits in this folder
        return str(script.relative_to(script.parent.parent.parent))
    return shlex.quote(str(script))


@dataclass
class DemoResult:
    workdir: Path
    db_path: Path
    build: BuildResult
    previews: list[PreviewFile] = field(default_factory=list)
    imported: ImportReport | None = None
    send: SendSummary | None = None
    maildir: Path | None = None
    example_eml: Path | None = None


def demo_subscribers() -> Path:
    """The committed example list (subscribers/example.csv), or its packaged copy."""
    for candidate in (
        Path(__file__).resolve().parents[3] / "subscribers" / "example.csv",
        SAMPLE_DIR / "subscribers.csv",
    ):
        if candidate.is_file():
            return candidate
    raise InputError("The sample subscriber list is missing", "Reinstall Dispatch.")


def demo_settings(workdir: Path) -> Settings:
    """A complete, made-up configuration: nothing here reaches the network."""
    return Settings.from_mapping(
        {
            "DISPATCH_DB": str(workdir / "dispatch.sqlite3"),
            "DISPATCH_FROM": "The Riverside Ledger <newsletter@riverside-ledger.example>",
            "DISPATCH_OUTLET_NAME": "The Riverside Ledger",
            "DISPATCH_POSTAL_ADDRESS": "The Riverside Ledger, 12 Quay Street, Riverside",
            "DISPATCH_PAYMENT_LINK": "https://donate.stripe.com/test_demo_riverside",
            "DISPATCH_SECRET_KEY": "demo-only-secret-key-not-for-production",
        }
    )


def prepare_workdir(workdir: Path) -> None:
    """Empty the work folder of an earlier demo; refuse to wipe a folder the demo didn't make."""
    if workdir.exists():
        if not (workdir / DEMO_MARKER).exists() and any(workdir.iterdir()):
            raise InputError(
                f"{workdir} exists and was not made by `dispatch demo`",
                "Pass --workdir with a new or empty folder.",
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / DEMO_MARKER).write_text("made by dispatch demo; safe to delete\n", encoding="utf-8")


def run_demo(workdir: Path, echo: Callable[[str], None] = print) -> DemoResult:
    workdir = workdir.resolve()
    prepare_workdir(workdir)
    settings = demo_settings(workdir)
    with open_db(settings.db_path, create=True) as db:
        since, until = SAMPLE_WINDOW
        echo(f"1. Building an issue from the sample site ({since:%d %b} to {until:%d %b %Y})")
        built = build_issue(db, settings, sources=SAMPLE_SOURCES, since=since, until=until)
        for warning in built.warnings:
            echo(f"   warning: {warning}")
        if built.issue is None:
            raise InputError("The sample site gave no articles", "This is a bug in Dispatch.")
        for number, article in enumerate(built.issue.articles, 1):
            echo(f"   {number}. {article.title}")
        echo(f"   {built.found} distinct articles found; issue {built.issue.id} stored.")
        previews = preview_issue(db, settings, built.issue.id, workdir / "preview")
        echo("2. Previews for each kind of reader:")
        for p in previews:
            echo(f"   {p.persona:<13} {p.html_path}")
        result = DemoResult(workdir, local_path(settings.db_path), built, previews)
        _send_half(db, settings, workdir, built.issue.id, result, echo)
        return result


def _send_half(
    db: Database,
    settings: Settings,
    workdir: Path,
    issue_id: str,
    result: DemoResult,
    echo: Callable[[str], None],
) -> None:
    """Import the sample list, send through a loopback SMTP server into a Maildir, show status."""
    csv_path = demo_subscribers()
    result.imported = report = import_file(db, csv_path)
    echo(f"3. Imported {csv_path.name}: {report.added} subscribers added.")
    result.maildir = workdir / "Maildir"
    with DevSmtpServer(result.maildir) as server:
        echo(f"4. Sending {issue_id} through a local SMTP server at {server.url}")
        send_settings = replace(settings, smtp_url=Secret(server.url), smtp_concurrency=2)
        summary = send_issue(db, send_settings, issue_id)
    result.send = summary
    echo(
        f"   {summary.sent_now} personal copies sent, {summary.failed_now} failed, in "
        f"{summary.seconds:.1f} s."
    )
    status = issue_status(db, issue_id)
    counts = ", ".join(f"{n} {state}" for state, n in status.counts.items() if n)
    echo(f"5. dispatch status {issue_id}: {counts} (issue {status.issue_status}).")
    received = sorted((result.maildir / "new").iterdir())
    if received:
        result.example_eml = workdir / "example.eml"
        shutil.copyfile(received[0], result.example_eml)
    echo(f"   The messages are in {result.maildir}/new ({len(received)} files); one of them,")
    echo(f"   ready to open in a mail program: {result.example_eml}")
    replay = f"DISPATCH_DB={shlex.quote(str(settings.db_path))} {dispatch_command()}"
    echo(f"   Replay it yourself: {replay} status {issue_id}")
