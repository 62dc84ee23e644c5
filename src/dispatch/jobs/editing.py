"""The editor's changes to a draft issue: subject, preheader, note, pin, drop, reorder."""

from __future__ import annotations

from dispatch.config import Settings
from dispatch.errors import InputError, IssueError
from dispatch.jobs.build import (
    default_preheader,
    default_subject,
    render_and_store,
    require_issue,
)

__all__ = ["article_list", "edit_issue", "move_article", "require_issue", "set_article"]
from dispatch.models import Issue
from dispatch.store import Database
from dispatch.store import issues as issue_store


def _require_draft(db: Database, issue_id: str) -> Issue:
    issue = require_issue(db, issue_id)
    if issue.status != "draft":
        raise IssueError(
            f"Issue {issue_id} is {issue.status} and can no longer be changed",
            "Build a new issue with `dispatch build --id …` instead.",
        )
    return issue


def article_list(db: Database, issue_id: str) -> list[dict]:
    """Articles in the order they will appear, numbered from 1. A dropped article keeps its
    number and place (marked dropped), so `drop 3` then `restore 3` is the same article."""
    require_issue(db, issue_id)
    return [
        {
            "number": number,
            "id": row["id"],
            "title": row["title"],
            "url": row["url"],
            "published": row["published"],
            "pinned": bool(row["pinned"]),
            "dropped": bool(row["dropped"]),
        }
        for number, row in enumerate(issue_store.article_rows(db, issue_id), 1)
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
    if before.subject == default_subject(settings.outlet_name, before.articles):
        changes["subject"] = default_subject(settings.outlet_name, after.articles)
    if before.preheader == default_preheader(before.articles):
        changes["preheader"] = default_preheader(after.articles)
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
    """Move article ``number`` to position ``to`` among the kept articles (both from 1)."""
    before = _require_draft(db, issue_id)
    listing = [e for e in article_list(db, issue_id) if not e["dropped"]]
    if not 1 <= to <= len(listing):
        raise InputError(f"Position {to} is outside 1..{len(listing)}")
    moving = _article_id(db, issue_id, number)
    order = [e["id"] for e in listing if e["id"] != moving]
    order.insert(to - 1, moving)
    for position, article_id in enumerate(order):
        issue_store.set_article_flags(db, issue_id, article_id, position=position, pinned=False)
    _follow_defaults(db, settings, before)
    return render_and_store(db, settings, issue_id)
