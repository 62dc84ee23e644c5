"""Write small RSS feeds into tmp_path for build tests (dates relative to a fixed `now`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

FeedItem = tuple[str, str, datetime | None]  # (title, url, published)


def rss(items: Sequence[FeedItem], title: str = "Test News") -> str:
    parts = []
    for item_title, url, published in items:
        date = f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""
        body = (
            f"<p>{escape(item_title)} is the story. Reporters spent a week on it. "
            "It matters to everyone in town.</p>"
        )
        parts.append(
            f"<item><title>{escape(item_title)}</title><link>{escape(url)}</link>"
            f'<guid isPermaLink="true">{escape(url)}</guid>{date}'
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>{escape(title)}</title><link>https://news.test/</link><description>d</description>"
        + "".join(parts)
        + "</channel></rss>\n"
    )


@pytest.fixture
def write_feed(tmp_path: Path) -> Callable[..., Path]:
    counter = {"n": 0}

    def factory(items: Sequence[FeedItem], name: str | None = None) -> Path:
        counter["n"] += 1
        path = tmp_path / (name or f"feed{counter['n']}.xml")
        path.write_text(rss(items), encoding="utf-8")
        return path

    return factory
