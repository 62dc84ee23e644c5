"""The editor's changes to a draft issue: subject, preheader, note, pin, drop, reorder."""

from __future__ import annotations

from typing import TypedDict

from dispatch.config import Settings
from dispatch.errors import InputError, IssueError
from dispatch.render.issue import default_preheader, default_subject, render_and_store

__all__ = [
    "article_list",
    "delete_draft",
    "edit_issue",
    "move_article",
    "require_issue",
    "set_article",
]
from dispatch.models import Issue, IssueStatus
from dispatch.store import Database
from dispatch.store import issues as issue_store
from dispatch.store.issues import require_issue


class ArticleEntry(TypedDict):
    """One article of a draft as `dispatch issue articles` lists it."""

    number: int  # the article's own, not its place: editing never changes it
    id: int
    title: str
    url: str
    published: str | None
    pinned: bool
    dropped: bool


def _require_draft(db: Database, issue_id: str) -> Issue:
    issue = require_issue(db, issue_id)
    if issue.status != IssueStatus.DRAFT:
        raise IssueError(
            f"Issue {issue_id} is {issue.status} and can no longer be changed",
            "Build a new issue with `dispatch build --id …` instead.",
        )
    return issue


def article_list(db: Database, issue_id: str) -> list[ArticleEntry]:
    """Articles in the order they will appear, each with its number. The number is the
    article's, not its place: pin, move, drop and restore never change it, so `pin 3` then
    `drop 5` means the articles shown as 3 and 5 before either command."""
    require_issue(db, issue_id)
    return [
        {
            "number": row["number"],
            "id": row["id"],
            "title": row["title"],
            "url": row["url"],
            "published": row["published"],
            "pinned": bool(row["pinned"]),
            "dropped": bool(row["dropped"]),
        }
        for row in issue_store.article_rows(db, issue_id)
    ]


def _article_id(db: Database, issue_id: str, number: int) -> int:
    listing = article_list(db, issue_id)
    for entry in listing:
        if entry["number"] == number:
            return int(entry["id"])
    raise InputError(
        f"Issue {issue_id} has no article number {number}",
        f"Numbers go from 1 to {len(listing)}; `dispatch issue show {issue_id}` lists them.",
    )


def edit_issue(
    db: Database,
    settings: Settings,
    issue_id: str,
    *,
    subject: str | None = None,
    preheader: str | None = None,
    note: str | None = None,
) -> Issue:
    _require_draft(db, issue_id)
    changes = {
        k: v
        for k, v in {"subject": subject, "preheader": preheader, "note": note}.items()
        if v is not None
    }
    if "subject" in changes:
        one_line = " ".join(changes["subject"].split())
        if not one_line:
            raise InputError("The subject cannot be empty")
        changes["subject"] = one_line
    if "preheader" in changes:
        changes["preheader"] = " ".join(changes["preheader"].split())
    issue_store.update_issue_fields(db, issue_id, **changes)
    return render_and_store(db, settings, issue_id)


def _follow_defaults(db: Database, settings: Settings, before: Issue) -> None:
    """A subject or preheader Dispatch wrote itself follows the new article order; one the
    editor wrote stays as it is."""
    after = require_issue(db, before.id)
    changes = {}
    lang = settings.language
    if before.subject == default_subject(settings.outlet_name, before.articles, lang):
        changes["subject"] = default_subject(settings.outlet_name, after.articles, lang)
    if before.preheader == default_preheader(before.articles, lang):
        changes["preheader"] = default_preheader(after.articles, lang)
    issue_store.update_issue_fields(db, before.id, **changes)


def set_article(
    db: Database,
    settings: Settings,
    issue_id: str,
    number: int,
    *,
    pinned: bool | None = None,
    dropped: bool | None = None,
) -> Issue:
    before = _require_draft(db, issue_id)
    article_id = _article_id(db, issue_id, number)
    if dropped is not None:
        entry = next(e for e in article_list(db, issue_id) if e["id"] == article_id)
        if entry["dropped"] == dropped:
            state = "dropped" if dropped else "in the issue (not dropped)"
            raise InputError(
                f"Article {number} of {issue_id} is already {state}",
                f"`dispatch issue show {issue_id}` lists the articles and which are dropped.",
            )
    issue_store.set_article_flags(db, issue_id, article_id, pinned=pinned, dropped=dropped)
    _follow_defaults(db, settings, before)
    return render_and_store(db, settings, issue_id)


def move_article(db: Database, settings: Settings, issue_id: str, number: int, to: int) -> Issue:
    """Move article ``number`` to place ``to`` among the kept articles (from 1, top first).
    The order becomes plain positions (pins are folded in); numbers stay the articles'."""
    before = _require_draft(db, issue_id)
    listing = [e for e in article_list(db, issue_id) if not e["dropped"]]
    if not 1 <= to <= len(listing):
        raise InputError(
            f"Place {to} is outside 1..{len(listing)}",
            "--to counts places from the top among the articles not dropped.",
        )
    moving = _article_id(db, issue_id, number)
    if all(e["id"] != moving for e in listing):
        raise InputError(
            f"Article {number} of {issue_id} is dropped",
            f"Restore it first: dispatch issue restore {issue_id} {number}",
        )
    # Dropped articles keep their place among the others, so a restore puts one back where
    # it was; ``to`` counts only the kept ones.
    order = [e["id"] for e in article_list(db, issue_id) if e["id"] != moving]
    kept = [e["id"] for e in listing if e["id"] != moving]
    order.insert(order.index(kept[to - 1]) if to <= len(kept) else len(order), moving)
    for position, article_id in enumerate(order):
        issue_store.set_article_flags(db, issue_id, article_id, position=position, pinned=False)
    _follow_defaults(db, settings, before)
    return render_and_store(db, settings, issue_id)


def delete_draft(db: Database, issue_id: str) -> Issue:
    """Discard an unsent draft (its articles go back to being new for the next build).
    Never a sent issue, nor one whose send has started: the ledger is the record of who got
    what. Returns the issue as it was."""
    issue = require_issue(db, issue_id)
    if issue.status != IssueStatus.DRAFT or not issue_store.discard_draft(db, issue_id):
        state = "sent" if issue.status == IssueStatus.SENT else "being sent (its send has started)"
        raise IssueError(
            f"Issue {issue_id} is {state}; only an unsent draft can be deleted",
            f"A sent issue stays as the record of who got what; "
            f"`dispatch status {issue_id}` shows it."
            if issue.status == IssueStatus.SENT
            else f"Finish the send with `dispatch send {issue_id}`; it resumes where it stopped.",
        )
    return issue
