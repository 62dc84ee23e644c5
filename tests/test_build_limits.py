"""What a build says when it has little or too much (issue 9.11): a forced empty issue, a feed
whose items have no dates, and a feed of thousands of items capped at DISPATCH_MAX_ARTICLES."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.errors import ConfigError, SourceError
from dispatch.jobs import editing
from dispatch.jobs.build import build_issue
from dispatch.store import issues as issue_store

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def hours_ago(count: int) -> list[tuple[str, str, datetime]]:
    return [
        (f"Story {i}", f"https://news.test/{i}", NOW - timedelta(hours=1 + i)) for i in range(count)
    ]


def test_a_forced_empty_build_says_it_is_an_empty_draft(run_cli, write_feed) -> None:
    feed = write_feed([("Ancient", "https://news.test/old", NOW - timedelta(days=400))])
    result = run_cli("build", "--source", str(feed), "--force", "--id", "empty")
    assert result.exit_code == 0, result.output
    assert "Built issue empty with 0 articles" in result.stdout
    assert "because of --force" in result.stdout
    assert "`dispatch send` refuses it while it has no articles" in result.stdout
    assert "dispatch issue delete empty" in result.stdout
    assert "Next: dispatch preview" not in result.stdout


def test_a_feed_whose_items_have_no_dates_is_named_as_such(run_cli, write_feed) -> None:
    feed = write_feed(
        [("No date", "https://news.test/a", None), ("Nor this", "https://news.test/b", None)]
    )
    result = run_cli("build", "--source", str(feed))
    assert result.exit_code == 1
    assert "No source could be read" not in result.stderr
    assert "check the addresses" not in result.stderr.lower()
    assert result.stderr.startswith("Error: No article has a date")
    assert f"{feed}: none of its 2 item(s) has a published or updated date" in result.stderr
    assert "<pubDate>" in result.stderr


def test_undated_and_unreadable_sources_are_both_named(db, make_settings, write_feed, tmp_path):
    feed = write_feed([("No date", "https://news.test/a", None)])
    with pytest.raises(SourceError) as caught:
        build_issue(db, make_settings(), sources=[str(feed), str(tmp_path / "gone.xml")], now=NOW)
    assert "No article has a date" in caught.value.message
    assert str(feed) in caught.value.message and "gone.xml" in caught.value.message


def test_a_partly_broken_feed_with_items_is_not_called_unreadable(db, make_settings, tmp_path):
    # Well-formed enough for its one item to be read, all outside the window: a quiet week.
    feed = tmp_path / "feed.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>Old'
        "</title><link>https://news.test/o</link><pubDate>Sat, 01 Jan 2000 00:00:00 GMT"
        "</pubDate></item></channel></rss><junk",
        encoding="utf-8",
    )
    result = build_issue(db, make_settings(), sources=[str(feed)], now=NOW)
    assert result.issue is None and result.found == 1


def test_a_huge_feed_is_capped_newest_first_and_says_what_was_left_out(run_cli, write_feed):
    feed = write_feed(hours_ago(8))
    args = ["build", "--source", str(feed), "--since", "2026-11-20", "--until", "2026-11-27"]
    capped = {"DISPATCH_MAX_ARTICLES": "5"}
    result = run_cli(*args, "--json", env=capped)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [a["title"] for a in data["articles"]] == [f"Story {i}" for i in range(5)]
    assert [a["title"] for a in data["left_out"]] == ["Story 5", "Story 6", "Story 7"]

    text = run_cli(*args, env=capped)
    assert "Rebuilt issue 2026-W48 with 5 articles" in text.stdout
    assert "Left out 3 older article(s): an issue holds at most 5" in text.stdout
    assert "DISPATCH_MAX_ARTICLES" in text.stdout and "Story 7" in text.stdout


def test_the_default_cap_is_thirty(db, make_settings, write_feed) -> None:
    result = build_issue(db, make_settings(), sources=[str(write_feed(hours_ago(45)))], now=NOW)
    assert len(result.issue.articles) == 30 and len(result.left_out) == 15
    assert result.left_out[0].title == "Story 30"


def test_a_rebuild_keeps_the_editors_pin_even_past_the_cap(db, make_settings, write_feed):
    settings = make_settings(DISPATCH_MAX_ARTICLES="3")
    feed = write_feed(hours_ago(3))
    built = build_issue(db, settings, sources=[str(feed)], now=NOW)
    editing.set_article(db, settings, built.issue.id, 3, pinned=True)  # "Story 2", the oldest
    newer = [("Fresh", "https://news.test/fresh", NOW - timedelta(minutes=5)), *hours_ago(3)]
    rebuilt = build_issue(db, settings, sources=[str(write_feed(newer))], now=NOW)
    assert [a.title for a in rebuilt.issue.articles] == ["Story 2", "Fresh", "Story 0"]
    assert [a.title for a in rebuilt.left_out] == ["Story 1"]


def test_max_articles_must_be_at_least_one(make_settings) -> None:
    with pytest.raises(ConfigError, match="DISPATCH_MAX_ARTICLES must be at least 1"):
        make_settings(DISPATCH_MAX_ARTICLES="0")


def test_a_rebuild_keeps_the_editors_subject_and_recomputes_its_own(db, make_settings, write_feed):
    settings = make_settings()
    feed = write_feed(hours_ago(3))
    built = build_issue(db, settings, sources=[str(feed)], now=NOW)
    editing.set_article(db, settings, built.issue.id, 1, dropped=True)  # the top story
    rebuilt = build_issue(db, settings, sources=[str(feed)], now=NOW)
    # Dispatch's own subject follows what readers see first, after the carried drop.
    assert rebuilt.issue.subject.endswith(": Story 1")
    editing.edit_issue(db, settings, built.issue.id, subject="The editor's words")
    again = build_issue(db, settings, sources=[str(feed)], now=NOW)
    assert again.issue.subject == "The editor's words"
    assert issue_store.get_issue(db, built.issue.id).subject == "The editor's words"


def test_items_outside_the_window_are_counted_but_never_cleaned(db, make_settings, tmp_path):
    # A feed's archive (here one item, broken enough to be refused if it were cleaned) costs
    # only feedparser's parse when it falls outside the window.
    deep = "<div>" * 600 + "x" + "</div>" * 600
    feed = tmp_path / "archive.xml"
    feed.write_text(
        '<?xml version="1.0"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>'
        "<item><title>Old</title><link>https://news.test/old</link>"
        "<pubDate>Sat, 01 Jan 2000 00:00:00 GMT</pubDate>"
        f"<content:encoded><![CDATA[{deep}]]></content:encoded></item>"
        "<item><title>New</title><link>https://news.test/new</link>"
        "<pubDate>Thu, 26 Nov 2026 09:00:00 GMT</pubDate>"
        "<content:encoded><![CDATA[<p>Fresh.</p>]]></content:encoded></item>"
        "</channel></rss>",
        encoding="utf-8",
    )
    result = build_issue(db, make_settings(), sources=[str(feed)], now=NOW)
    assert result.warnings == []
    assert result.found == 2 and result.outside_window == 1
    assert [a.title for a in result.issue.articles] == ["New"]
