"""The shapes collect_articles takes and returns (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dispatch.articles.urls import redact_url
from dispatch.models import Article


@dataclass(frozen=True)
class CollectOptions:
    """How to collect: excerpt length, boilerplate patterns (empty: the defaults), timeout."""

    excerpt_words: int = 60
    boilerplate_patterns: tuple[
        str, ...
    ] = ()  # regexes; empty -> clean.DEFAULT_BOILERPLATE_PATTERNS
    timeout: float = 20.0  # seconds, for URL feeds (the whole download, not each read)
    now: datetime | None = None  # tz-aware UTC; caps file modification times in the future
    #: (since, until): feed items dated outside it are not cleaned (the build leaves them out
    #: anyway); they still come back, bare, for counting and deduplication. None: clean all.
    window: tuple[datetime, datetime] | None = None


#: SourceWarning kinds: the source gave nothing usable / some of it was left out / its items
#: had no date. A build with no articles tells these apart ("could not be read" vs "no dates").
UNREADABLE, PARTIAL, UNDATED = "unreadable", "partial", "undated"


@dataclass(frozen=True)
class SourceWarning:
    """One source (or one file of a folder source) that could not be used, or only partly."""

    source: str
    message: str
    kind: str = UNREADABLE

    def __str__(self) -> str:
        return f"{redact_url(self.source)}: {self.message}"


@dataclass(frozen=True)
class CollectResult:
    articles: list[Article]
    warnings: list[SourceWarning]


@dataclass(frozen=True)
class Candidate:
    """An article as one source supplied it, with what deduplication needs to pick the richest."""

    article: Article
    full_content: bool  # a full body (content:encoded, Atom content, a local file), not a summary
    order: int = 0  # position across all sources, for stable ties
