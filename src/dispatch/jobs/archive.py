"""The public archive: sent digests as web pages, with nothing personal in them."""

from __future__ import annotations

from dispatch.config import Settings
from dispatch.donations import donation_link_base
from dispatch.models import Persona
from dispatch.render.i18n import language_list, pick_language, translations
from dispatch.render.placeholders import fill_placeholders, greeting_for
from dispatch.render.templates import variant_name
from dispatch.store import Database, archive
from dispatch.store.archive import ArchivedIssue


def archive_listing(db: Database) -> list[ArchivedIssue]:
    return archive.archived_issues(db)


def archive_page(
    db: Database, settings: Settings, issue_id: str, subscribe_url: str, lang: str = ""
) -> str | None:
    """A sent digest as a web page: the non-donor copy with nothing personal in it (a general
    greeting, the plain Payment Link, and the signup page where the unsubscribe link was), in
    ``lang`` when it is one of the outlet's languages (a copy's "view in your browser" link
    says which)."""
    if len(issue_id) > 200:
        return None
    language = pick_language(lang, language_list(settings.language, settings.languages))
    persona = Persona.NON_DONOR.value
    row = archive.archived_variant(
        db, issue_id, variant_name(persona, language, settings.language)
    ) or archive.archived_variant(db, issue_id, persona)
    if row is None:
        return None
    gettext = translations(language, settings.locale_dir).gettext
    values = {
        "GREETING": greeting_for("", mode="none", gettext=gettext),
        "NAME": "",
        "EMAIL": "",
        "DONATE_URL": donation_link_base(db, settings) or subscribe_url,
        "UNSUBSCRIBE_URL": subscribe_url,
    }
    return fill_placeholders(row["html"], values, is_html=True)
