"""How long does building a 30-article issue take? Target: under 1 second, premailer included.

Writes a feed file with N articles of realistic size into a temp folder, then times
`build_issue` (collect + clean + dedupe + store + render 3 variants + inline CSS) several times
on fresh databases and prints the figures, plus the premailer share.

Usage: .venv/bin/python bench/build.py [--articles 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from dispatch.config import Settings
from dispatch.jobs.build import build_issue
from dispatch.render import templates as render_templates
from dispatch.store import open_db

PARAGRAPH = (
    "The council's finance committee met on Tuesday evening to go through the draft budget line "
    "by line, and residents who packed the public gallery heard officers explain why the road "
    "repair fund would shrink for a third year in a row. Several members asked for the figures "
    "to be published before the full council vote. "
)


def write_feed(folder: Path, count: int, now: datetime) -> Path:
    items = []
    for i in range(count):
        published = now - timedelta(hours=3 + i * 4)
        body = "".join(f"<p>{PARAGRAPH}</p>" for _ in range(8))
        body += f'<p><img src="https://news.example/img/{i}.jpg" alt="Picture {i}"></p>'
        body += "<p>Support independent journalism: please donate today.</p>"
        items.append(
            f"<item><title>Story number {i}: the budget &amp; the roads</title>"
            f"<link>https://news.example/2026/story-{i}/</link>"
            f"<guid>https://news.example/?p={1000 + i}</guid>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape(PARAGRAPH)}</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        )
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>Bench News</title><link>https://news.example/</link><description>x</description>"
        + "".join(items)
        + "</channel></rss>"
    )
    path = folder / "feed.xml"
    path.write_text(feed, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    timings, inline_times = [], []
    original_inline = render_templates.inline_css

    def timed_inline(html: str) -> str:
        start = time.perf_counter()
        try:
            return original_inline(html)
        finally:
            inline_times.append(time.perf_counter() - start)

    render_templates.inline_css = timed_inline  # measure premailer's share, nothing else changes
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        feed = write_feed(folder, args.articles, now)
        size = 0
        for run in range(args.runs + 1):  # run 0 warms caches and imports
            settings = Settings.from_mapping({"DISPATCH_DB": str(folder / f"run{run}.sqlite3")})
            with open_db(settings.db_path, create=True) as db:
                inline_times.clear()
                start = time.perf_counter()
                result = build_issue(db, settings, sources=[str(feed)], now=now)
                elapsed = time.perf_counter() - start
                assert result.issue is not None and len(result.issue.articles) == args.articles
                html = db.execute("SELECT html FROM issue_variants LIMIT 1").fetchone()[0]
                size = len(html.encode())
            if run:
                timings.append((elapsed, sum(inline_times)))
    totals = [t for t, _ in timings]
    inlines = [i for _, i in timings]
    print(f"articles per issue:        {args.articles}")
    print("variants rendered:         3 (non_donor, recent_donor, lapsed_donor)")
    print(f"HTML size of one variant:  {size / 1024:.1f} KB")
    print(
        f"build, median of {args.runs}:      {statistics.median(totals) * 1000:.0f} ms"
        f" (min {min(totals) * 1000:.0f}, max {max(totals) * 1000:.0f})"
    )
    print(
        f"  of which premailer:      {statistics.median(inlines) * 1000:.0f} ms"
        f" ({statistics.median(inlines) / statistics.median(totals):.0%})"
    )
    target = 1.0
    verdict = "OK" if statistics.median(totals) < target else "OVER TARGET"
    print(f"target < {target:.0f} s:              {verdict}")


if __name__ == "__main__":
    main()
