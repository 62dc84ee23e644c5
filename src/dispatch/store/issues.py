"""Issues, their articles and their rendered variants."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

from dispatch.errors import IssueError
from dispatch.models import Article, ArticleFlags, Issue, IssueKind, IssueStatus, RenderedVariant
from dispatch.store import Database, from_db_time, to_db_time, utcnow


def _article(row: sqlite3.Row) -> Article:
    return Article(
        title=row["title"],
        url=row["url"],
        guid=row["guid"],
        published=from_db_time(row["published"]),
        source=row["source"],
        excerpt=row["excerpt"],
        body_html=row["body_html"],
        image_url=row["image_url"],
        image_alt=row["image_alt"],
        canonical_url=row["canonical_url"],
    )


def _issue(row: sqlite3.Row, articles: Sequence[Article] = ()) -> Issue:
    created = from_db_time(row["created_at"])
    assert created is not None
    return Issue(
        id=row["id"],
        kind=IssueKind(row["kind"]),
        status=IssueStatus(row["status"]),
        subject=row["subject"],
        preheader=row["preheader"],
        note=row["note"],
        created_at=created,
        window_start=from_db_time(row["window_start"]),
        window_end=from_db_time(row["window_end"]),
        sent_at=from_db_time(row["sent_at"]),
        articles=tuple(articles),
        send_started_at=from_db_time(row["send_started_at"]),
    )


def issue_exists(db: Database, issue_id: str) -> bool:
    return db.execute("SELECT 1 FROM issues WHERE id = ?", (issue_id,)).fetchone() is not None


def create_issue(
    db: Database,
    issue_id: str,
    *,
    subject: str,
    articles: Iterable[Article] = (),
    kind: IssueKind = IssueKind.DIGEST,
    preheader: str = "",
    note: str = "",
    window_start: datetime | None = None,
    window_end: datetime | None = None,
) -> None:
    """Insert a draft issue and its articles in one transaction."""
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO issues (id, kind, status, subject, preheader, note, window_start,"
            " window_end, created_at) VALUES (?, ?, 'draft', ?, ?, ?, ?, ?, ?)",
            (
                issue_id,
                kind,
                subject,
                preheader,
                note,
                to_db_time(window_start),
                to_db_time(window_end),
                now,
            ),
        )
        for position, art in enumerate(articles):
            conn.execute(
                "INSERT INTO issue_articles (issue_id, position, guid, url, canonical_url, title,"
                " published, source, excerpt, body_html, image_url, image_alt)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    issue_id,
                    position,
                    art.guid,
                    art.url,
                    art.canonical_url or art.url,
                    art.title,
                    to_db_time(art.published),
                    art.source,
                    art.excerpt,
                    art.body_html,
                    art.image_url,
                    art.image_alt,
                ),
            )


def get_issue(db: Database, issue_id: str, include_dropped: bool = False) -> Issue | None:
    row = db.execute("SELECT * FROM issues WHERE id = ?", (issue_id,)).fetchone()
    if row is None:
        return None
    where = "" if include_dropped else " AND dropped = 0"
    arts = db.execute(
        f"SELECT * FROM issue_articles WHERE issue_id = ?{where}"
        " ORDER BY pinned DESC, position, id",
        (issue_id,),
    ).fetchall()
    return _issue(row, [_article(a) for a in arts])


def require_issue(db: Database, issue_id: str) -> Issue:
    """The issue, or an IssueError naming the last few known ones."""
    issue = get_issue(db, issue_id)
    if issue is None:
        known = [i.id for i in list_issues(db)][-5:]
        hint = f"Known issues: {', '.join(known)}." if known else "Run `dispatch build` first."
        raise IssueError(f"There is no issue {issue_id}", hint)
    return issue


def list_issues(db: Database, kind: IssueKind | None = None) -> list[Issue]:
    if kind:
        rows = db.execute(
            "SELECT * FROM issues WHERE kind = ? ORDER BY created_at, id", (kind,)
        ).fetchall()
    else:
        rows = db.execute("SELECT * FROM issues ORDER BY created_at, id").fetchall()
    return [_issue(r) for r in rows]


def article_rows(db: Database, issue_id: str) -> list[sqlite3.Row]:
    """Every article of an issue with its editing flags (pinned, dropped, position), in the
    order it appears, each with its ``number``: its place in the issue as built (1 = the first
    stored), which pin, move and drop never change, so a number always means the same article."""
    return db.execute(
        "SELECT id, position, pinned, dropped, guid, url, title, published,"
        " ROW_NUMBER() OVER (ORDER BY id) AS number FROM issue_articles"
        " WHERE issue_id = ? ORDER BY pinned DESC, position, id",
        (issue_id,),
    ).fetchall()


def update_issue_fields(db: Database, issue_id: str, **fields: str) -> None:
    allowed = {"subject", "preheader", "note"}
    bad = set(fields) - allowed
    if bad:
        raise ValueError(f"cannot update {bad}")
    if not fields:
        return
    assignments = ", ".join(f"{name} = ?" for name in fields)
    with db.transaction() as conn:
        conn.execute(f"UPDATE issues SET {assignments} WHERE id = ?", (*fields.values(), issue_id))


def set_article_flags(
    db: Database,
    issue_id: str,
    article_id: int,
    *,
    pinned: bool | None = None,
    dropped: bool | None = None,
    position: int | None = None,
) -> None:
    with db.transaction() as conn:
        if pinned is not None:
            conn.execute(
                "UPDATE issue_articles SET pinned = ? WHERE issue_id = ? AND id = ?",
                (int(pinned), issue_id, article_id),
            )
        if dropped is not None:
            conn.execute(
                "UPDATE issue_articles SET dropped = ? WHERE issue_id = ? AND id = ?",
                (int(dropped), issue_id, article_id),
            )
        if position is not None:
            conn.execute(
                "UPDATE issue_articles SET position = ? WHERE issue_id = ? AND id = ?",
                (position, issue_id, article_id),
            )


def set_issue_status(db: Database, issue_id: str, status: IssueStatus | str) -> None:
    status = IssueStatus(status)  # a plain string is checked here (jobs/send.py still passes one)
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        if status == IssueStatus.SENDING:
            conn.execute(
                "UPDATE issues SET status = 'sending',"
                " send_started_at = COALESCE(send_started_at, ?) WHERE id = ?",
                (now, issue_id),
            )
        elif status == IssueStatus.SENT:
            conn.execute(
                "UPDATE issues SET status = 'sent', sent_at = COALESCE(sent_at, ?) WHERE id = ?",
                (now, issue_id),
            )
        else:
            conn.execute("UPDATE issues SET status = ? WHERE id = ?", (status, issue_id))


def save_variants(db: Database, issue_id: str, variants: Iterable[RenderedVariant]) -> None:
    now = to_db_time(utcnow())
    with db.transaction() as conn:
        for v in variants:
            conn.execute(
                "INSERT INTO issue_variants (issue_id, variant, subject, html, text, rendered_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (issue_id, variant) DO UPDATE SET"
                " subject = excluded.subject, html = excluded.html, text = excluded.text,"
                " rendered_at = excluded.rendered_at",
                (issue_id, v.persona, v.subject, v.html, v.text, now),
            )


def get_variants(db: Database, issue_id: str) -> dict[str, RenderedVariant]:
    rows = db.execute(
        "SELECT variant, subject, html, text FROM issue_variants WHERE issue_id = ?", (issue_id,)
    ).fetchall()
    return {
        r["variant"]: RenderedVariant(r["variant"], r["subject"], r["html"], r["text"])
        for r in rows
    }


def sent_article_keys(db: Database) -> tuple[set[str], set[str]]:
    """GUIDs and canonical URLs carried by any issue already sent (or being sent)."""
    rows = db.execute(
        "SELECT a.guid, a.canonical_url FROM issue_articles a JOIN issues i ON i.id = a.issue_id"
        " WHERE i.status IN ('sending', 'sent') AND a.dropped = 0"
    ).fetchall()
    # An article without a link has no URL key: '' must never match another such article.
    return {r["guid"] for r in rows}, {r["canonical_url"] for r in rows if r["canonical_url"]}


def last_sent_issue(db: Database, kind: IssueKind = IssueKind.DIGEST) -> Issue | None:
    row = db.execute(
        "SELECT * FROM issues WHERE kind = ? AND status IN ('sending', 'sent')"
        " ORDER BY COALESCE(sent_at, send_started_at, created_at) DESC LIMIT 1",
        (kind,),
    ).fetchone()
    return _issue(row) if row else None


def delete_draft(db: Database, issue_id: str) -> None:
    """Remove a draft (articles and variants go with it); sent or sending issues are kept."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM issues WHERE id = ? AND status = 'draft'", (issue_id,))


def discard_draft(db: Database, issue_id: str) -> bool:
    """Delete an unsent draft with its articles and variants, in one statement that also
    checks it: never an issue that is sending or sent, nor one with ledger rows (a send that
    has started). True when it was deleted."""
    with db.transaction() as conn:
        cursor = conn.execute(
            "DELETE FROM issues WHERE id = ? AND status = 'draft'"
            " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_id = ?)",
            (issue_id, issue_id),
        )
        return cursor.rowcount > 0


def unsent_drafts(db: Database, kind: IssueKind = IssueKind.DIGEST) -> list[Issue]:
    """Drafts of ``kind`` not sent, newest build first, each with its kept articles."""
    rows = db.execute(
        "SELECT id FROM issues WHERE kind = ? AND status = 'draft'"
        " ORDER BY created_at DESC, id DESC",
        (kind,),
    ).fetchall()
    drafts = [get_issue(db, row["id"]) for row in rows]
    return [d for d in drafts if d is not None]


def apply_flags(db: Database, issue_id: str, flags: dict[str, ArticleFlags]) -> None:
    """Re-apply pins/drops/positions carried over from a rebuilt draft, matched by GUID."""
    if not flags:
        return
    with db.transaction() as conn:
        for guid, flag in flags.items():
            if not (flag["pinned"] or flag["dropped"]):
                continue
            conn.execute(
                "UPDATE issue_articles SET pinned = ?, dropped = ? WHERE issue_id = ? AND guid = ?",
                (int(flag["pinned"]), int(flag["dropped"]), issue_id, guid),
            )
