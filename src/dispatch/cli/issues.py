"""`dispatch issues` and `dispatch issue show|edit|pin|unpin|drop|restore|move|delete`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dispatch.cli._app import App, echo_json, pass_app
from dispatch.errors import AnswerNeeded
from dispatch.jobs import editing
from dispatch.models import IssueStatus
from dispatch.store import issues as issue_store


@click.command("issues")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def list_issues(app: App, as_json: bool) -> None:
    """List every issue with its status.

    \b
    Example:
      dispatch issues
    """
    rows = issue_store.list_issues(app.db())
    if as_json:
        echo_json(
            [
                {
                    "issue": i.id,
                    "kind": i.kind,
                    "status": i.status,
                    "subject": i.subject,
                    "created_at": i.created_at.isoformat(),
                    "sent_at": i.sent_at.isoformat() if i.sent_at else None,
                }
                for i in rows
            ]
        )
        return
    if not rows:
        click.echo("No issues yet. Run `dispatch build`.")
    for i in rows:
        click.echo(f"{i.id:<22} {i.kind:<7} {i.status:<8} {i.subject}")


@click.group()
def issue() -> None:
    """Look at and shape a draft issue before it is sent.

    \b
    Example:
      dispatch issue show 2026-W48
      dispatch issue edit 2026-W48 --subject "Flood defences: what the council decided"
      dispatch issue pin 2026-W48 3
      dispatch issue delete 2026-W47
    """


def _show(app: App, issue_id: str) -> None:
    issue_obj = editing.require_issue(app.db(), issue_id)
    click.echo(f"Issue {issue_obj.id} ({issue_obj.status})")
    click.echo(f"Subject:   {issue_obj.subject}")
    click.echo(f"Preheader: {issue_obj.preheader}")
    if issue_obj.note:
        click.echo(f"Note:      {issue_obj.note}")
    listing = editing.article_list(app.db(), issue_id)
    for entry in listing:
        marks = ("pinned " if entry["pinned"] else "") + ("DROPPED" if entry["dropped"] else "")
        click.echo(f"  {entry['number']:>2}. {entry['title']}  {marks}".rstrip())
    if [e["number"] for e in listing] != sorted(e["number"] for e in listing):
        click.echo("  (Numbers belong to the articles: pin, move and drop never change them.)")


@issue.command("show")
@click.argument("issue_id", metavar="ISSUE")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def show(app: App, issue_id: str, as_json: bool) -> None:
    """Show an issue's subject, note and numbered articles.

    \b
    Example:
      dispatch issue show 2026-W48
    """
    if as_json:
        i = editing.require_issue(app.db(), issue_id)
        echo_json(
            {
                "issue": i.id,
                "status": i.status,
                "subject": i.subject,
                "preheader": i.preheader,
                "note": i.note,
                "articles": editing.article_list(app.db(), issue_id),
            }
        )
    else:
        _show(app, issue_id)


@issue.command("edit")
@click.argument("issue_id", metavar="ISSUE")
@click.option("--subject", help="New subject line.")
@click.option("--preheader", help="New preheader (the preview text after the subject).")
@click.option("--note", help="Editor's note above the articles (blank lines split paragraphs).")
@click.option(
    "--note-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the editor's note from a UTF-8 text file.",
)
@pass_app
def edit(
    app: App,
    issue_id: str,
    subject: str | None,
    preheader: str | None,
    note: str | None,
    note_file: Path | None,
) -> None:
    """Change a draft's subject, preheader or editor's note.

    \b
    Example:
      dispatch issue edit 2026-W48 --subject "The week in Riverside" --note-file note.txt
    """
    if note_file is not None:
        note = note_file.read_text(encoding="utf-8")
    editing.edit_issue(
        app.db(), app.settings, issue_id, subject=subject, preheader=preheader, note=note
    )
    _show(app, issue_id)


def _flag_command(name: str, help_text: str, **flag: bool) -> click.Command:
    @click.argument("issue_id", metavar="ISSUE")
    @click.argument("number", type=click.IntRange(min=1))
    @pass_app
    def command(app: App, issue_id: str, number: int) -> None:
        editing.set_article(app.db(), app.settings, issue_id, number, **flag)
        _show(app, issue_id)

    command.__doc__ = f"{help_text}\n\n\b\nExample:\n  dispatch issue {name} 2026-W48 2\n"
    return issue.command(name)(command)


_flag_command("pin", "Pin article NUMBER to the top of the issue.", pinned=True)
_flag_command("unpin", "Unpin article NUMBER.", pinned=False)
_flag_command("drop", "Leave article NUMBER out of the issue.", dropped=True)
_flag_command("restore", "Put a dropped article NUMBER back.", dropped=False)


@issue.command("move")
@click.argument("issue_id", metavar="ISSUE")
@click.argument("number", type=click.IntRange(min=1))
@click.option("--to", "to", type=click.IntRange(min=1), required=True, help="New position.")
@pass_app
def move(app: App, issue_id: str, number: int, to: int) -> None:
    """Move article NUMBER to another position.

    \b
    Example:
      dispatch issue move 2026-W48 4 --to 1
    """
    editing.move_article(app.db(), app.settings, issue_id, number, to)
    _show(app, issue_id)


@issue.command("delete")
@click.argument("issue_id", metavar="ISSUE")
@click.option("--yes", is_flag=True, help="Do not ask; delete at once (for scripts).")
@pass_app
def delete(app: App, issue_id: str, yes: bool) -> None:
    """Discard an unsent draft, after asking for a `y`.

    Its stories become new again for the next `dispatch build`. A sent issue, or one whose
    send has started, is never deleted.

    \b
    Example:
      dispatch issue delete 2026-W47
      dispatch issue delete 2026-W47 --yes
    """
    draft = editing.require_issue(app.db(), issue_id)
    if not yes and draft.status == IssueStatus.DRAFT:
        question = f"Delete the draft {draft.id} ({len(draft.articles)} articles: {draft.subject})?"
        if not _ask(question, f"dispatch issue delete {draft.id} --yes"):
            raise click.Abort()
    editing.delete_draft(app.db(), issue_id)
    click.echo(f"Deleted the draft {issue_id}.")


def _ask(question: str, instead: str) -> bool:
    """A yes/no question on the terminal (an answer piped in counts too). From cron or a script
    with nothing to read, a clear usage error naming the non-interactive ``instead``, not
    click's bare "Aborted!"."""
    try:
        return click.confirm(question)
    except click.Abort:
        if sys.stdin.isatty():
            raise  # Ctrl-C or Ctrl-D at the question
        click.echo(err=True)
        raise AnswerNeeded(
            "There is no terminal to answer the question",
            f"Pass --yes to delete without a question: {instead}",
        ) from None


COMMANDS = [list_issues, issue]
