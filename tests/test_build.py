"""Building an issue: the window, what earlier issues carried, empty weeks, rebuilding drafts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.errors import ConfigError, IssueError
from dispatch.jobs.build import build_issue, issue_id_for
from dispatch.store import issues as issue_store

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # a Friday in ISO week 48


def test_issue_id_is_the_iso_week() -> None:
    assert issue_id_for(NOW) == "2026-W48"
    assert issue_id_for(datetime(2027, 1, 1, tzinfo=UTC)) == "2026-W53"


def test_default_window_is_the_last_seven_days(db, make_settings, write_feed) -> None:
    feed = write_feed(
        [
            ("Inside the window", "https://news.test/a", NOW - timedelta(days=6, hours=23)),
            ("Just outside", "https://news.test/b", NOW - timedelta(days=7, minutes=1)),
            ("In the future", "https://news.test/c", NOW + timedelta(hours=1)),
        ]
    )
    result = build_issue(db, make_settings(), sources=[str(feed)], now=NOW)
    assert result.issue is not None
    assert [a.title for a in result.issue.articles] == ["Inside the window"]
    assert result.outside_window == 2
    assert result.issue.id == "2026-W48"


def test_window_edges_include_since_and_exclude_until(db, make_settings, write_feed) -> None:
    since = datetime(2026, 11, 16, tzinfo=UTC)
    until = datetime(2026, 11, 23, tzinfo=UTC)
    feed = write_feed(
        [
            ("Exactly at since", "https://news.test/since", since),
            ("Exactly at until", "https://news.test/until", until),
            ("A second before until", "https://news.test/before", until - timedelta(seconds=1)),
        ]
    )
    result = build_issue(
        db, make_settings(), sources=[str(feed)], since=since, until=until, now=NOW
    )
    assert result.issue is not None
    assert sorted(a.title for a in result.issue.articles) == [
        "A second before until",
        "Exactly at since",
    ]


def test_articles_of_a_sent_issue_are_left_out_next_time(db, make_settings, write_feed) -> None:
    settings = make_settings()
    feed = write_feed(
        [
            ("Old news", "https://news.test/old", NOW - timedelta(days=2)),
            ("Also old", "https://news.test/also-old?utm_source=rss", NOW - timedelta(days=3)),
        ]
    )
    first = build_issue(db, settings, sources=[str(feed)], now=NOW)
    assert first.issue is not None
    issue_store.set_issue_status(db, first.issue.id, "sent")

    later = NOW + timedelta(days=1)
    feed2 = write_feed(
        [
            ("Old news", "https://news.test/old", NOW - timedelta(days=2)),
            # the same story reached through another URL form: trailing slash, tracking parameters
            ("Also old", "https://news.test/also-old/?utm_medium=email", NOW - timedelta(days=3)),
            ("Fresh", "https://news.test/fresh", later - timedelta(hours=1)),
        ]
    )
    result = build_issue(
        db, settings, sources=[str(feed2)], since=NOW - timedelta(days=7), now=later, issue_id="x"
    )
    assert result.issue is not None
    assert [a.title for a in result.issue.articles] == ["Fresh"]
    assert result.already_sent == 2


def test_default_window_starts_at_the_last_sent_issue(db, make_settings, write_feed) -> None:
    settings = make_settings()
    feed = write_feed([("Week one", "https://news.test/1", NOW - timedelta(days=1))])
    first = build_issue(db, settings, sources=[str(feed)], now=NOW)
    issue_store.set_issue_status(db, first.issue.id, "sent")
    # Twelve days later: the window reaches back to where that issue's window ended (NOW),
    # not only seven days.
    later = NOW + timedelta(days=12)
    feed2 = write_feed([("Ten days after", "https://news.test/2", NOW + timedelta(days=2))])
    result = build_issue(db, settings, sources=[str(feed2)], now=later)
    assert result.since == NOW
    assert [a.title for a in result.issue.articles] == ["Ten days after"]


def test_an_empty_week_builds_nothing_unless_forced(db, make_settings, write_feed) -> None:
    feed = write_feed([("Ancient", "https://news.test/old", NOW - timedelta(days=30))])
    settings = make_settings()
    result = build_issue(db, settings, sources=[str(feed)], now=NOW)
    assert result.issue is None
    assert issue_store.list_issues(db) == []
    forced = build_issue(db, settings, sources=[str(feed)], now=NOW, force=True)
    assert forced.issue is not None and forced.issue.articles == ()


def test_no_sources_names_the_setting(db, make_settings) -> None:
    with pytest.raises(ConfigError) as caught:
        build_issue(db, make_settings(), now=NOW)
    assert "DISPATCH_SOURCES" in str(caught.value)


def test_sources_setting_is_used_when_no_source_is_given(db, make_settings, write_feed) -> None:
    feed = write_feed([("From settings", "https://news.test/s", NOW - timedelta(days=1))])
    result = build_issue(db, make_settings(DISPATCH_SOURCES=str(feed)), now=NOW)
    assert [a.title for a in result.issue.articles] == ["From settings"]


def test_a_bad_source_warns_and_the_others_still_build(db, make_settings, write_feed, tmp_path):
    good = write_feed([("Good one", "https://news.test/g", NOW - timedelta(days=1))])
    broken = tmp_path / "broken.xml"
    broken.write_text("<rss><channel><item><title>unclosed", encoding="utf-8")
    missing = tmp_path / "nowhere.xml"
    result = build_issue(
        db, make_settings(), sources=[str(good), str(broken), str(missing)], now=NOW
    )
    assert [a.title for a in result.issue.articles] == ["Good one"]
    joined = "\n".join(result.warnings)
    assert "broken.xml" in joined and "nowhere.xml" in joined


def test_rebuilding_a_draft_keeps_pins_drops_and_note(db, make_settings, write_feed) -> None:
    from dispatch.jobs import editing

    settings = make_settings()
    items = [
        ("First", "https://news.test/1", NOW - timedelta(days=1)),
        ("Second", "https://news.test/2", NOW - timedelta(days=2)),
        ("Third", "https://news.test/3", NOW - timedelta(days=3)),
    ]
    feed = write_feed(items)
    built = build_issue(db, settings, sources=[str(feed)], now=NOW)
    editing.set_article(db, settings, built.issue.id, 3, pinned=True)  # Third to the top
    editing.set_article(db, settings, built.issue.id, 2, dropped=True)  # numbers never shift
    editing.edit_issue(db, settings, built.issue.id, note="A word from the editor.")

    feed2 = write_feed([*items, ("Fourth", "https://news.test/4", NOW - timedelta(hours=2))])
    rebuilt = build_issue(db, settings, sources=[str(feed2)], now=NOW)
    assert rebuilt.replaced_draft
    assert [a.title for a in rebuilt.issue.articles] == ["Third", "Fourth", "First"]
    assert rebuilt.issue.note == "A word from the editor."


def test_a_sent_issue_is_never_rebuilt(db, make_settings, write_feed) -> None:
    feed = write_feed([("Story", "https://news.test/1", NOW - timedelta(days=1))])
    settings = make_settings()
    built = build_issue(db, settings, sources=[str(feed)], now=NOW)
    issue_store.set_issue_status(db, built.issue.id, "sending")
    with pytest.raises(IssueError, match="already been sending"):
        build_issue(db, settings, sources=[str(feed)], now=NOW, force=True)


def test_build_json_output_follows_the_contract(run_cli, write_feed) -> None:
    feed = write_feed(
        [
            ('Budget: "roads" & rates', "https://news.test/b", datetime(2026, 11, 18, tzinfo=UTC)),
            ("Market", "https://news.test/m", datetime(2026, 11, 20, 15, tzinfo=UTC)),
        ]
    )
    result = run_cli(
        "build", "--source", str(feed), "--since", "2026-11-16", "--until", "2026-11-22", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["issue"] == "2026-W48"
    assert data["articles"] == [
        {"title": "Market", "url": "https://news.test/m", "published": "2026-11-20T15:00:00+00:00"},
        {
            "title": 'Budget: "roads" & rates',
            "url": "https://news.test/b",
            "published": "2026-11-18T00:00:00+00:00",
        },
    ]


def test_build_json_for_an_empty_week(run_cli, write_feed) -> None:
    feed = write_feed([("Old", "https://news.test/o", datetime(2020, 1, 1, tzinfo=UTC))])
    result = run_cli("build", "--source", str(feed), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["issue"] is None


def test_empty_week_message_is_clear(run_cli, write_feed) -> None:
    feed = write_feed([("Old", "https://news.test/o", datetime(2020, 1, 1, tzinfo=UTC))])
    result = run_cli("build", "--source", str(feed))
    assert result.exit_code == 0
    assert "Nothing new to send" in result.output and "--force" in result.output


def test_missing_sources_error_has_no_traceback(run_cli) -> None:
    result = run_cli("build")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No article sources are configured.")
    assert "Traceback" not in result.output


def test_article_text_cannot_smuggle_in_a_personal_placeholder(db, make_settings, tmp_path):
    from dispatch.models import PLACEHOLDERS

    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "evil.md").write_text(
        '---\ntitle: "Win %%DISPATCH_EMAIL%% now"\ndate: 2026-11-26\n'
        "url: https://news.test/evil\n"
        'image: "https://tracker.test/p.png?e=%%DISPATCH_EMAIL%%"\n---\n'
        "Your link: %%DISPATCH_UNSUBSCRIBE_URL%%. More text here.\n",
        encoding="utf-8",
    )
    result = build_issue(db, make_settings(), sources=[str(folder)], now=NOW)
    variants = issue_store.get_variants(db, result.issue.id)
    for variant in variants.values():
        article_part = variant.html[variant.html.index('class="article"') :]
        article_part = article_part[: article_part.index('class="appeal"')]
        for key in ("EMAIL", "UNSUBSCRIBE_URL"):
            assert PLACEHOLDERS[key] not in article_part
            assert PLACEHOLDERS[key] not in variant.subject
    assert "p.png?e=%25%25DISPATCH_EMAIL%25%25" in variants["non_donor"].html


def test_articles_without_links_do_not_block_each_other(db, make_settings, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "2026-11-25-first.txt").write_text("First story\n\nIt happened.\n", "utf-8")
    settings = make_settings()
    first = build_issue(db, settings, sources=[str(folder)], now=NOW)
    assert [a.title for a in first.issue.articles] == ["First story"]
    issue_store.set_issue_status(db, first.issue.id, "sent")
    (folder / "2026-11-28-second.txt").write_text("Second story\n\nThen this.\n", "utf-8")
    later = build_issue(
        db, settings, sources=[str(folder)], now=NOW + timedelta(days=2), issue_id="next"
    )
    assert [a.title for a in later.issue.articles] == ["Second story"]


def test_when_every_source_fails_the_build_is_an_error_not_a_quiet_week(run_cli, tmp_path):
    result = run_cli(
        "build", "--source", str(tmp_path / "gone.xml"), "--source", "http://127.0.0.1:9/feed"
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No source could be read:")
    assert "gone.xml" in result.stderr and "127.0.0.1:9" in result.stderr
