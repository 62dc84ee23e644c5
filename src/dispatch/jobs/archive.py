"""The public archive: sent digests as web pages, with nothing personal in them."""

from __future__ import annotations

from dispatch.config import Settings
from dispatch.donations import donation_link_base
from dispatch.models import Persona
from dispatch.render.placeholders import fill_placeholders
from dispatch.store import Database, archive
from dispatch.store.archive import ArchivedIssue


def archive_listing(db: Database) -> list[ArchivedIssue]:
    return archive.archived_issues(db)


def archive_page(db: Database, settings: Settings, issue_id: str, subscribe_url: str) -> str | None:
    """A sent digest as a web page: the non-donor copy with nothing personal in it (a general
    greeting, the plain Payment Link, and the signup page where the unsubscribe link was)."""
    if len(issue_id) > 200:
        return None
    row = archive.archived_variant(db, issue_id, Persona.NON_DONOR.value)
    if row is None:
        return None
    values = {
        "GREETING": "Dear reader,",
        "NAME": "",
        "EMAIL": "",
        "DONATE_URL": donation_link_base(db, settings) or subscribe_url,
        "UNSUBSCRIBE_URL": subscribe_url,
    }
    return fill_placeholders(row["html"], values, is_html=True)
