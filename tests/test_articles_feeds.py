"""Feed files on disk: RSS 2.0 with content:encoded, Atom, broken XML, undated and doubled items."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dispatch.articles import collect_articles

FEEDS = Path(__file__).parent / "fixtures" / "feeds"


def collect(*names: str):  # noqa: ANN201 - CollectResult
    return collect_articles([str(FEEDS / name) for name in names])


def test_rss_content_encoded_gives_the_full_cleaned_body() -> None:
    result = collect("rss_content.xml")
    assert result.warnings == []
    lights = result.articles[0]
    assert lights.title == "Harbour lights switched on for the winter"
    assert lights.published == datetime(2026, 11, 18, 16, 30, tzinfo=UTC)
    assert lights.guid == "https://gazette.example.org/news/harbour-lights"
    assert lights.body_html.startswith("<p>The harbour lights were switched on at dusk")
    # relative link resolved, doubled caption dropped, plea and sign-off cut
    assert 'href="https://gazette.example.org/news/lights-history"' in lights.body_html
    assert lights.body_html.count("Lights over the quay") == 1
    assert "donate" not in lights.body_html and "Harbour Gazette</p>" not in lights.body_html
    assert lights.excerpt == (
        "The harbour lights were switched on at dusk on Wednesday. "
        "Hundreds of people lined the quay to watch. Read the history of the lights on our site."
    )


def test_rss_lead_image_prefers_media_thumbnail_then_enclosure() -> None:
    lights, ferry = collect("rss_content.xml").articles
    assert lights.image_url == "https://gazette.example.org/img/lights-thumb.jpg"
    assert lights.image_alt == lights.title  # the thumbnail has no alt text of its own
    assert ferry.image_url == "https://gazette.example.org/img/ferry.jpg"


def test_rss_item_with_only_a_description_uses_it_as_body_and_excerpt() -> None:
    ferry = collect("rss_content.xml").articles[1]
    assert ferry.body_html == (
        "<p>The winter ferry timetable starts on Monday. Crossings will run every ninety "
        "minutes.</p>"
    )
    assert ferry.excerpt.startswith("The winter ferry timetable")


def test_a_guid_that_is_not_a_uri_is_qualified_by_the_feed_link() -> None:
    ferry = collect("rss_content.xml").articles[1]
    assert ferry.guid == "https://gazette.example.org#7"


def test_atom_entries_with_html_and_xhtml_content() -> None:
    result = collect("atom.xml")
    assert result.warnings == []
    bridge, updated_only = result.articles
    assert bridge.title == "Bridge reopens after repairs"
    assert bridge.published == datetime(2026, 11, 19, 13, 0, tzinfo=UTC)  # published, not updated
    assert bridge.body_html == (
        "<p>The old bridge reopened to traffic on Thursday after six months of repairs.</p>\n"
        "<p>Cyclists get a new lane.</p>"
    )
    assert updated_only.published == datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    assert updated_only.body_html == "<p>Written in <strong>XHTML</strong> content.</p>"


def test_broken_xml_gives_a_warning_naming_the_file_and_the_position() -> None:
    result = collect("broken.xml")
    assert result.articles == []
    (warning,) = result.warnings
    assert warning.source == str(FEEDS / "broken.xml")
    assert "not a readable RSS or Atom feed" in warning.message
    assert "line 2" in warning.message
    assert str(warning).startswith(f"{FEEDS / 'broken.xml'}: ")


def test_a_web_page_is_not_mistaken_for_a_feed() -> None:
    result = collect("not_a_feed.html")
    assert result.articles == []
    assert [w.message for w in result.warnings] == [
        "not an RSS or Atom feed (no channel or feed element)"
    ]


def test_undated_items_are_left_out_with_one_warning_counting_them() -> None:
    result = collect("undated.xml")
    assert [a.title for a in result.articles] == ["Dated item"]
    (warning,) = result.warnings
    assert warning.message.startswith("left out 2 item(s) with no published or updated date")


def test_same_guid_twice_in_one_feed_keeps_the_full_text_version() -> None:
    story_a = [a for a in collect("duplicates.xml").articles if a.url.endswith("/a")]
    assert len(story_a) == 1
    assert story_a[0].title == "Same GUID, full text"
    assert "full text of story A" in story_a[0].body_html


def test_same_url_with_tracking_parameters_is_one_story() -> None:
    result = collect("duplicates.xml")
    assert len(result.articles) == 2
    story_b = result.articles[0]
    assert story_b.title == "Story B"
    assert story_b.canonical_url == "https://twice.example.org/b"


def test_hostile_feed_item_comes_out_safe() -> None:
    (article,) = collect("attacks.xml").articles
    body = article.body_html.lower()
    needles = "<script <style onclick onerror onload <iframe <form <input <object <embed <svg"
    for needle in [*needles.split(), "javascript", "position", "style="]:
        assert needle not in body, needle
    assert "<p>Clickable</p>" in article.body_html
    assert article.title == "Council & budget passes"


def test_feed_file_read_errors_become_warnings(tmp_path: Path) -> None:
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    result = collect_articles([str(empty)])
    assert result.articles == []
    assert len(result.warnings) == 1


def test_external_entities_are_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    feed = tmp_path / "xxe.xml"
    feed.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        '<rss version="2.0"><channel><title>x</title><item><title>Leak &xxe;</title>'
        "<link>https://x.example/1</link><pubDate>Mon, 16 Nov 2026 10:00:00 +0000</pubDate>"
        "<description>d &xxe;</description></item></channel></rss>"
    )
    result = collect_articles([str(feed)])
    everything = repr(result)
    assert "TOP-SECRET-CONTENT" not in everything
