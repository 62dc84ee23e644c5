"""Articles: read feeds and local folders, clean what they hold, merge duplicates.

Layer 3. ``collect_articles(sources, options)`` is the whole API the use cases need; see
``feeds`` (RSS/Atom, the undated-item rule), ``local`` (Markdown and plain-text folders, GUIDs
and dates of local files), ``clean`` (sanitising, titles, boilerplate, excerpts) and ``dedupe``.
"""

from __future__ import annotations

from dispatch.articles.clean import DEFAULT_BOILERPLATE_PATTERNS
from dispatch.articles.collect import collect_articles
from dispatch.articles.options import CollectOptions, CollectResult, SourceWarning
from dispatch.articles.urls import canonical_url

__all__ = [
    "DEFAULT_BOILERPLATE_PATTERNS",
    "CollectOptions",
    "CollectResult",
    "SourceWarning",
    "canonical_url",
    "collect_articles",
]
