"""Merge the same story met more than once: same GUID, or same canonical URL.

Keys are linked transitively (A and B share a GUID, B and C a URL: one story). Of each group
the richest version wins: full content over a summary, then the longer body, then one with a
picture, then the source listed first. Fields the winner lacks (date, link, picture) are taken
from the others; the winner's ``source`` says where the story came from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dispatch.articles.options import Candidate
from dispatch.models import Article


def merge_duplicates(candidates: Sequence[Candidate]) -> list[Article]:
    """One article per story, newest first (undated last), ties in source order."""
    parent = list(range(len(candidates)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for index, candidate in enumerate(candidates):
        article = candidate.article
        for key in (f"guid:{article.guid}" if article.guid else "",
                    f"url:{article.canonical_url}" if article.canonical_url else ""):  # fmt: skip
            if not key:
                continue
            if key in owner:
                parent[find(index)] = find(owner[key])
            else:
                owner[key] = index
    groups: dict[int, list[int]] = {}
    for index in range(len(candidates)):
        groups.setdefault(find(index), []).append(index)
    merged: list[tuple[Article, int]] = []
    for members in groups.values():
        ranked = sorted(members, key=lambda i: _richness(candidates[i], i), reverse=True)
        winner = candidates[ranked[0]].article
        merged.append((_fill_gaps(winner, [candidates[i].article for i in ranked[1:]]), ranked[0]))
    merged.sort(key=lambda pair: _newest_first(pair[0], pair[1]))
    return [article for article, _ in merged]


def _richness(candidate: Candidate, index: int) -> tuple[bool, int, bool, int]:
    article = candidate.article
    return (
        candidate.full_content,
        len(article.body_html),
        article.image_url is not None,
        -index,
    )


def _fill_gaps(winner: Article, others: list[Article]) -> Article:
    changes: dict[str, Any] = {}
    for other in others:
        if winner.published is None and "published" not in changes and other.published:
            changes["published"] = other.published
        if not winner.url and "url" not in changes and other.url:
            changes["url"] = other.url
            changes["canonical_url"] = other.canonical_url
        if winner.image_url is None and "image_url" not in changes and other.image_url:
            changes["image_url"] = other.image_url
            changes["image_alt"] = other.image_alt or winner.title
    return dataclasses.replace(winner, **changes) if changes else winner


def _newest_first(article: Article, index: int) -> tuple[bool, float, int]:
    published: datetime | None = article.published
    return (published is None, -(published.timestamp() if published else 0.0), index)
