"""An issue's words and variants from settings: the subject and preheader Dispatch writes when
the editor writes none (in each language), and every persona variant rendered and stored."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from dispatch.config import Settings
from dispatch.errors import IssueError
from dispatch.models import Article, Issue
from dispatch.render.i18n import translations
from dispatch.render.settings import renderer_from, send_links
from dispatch.store import Database
from dispatch.store import donations as donation_store
from dispatch.store import issues as issue_store


def default_subject(outlet_name: str, articles: Sequence[Article], lang: str = "en") -> str:
    """The subject Dispatch writes when the editor writes none, in ``lang``."""
    _ = translations(lang).gettext
    if not articles:
        return _("%(name)s: this week") % {"name": outlet_name}
    return _("%(name)s: %(title)s") % {"name": outlet_name, "title": articles[0].title}


def default_preheader(articles: Sequence[Article], lang: str = "en") -> str:
    """The preheader Dispatch writes when the editor writes none, in ``lang``."""
    _ = translations(lang).gettext
    rest = [a.title for a in articles[1:4]]
    if rest:
        text = _("Also: %(titles)s") % {"titles": " · ".join(rest)}
    else:
        text = _("This week's stories from our newsroom.")
    return text if len(text) <= 140 else text[:139].rstrip() + "…"


def _texts_by_language(settings: Settings, issue: Issue) -> Callable[[str], tuple[str, str]]:
    """(subject, preheader) of an issue for each language variant: the editor's own words as
    written, the ones Dispatch wrote in the variant's language."""
    own_subject = issue.subject != default_subject(
        settings.outlet_name, issue.articles, settings.language
    )
    own_preheader = issue.preheader != default_preheader(issue.articles, settings.language)

    def texts(lang: str) -> tuple[str, str]:
        subject = (
            issue.subject
            if own_subject
            else default_subject(settings.outlet_name, issue.articles, lang)
        )
        preheader = issue.preheader if own_preheader else default_preheader(issue.articles, lang)
        return subject, preheader

    return texts


def render_and_store(
    db: Database, settings: Settings, issue_id: str, now: datetime | None = None
) -> Issue:
    """(Re-)render every persona variant of an issue and store them; returns the issue."""
    issue = issue_store.get_issue(db, issue_id)
    if issue is None:
        raise IssueError(f"There is no issue {issue_id}", "`dispatch issues` lists them.")
    renderer = renderer_from(settings)
    campaign = donation_store.active_campaign_progress(db, now or datetime.now(UTC))
    variants = renderer.render_issue(
        issue,
        campaign=campaign,
        links=send_links(settings, issue.id),
        texts=_texts_by_language(settings, issue),
    )
    issue_store.save_variants(db, issue.id, variants)
    return issue
