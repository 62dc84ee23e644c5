"""Review finding: a send renders a draft digest's stored copies anew only under the send
lock, after reading the issue again, never while another send holds the lock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatch.errors import SendError
from dispatch.jobs.build import build_issue
from dispatch.jobs.send import send_issue
from dispatch.models import RenderedVariant
from dispatch.store import issues as issue_store
from dispatch.store.sendlock import send_lock
from tests.conftest import sqlite_only
from tests.plugins.smtp import add_subscribers


def write_article(folder: Path, slug: str, title: str, when: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{slug}.md").write_text(
        f"---\ntitle: {title}\ndate: {when:%Y-%m-%d %H:%M:%S}\n"
        f"url: https://news.example.org/{slug}/\n---\n\n"
        f"{title}. The council met on Tuesday and agreed the plan after a long debate.\n",
        encoding="utf-8",
    )


@sqlite_only  # the lock file (PostgreSQL: test_store_postgres)
def test_a_send_that_waits_on_the_lock_leaves_the_stored_copies_alone(
    db, make_settings, smtp_server, smtp_env, tmp_path
):
    add_subscribers(db, [("ana@example.org", "Ana")])
    site = tmp_path / "site"
    write_article(site, "bridge", "Bridge reopens", datetime.now(UTC) - timedelta(hours=3))
    settings = make_settings(DISPATCH_SOURCES=str(site), **smtp_env)
    issue = build_issue(db, settings).issue
    assert issue is not None
    marked = [
        RenderedVariant(v.persona, v.subject, "<p>as another send stored it</p>", "stored")
        for v in issue_store.get_variants(db, issue.id).values()
    ]
    issue_store.save_variants(db, issue.id, marked)
    with send_lock(db), pytest.raises(SendError, match="Another `dispatch send` is running"):
        send_issue(db, settings, issue.id)
    kept = issue_store.get_variants(db, issue.id).values()
    assert {v.html for v in kept} == {"<p>as another send stored it</p>"}
