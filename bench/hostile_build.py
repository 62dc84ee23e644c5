"""What does one hostile feed item cost a build? Issue 9.6: 200,000 nested <div>s hung `build`.

Writes a feed of 30 ordinary articles plus one item of N nested <div>s (default 200,000, about
4.6 MB, under the 20 MB feed cap; also 50,000 bare ones, under the 1 MB article limit, so the
depth check is what stops it), times the whole `build_issue` and prints the figures next to the
same feed without the hostile item. Also: a feed of 20,000 items (issue 9.11), once dated in the
build's window (capped at DISPATCH_MAX_ARTICLES) and once an archive mostly outside it.

Usage: .venv/bin/python bench/hostile_build.py [--depth 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from dispatch.articles import collect_articles
from dispatch.config import Settings
from dispatch.jobs.build import build_issue
from dispatch.store import open_db

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PARAGRAPH = (
    "The council's finance committee met on Tuesday evening to go through the draft budget "
    "line by line, and residents who packed the public gallery heard the officers out. "
)


def item(number: int, body: str, published: datetime | None = None) -> str:
    published = published or NOW - timedelta(hours=2 + number)
    return (
        f"<item><title>Story {number}</title><link>https://news.example/{number}/</link>"
        f"<guid>https://news.example/?p={number}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate>"
        f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
    )


def write_feed(path: Path, ordinary: int, deep: int, paragraphs: int = 6) -> int:
    items = [item(i, f"<p>{PARAGRAPH}</p>" * paragraphs) for i in range(ordinary)]
    if deep:
        # 200,000 with a class on every div is 4.6 MB, the item in the issue; 50,000 bare divs
        # (0.55 MB) is under the size limit, so the depth check is what stops it.
        opening = '<div class="row">' if deep > 100_000 else "<div>"
        body = opening * deep + "deep" + "</div>" * deep
        items.insert(0, item(99_999, body, published=NOW - timedelta(hours=1)))
    feed = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>Bench</title><link>https://news.example/</link><description>x</description>"
        + "".join(items)
        + "</channel></rss>"
    )
    path.write_text(feed, encoding="utf-8")
    return len(feed.encode())


def time_build(folder: Path, feed: Path, runs: int, label: str) -> float:
    timings = []
    for run in range(runs):
        settings = Settings.from_mapping({"DISPATCH_DB": str(folder / f"{label}{run}.sqlite3")})
        with open_db(settings.db_path, create=True) as db:
            start = time.perf_counter()
            result = build_issue(db, settings, sources=[str(feed)], now=NOW)
            timings.append(time.perf_counter() - start)
    assert result.issue is not None
    print(
        f"  {label:<34} {statistics.median(timings) * 1000:7.0f} ms  "
        f"({len(result.issue.articles)} articles, {len(result.warnings)} warning(s))"
    )
    for warning in result.warnings:
        print(f"      warning: {warning}"[:160])
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--depth", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plain = folder / "plain.xml"
        write_feed(plain, 30, 0)
        time_build(folder, plain, 1, "warm-up (imports, caches)")
        print("build_issue, median of", args.runs, "runs:")
        time_build(folder, plain, args.runs, "30 articles")
        for depth in sorted({args.depth, 50_000}, reverse=True):
            hostile = folder / f"deep{depth}.xml"
            size = write_feed(hostile, 30, depth)
            time_build(
                folder, hostile, args.runs, f"30 + {depth:,} nested divs ({size / 1e6:.1f} MB)"
            )
        print("the hostile item alone (a feed of just that item), collect, median:")
        for depth in sorted({args.depth, 50_000}, reverse=True):
            alone = folder / f"alone{depth}.xml"
            size = write_feed(alone, 0, depth)
            timings = []
            for _ in range(args.runs):
                start = time.perf_counter()
                result = collect_articles([str(alone)])
                timings.append(time.perf_counter() - start)
            assert not result.articles and result.warnings
            print(
                f"  {depth:>7,} nested divs ({size / 1e6:.1f} MB): "
                f"{statistics.median(timings) * 1000:.0f} ms (feedparser's parse included)"
            )
        big = folder / "big.xml"
        size = write_feed(big, 20_000, 0, paragraphs=1)  # under the 20 MB feed cap
        start = time.perf_counter()
        collected = collect_articles([str(big)])
        collect_s = time.perf_counter() - start
        print(f"20,000-item feed ({size / 1e6:.1f} MB), every item cleaned: collect ", end="")
        print(f"{collect_s:.2f} s ({len(collected.articles)} articles)")
        # Items an hour apart: 20,000 hours is an archive of 2.3 years; the window holds 168.
        print("build_issue of the 20,000-item feed, once:")
        time_build(folder, big, 1, "archive, 7-day window")
        print(f"  (all 20,000 dated inside --since {NOW - timedelta(hours=20_001):%Y-%m-%d}:)")
        settings = Settings.from_mapping({"DISPATCH_DB": str(folder / "all.sqlite3")})
        with open_db(settings.db_path, create=True) as db:
            start = time.perf_counter()
            result = build_issue(
                db, settings, sources=[str(big)], since=NOW - timedelta(hours=20_001), now=NOW
            )
            seconds = time.perf_counter() - start
        assert result.issue is not None
        print(
            f"  {'every item in the window':<34} {seconds * 1000:7.0f} ms  "
            f"({len(result.issue.articles)} articles kept, {len(result.left_out):,} left out)"
        )


if __name__ == "__main__":
    main()
