"""Build an issue: collect, choose the window's new articles, store, render every variant."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from dispatch.articles import CollectOptions, SourceWarning, collect_articles
from dispatch.config import Settings
from dispatch.donations import verify_payment_link
from dispatch.errors import ConfigError, IssueError, SourceError
from dispatch.models import Article, ArticleFlags, Issue, IssueStatus, defuse_placeholders
from dispatch.render.issue import default_preheader, default_subject, render_and_store
from dispatch.store import Database
from dispatch.store import issues as issue_store


@dataclass
class BuildResult:
    """What a build did; ``issue`` is None when there was nothing new (and no --force)."""

    issue: Issue | None
    since: datetime
    until: datetime
    found: int = 0  # articles the sources gave, after merging duplicates
    already_sent: int = 0  # left out because an earlier sent issue carried them
    outside_window: int = 0
    warnings: list[str] = field(default_factory=list)
    replaced_draft: bool = False
    left_out: list[Article] = field(default_factory=list)  # over DISPATCH_MAX_ARTICLES, oldest
    max_articles: int = 0


def issue_id_for(moment: datetime) -> str:
    """Digests are named by ISO week: 2026-W48."""
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def default_window(db: Database, settings: Settings, now: datetime) -> tuple[datetime, datetime]:
    """From where the last sent digest's window ended (no gap, no overlap), or the last
    DISPATCH_WINDOW_DAYS days when no digest has gone out yet."""
    last = issue_store.last_sent_issue(db)
    started = None
    if last is not None:
        started = last.window_end or last.sent_at or last.created_at
    since = started if started is not None else now - timedelta(days=settings.window_days)
    return since, now


def build_issue(
    db: Database,
    settings: Settings,
    *,
    sources: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    issue_id: str | None = None,
    subject: str | None = None,
    preheader: str | None = None,
    note: str | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> BuildResult:
    """Collect the window's new articles into a draft issue and render its variants.

    A draft with the same id is rebuilt: its pins, drops and editor's note are carried over
    (by GUID), subject and preheader recomputed unless given. An issue that is sending or sent
    is never touched.
    """
    now = now or datetime.now(UTC)
    verify_payment_link(settings, db)
    chosen_sources = tuple(sources) or settings.sources
    if not chosen_sources:
        raise ConfigError(
            "No article sources are configured",
            "Pass --source (a feed URL, a feed file or a folder), or set DISPATCH_SOURCES in the "
            "environment or the .env file.",
        )
    default_since, default_until = default_window(db, settings, now)
    window_start = since or default_since
    window_end = until or default_until
    target_id = issue_id or issue_id_for(window_end if until else now)
    existing = issue_store.get_issue(db, target_id, include_dropped=True)
    if existing is not None and existing.status != IssueStatus.DRAFT:
        raise IssueError(
            f"Issue {target_id} has already been {existing.status}",
            "Pass --id to build another issue, or `dispatch send` to resume it.",
        )
    if window_start >= window_end and (since or until):
        raise IssueError(
            f"The window is empty: --since {window_start:%Y-%m-%d %H:%M} is not before --until "
            f"{window_end:%Y-%m-%d %H:%M}",
            "Give a --since date earlier than --until.",
        )

    collected = collect_articles(
        chosen_sources,
        CollectOptions(
            excerpt_words=settings.excerpt_words,
            boilerplate_patterns=settings.boilerplate_patterns,
            timeout=settings.feed_timeout,
            now=now,
            window=(window_start, window_end),
        ),
    )
    result = BuildResult(
        issue=None,
        since=window_start,
        until=window_end,
        found=len(collected.articles),
        warnings=[str(w) for w in collected.warnings],
    )
    if not collected.articles:
        _raise_if_no_source_gave_articles(chosen_sources, collected.warnings)
    sent_guids, sent_urls = issue_store.sent_article_keys(db)
    chosen: list[Article] = []
    for article in map(_defused, collected.articles):
        url_key = article.canonical_url or article.url
        if article.guid in sent_guids or (url_key and url_key in sent_urls):
            result.already_sent += 1
        elif article.published is None or not window_start <= article.published < window_end:
            result.outside_window += 1
        else:
            chosen.append(article)
    chosen.sort(key=lambda a: a.published or window_end, reverse=True)

    if not chosen and not force:
        return result

    flags = _carry_flags(db, target_id) if existing is not None else {}
    own_subject, own_preheader = (
        _editor_texts(db, settings, target_id) if existing else (None, None)
    )
    subject = subject or own_subject
    preheader = preheader if preheader is not None else own_preheader
    chosen, result.left_out = cap_articles(
        chosen,
        settings.max_articles,
        pinned={guid for guid, flag in flags.items() if flag["pinned"]},
        dropped={guid for guid, flag in flags.items() if flag["dropped"]},
    )
    result.max_articles = settings.max_articles
    if existing is not None:
        issue_store.delete_draft(db, target_id)
        result.replaced_draft = True
    issue_store.create_issue(
        db,
        target_id,
        subject=subject or default_subject(settings.outlet_name, chosen, settings.language),
        preheader=(
            preheader if preheader is not None else default_preheader(chosen, settings.language)
        ),
        note=note if note is not None else (existing.note if existing else ""),
        articles=chosen,
        window_start=window_start,
        window_end=window_end,
    )
    issue_store.apply_flags(db, target_id, flags)
    if flags:
        # The carried pins and drops changed the top of the issue: the subject and preheader
        # Dispatch writes follow what the reader will see first, not the build's raw order.
        shown = issue_store.get_issue(db, target_id)
        assert shown is not None
        changes = {}
        if not subject:
            changes["subject"] = default_subject(
                settings.outlet_name, shown.articles, settings.language
            )
        if preheader is None:
            changes["preheader"] = default_preheader(shown.articles, settings.language)
        issue_store.update_issue_fields(db, target_id, **changes)
    result.issue = render_and_store(db, settings, target_id, now=now)
    return result


def _editor_texts(db: Database, settings: Settings, issue_id: str) -> tuple[str | None, str | None]:
    """(subject, preheader) of a draft where the editor wrote them; None where Dispatch did
    (then they equal what Dispatch would write for the draft's articles as they stand)."""
    draft = issue_store.get_issue(db, issue_id)
    if draft is None:
        return None, None
    subject: str | None = draft.subject
    if subject == default_subject(settings.outlet_name, draft.articles, settings.language):
        subject = None
    preheader: str | None = draft.preheader
    if preheader == default_preheader(draft.articles, settings.language):
        preheader = None
    return subject, preheader


def cap_articles(
    articles: list[Article],
    limit: int,
    pinned: Collection[str] = (),
    dropped: Collection[str] = (),
) -> tuple[list[Article], list[Article]]:
    """(kept, left out): at most ``limit`` articles in the issue, newest first. The editor's
    pins always stay; articles the editor dropped stay (still dropped) without taking room.
    ``articles`` is sorted newest first; the kept ones keep that order."""
    if len(articles) <= limit:
        return articles, []
    room = max(limit - sum(1 for a in articles if a.guid in pinned), 0)
    kept, left_out = [], []
    for article in articles:
        if article.guid in pinned or article.guid in dropped:
            kept.append(article)
        elif room:
            kept.append(article)
            room -= 1
        else:
            left_out.append(article)
    return kept, left_out


def _raise_if_no_source_gave_articles(
    sources: Sequence[str], warnings: Sequence[SourceWarning]
) -> None:
    """No article at all: say why when every source failed or gave only undated items, naming
    them; a source that was read and was simply quiet leads to "nothing new" instead."""
    unreadable = {w.source for w in warnings if w.kind == "unreadable"}
    undated = {w.source: w for w in warnings if w.kind == "undated"}
    if not set(sources) <= unreadable | set(undated):
        return
    if not undated:
        raise SourceError(
            "No source could be read: " + "; ".join(str(w) for w in warnings),
            "Check the addresses in --source or DISPATCH_SOURCES; nothing was built.",
        )
    problems = [f"{w}" for w in undated.values()]
    problems += [str(w) for w in warnings if w.source in unreadable]
    raise SourceError(
        "No article has a date, so none can be placed in a week: " + "; ".join(problems),
        "Each feed item needs a <pubDate> (RSS) or <published>/<updated> (Atom); ask whoever "
        "runs the feed to add them, or use a folder of article files with a `date:` line. "
        "Nothing was built.",
    )


def _defused(article: Article) -> Article:
    """Article text and links can't carry a per-recipient placeholder into the email."""
    return replace(
        article,
        title=defuse_placeholders(article.title),
        excerpt=defuse_placeholders(article.excerpt),
        body_html=defuse_placeholders(article.body_html),
        image_alt=defuse_placeholders(article.image_alt),
        url=defuse_placeholders(article.url, url=True),
        image_url=defuse_placeholders(article.image_url, url=True) if article.image_url else None,
    )


def _carry_flags(db: Database, issue_id: str) -> dict[str, ArticleFlags]:
    """Pins, drops and positions the editor set on a draft, keyed by GUID."""
    return {
        row["guid"]: {
            "pinned": bool(row["pinned"]),
            "dropped": bool(row["dropped"]),
            "position": row["position"],
        }
        for row in issue_store.article_rows(db, issue_id)
    }
