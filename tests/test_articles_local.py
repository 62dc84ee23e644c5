"""Local article folders: Markdown front matter, plain text in the outlet's shape, dates, GUIDs."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatch.articles import CollectOptions, collect_articles
from dispatch.models import Article

SITE = Path(__file__).parent / "fixtures" / "site"


def by_guid(articles: list[Article]) -> dict[str, Article]:
    return {a.guid: a for a in articles}


@pytest.fixture(scope="module")
def gazette() -> dict[str, Article]:
    return by_guid(collect_articles([str(SITE / "gazette")]).articles)


def test_plain_text_first_line_is_the_title(gazette: dict[str, Article]) -> None:
    article = gazette["file:gazette/2026-11-18-lifeboat-day.txt"]
    assert article.title == "Lifeboat crew shows off its new boat"
    assert "Lifeboat crew shows off" not in article.body_html


def test_plain_text_doubled_captions_are_kept_once(gazette: dict[str, Article]) -> None:
    body = gazette["file:gazette/2026-11-18-lifeboat-day.txt"].body_html
    assert body.count("The new lifeboat alongside the harbour wall") == 1
    assert body.count("Coxswain Dan Mercer at the helm") == 1
    assert "<figcaption>Coxswain Dan Mercer at the helm</figcaption>" in body


def test_plain_text_plea_and_sign_off_are_cut_but_a_mid_article_donate_is_kept(
    gazette: dict[str, Article],
) -> None:
    body = gazette["file:gazette/2026-11-18-lifeboat-day.txt"].body_html
    assert "asked visitors to donate to the crew's training fund" in body
    assert body.endswith("<p>Photo courtesy: Gazette staff</p>")
    for gone in ("Support Harbour Gazette", "click here", "Harbour Gazette</p>", "Jo Marsh"):
        assert gone not in body


def test_plain_text_excerpt_skips_captions(gazette: dict[str, Article]) -> None:
    excerpt = gazette["file:gazette/2026-11-18-lifeboat-day.txt"].excerpt
    assert excerpt.startswith("The lifeboat station opened its doors on Wednesday")
    assert excerpt.endswith(".")


def test_plain_text_without_url_has_an_empty_url_and_a_file_guid(
    gazette: dict[str, Article],
) -> None:
    article = gazette["file:gazette/2026-11-18-lifeboat-day.txt"]
    assert article.url == "" and article.canonical_url == ""
    assert article.published == datetime(2026, 11, 18, tzinfo=UTC)  # from the file name


def test_plain_text_url_and_date_lines_are_metadata(gazette: dict[str, Article]) -> None:
    article = gazette["file:gazette/2026-11-19-ferry-fares.txt"]
    assert article.url == "https://gazette.example.org/news/ferry-fares?utm_campaign=winter"
    assert article.canonical_url == "https://gazette.example.org/news/ferry-fares"
    assert article.published == datetime(2026, 11, 19, 7, 45, tzinfo=UTC)
    assert "URL:" not in article.body_html and "Date:" not in article.body_html


def test_markdown_front_matter_keys(gazette: dict[str, Article]) -> None:
    article = gazette["file:gazette/market-day.md"]
    assert article.title == "Market day moves to the quay"
    assert article.published == datetime(2026, 11, 19, tzinfo=UTC)
    assert article.url == "https://gazette.example.org/news/market-day/"
    assert article.image_url == "https://gazette.example.org/img/market.jpg"  # resolved
    assert article.image_alt == "Stalls along the quay"
    assert article.excerpt == "The weekly market moves to the quay for the winter."
    assert "Someone Ignored" not in repr(article)


def test_markdown_body_is_rendered_sanitised_and_cut(gazette: dict[str, Article]) -> None:
    body = gazette["file:gazette/market-day.md"].body_html
    assert body == (
        "<p>The weekly market will be held on the quay from next week while the square is "
        "resurfaced.</p>\n<p>Stallholders say the new spot gets more passers-by. "
        "<em>Parking</em> is on the old coal yard.</p>"
    )


def test_markdown_without_title_uses_the_file_name_and_warns() -> None:
    result = collect_articles([str(SITE / "gazette")])
    note = by_guid(result.articles)["file:gazette/untitled-note.md"]
    assert note.title == "Untitled note"
    assert any("no title found" in w.message for w in result.warnings)


def test_broken_front_matter_skips_that_file_with_a_warning_and_keeps_the_rest() -> None:
    result = collect_articles([str(SITE / "broken")])
    assert [a.title for a in result.articles] == ["The one good file"]
    messages = {Path(w.source).name: w.message for w in result.warnings}
    assert set(messages) == {"bad-yaml.md", "unclosed.md", "list.md"}
    assert "not valid YAML (line 4" in messages["bad-yaml.md"]
    assert "never closed" in messages["unclosed.md"]
    assert "not a list" in messages["list.md"]
    assert all(m.endswith("the file was skipped") for m in messages.values())


def test_date_falls_back_to_the_file_mtime_capped_at_now(tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    old = folder / "old.md"
    old.write_text("---\ntitle: Old\n---\nBody.\n")
    future = folder / "future.md"
    future.write_text("---\ntitle: Future\n---\nBody.\n")
    stamp = datetime(2026, 11, 17, 9, 30, tzinfo=UTC).timestamp()
    os.utime(old, (stamp, stamp))
    os.utime(future, (stamp + 10 * 86400, stamp + 10 * 86400))
    now = datetime(2026, 11, 20, tzinfo=UTC)
    result = collect_articles([str(folder)], CollectOptions(now=now))
    dates = {a.title: a.published for a in result.articles}
    assert dates == {"Old": datetime(2026, 11, 17, 9, 30, tzinfo=UTC), "Future": now}


def test_unreadable_date_warns_and_falls_back_to_the_file_name(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "2026-11-21-fair.md").write_text("---\ntitle: Fair\ndate: next Tuesday\n---\nB.\n")
    result = collect_articles([str(folder)])
    assert result.articles[0].published == datetime(2026, 11, 21, tzinfo=UTC)
    assert "'next Tuesday' is not a date" in result.warnings[0].message


def test_naive_and_offset_dates_become_utc(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "a.md").write_text("---\ntitle: A\ndate: 2026-11-18 10:00:00\n---\nA.\n")
    (folder / "b.md").write_text("---\ntitle: B\ndate: '2026-11-18T10:00:00+02:00'\n---\nB.\n")
    dates = {a.title: a.published for a in collect_articles([str(folder)]).articles}
    assert dates == {
        "A": datetime(2026, 11, 18, 10, tzinfo=UTC),
        "B": datetime(2026, 11, 18, 8, tzinfo=UTC),
    }


def test_non_http_url_in_front_matter_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "x.md").write_text(
        "---\ntitle: X\ndate: 2026-11-18\nurl: javascript:alert(1)\n---\nX.\n"
    )
    result = collect_articles([str(folder)])
    assert result.articles[0].url == ""
    assert "not an http(s) address" in result.warnings[0].message


def test_a_body_line_starting_with_date_is_not_taken_for_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "2026-11-18-q.txt").write_text("Title\n\nDate: to be confirmed by the council.\n")
    (article,) = collect_articles([str(folder)]).articles
    assert article.body_html == "<p>Date: to be confirmed by the council.</p>"


def test_empty_folder_and_missing_path_give_warnings(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "nope"
    result = collect_articles([str(empty), str(missing)])
    assert [(w.source, w.message) for w in result.warnings] == [
        (str(empty), "the folder has no .md, .markdown or .txt articles"),
        (str(missing), "no such file or folder (and not an http(s) URL)"),
    ]


def test_a_single_article_file_can_be_a_source() -> None:
    path = SITE / "gazette" / "2026-11-19-ferry-fares.txt"
    (article,) = collect_articles([str(path)]).articles
    assert article.guid == "file:gazette/2026-11-19-ferry-fares.txt"
