"""Hostile or broken markup: an article too deep, too big or with too many tags is left out with
a warning naming it, and the rest of the build goes on (issue 9.6). Speed is in
bench/hostile_build.py, never timed here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dispatch.articles import collect_articles
from dispatch.articles.limits import (
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_TAGS,
    MarkupTooComplex,
    check_markup,
)

WHEN = "Sat, 28 Nov 2026 09:00:00 GMT"


def feed_with(*bodies: tuple[str, str]) -> str:
    items = "".join(
        f"<item><title>{slug}</title><link>https://news.test/{slug}/</link>"
        f"<guid>https://news.test/{slug}/</guid><pubDate>{WHEN}</pubDate>"
        f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
        for slug, body in bodies
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>'
        f"<link>https://news.test/</link><description>d</description>{items}</channel></rss>"
    )


def collect_feed(tmp_path: Path, *bodies: tuple[str, str]):
    path = tmp_path / "feed.xml"
    path.write_text(feed_with(*bodies), encoding="utf-8")
    return collect_articles([str(path)])


def nested(tag: str, depth: int) -> str:
    return f"<{tag}>" * depth + "deep" + f"</{tag}>" * depth


FINE = ("fine", "<p>The council met on Tuesday. It agreed the plan.</p>")


@pytest.mark.parametrize("tag", ["div", "b", "span", "blockquote", "x-custom"])
def test_a_too_deeply_nested_item_is_left_out_and_named_and_the_others_kept(tmp_path, tag):
    result = collect_feed(tmp_path, ("deep", nested(tag, MAX_DEPTH + 50)), FINE)
    assert [a.title for a in result.articles] == ["fine"]
    (warning,) = result.warnings
    assert "https://news.test/deep/" in str(warning)
    assert f"nests more than {MAX_DEPTH} elements deep" in str(warning)


def test_an_item_over_the_size_limit_is_left_out(tmp_path):
    huge = "<p>" + "word " * 250_000 + "</p>"  # 1.25 MB of text
    result = collect_feed(tmp_path, ("huge", huge), FINE)
    assert [a.title for a in result.articles] == ["fine"]
    assert "MB (more than 1 MB for one article)" in str(result.warnings[0])


def test_a_deep_title_or_summary_counts_too(tmp_path):
    path = tmp_path / "feed.xml"
    deep = nested("div", MAX_DEPTH + 10).replace("<", "&lt;").replace(">", "&gt;")
    path.write_text(
        feed_with(FINE).replace(
            "</channel>",
            f"<item><title>ok</title><link>https://news.test/sum/</link><pubDate>{WHEN}"
            f'</pubDate><description type="html">{deep}</description></item></channel>',
        ),
        encoding="utf-8",
    )
    result = collect_articles([str(path)])
    assert [a.title for a in result.articles] == ["fine"]
    assert "https://news.test/sum/" in str(result.warnings[0])


def test_ordinary_markup_passes_the_check() -> None:
    # Optional end tags left out, void elements, and a chart: svg with many self-closed paths.
    chart = "<svg>" + '<path d="M0 0"/>' * 3000 + "</svg>"
    article = (
        "<div><article>"
        + "<p>Para <b>bold</b> <a href='/x'>link</a><br>" * 2000
        + "<ul>"
        + "<li>item" * 500
        + "</ul><table>"
        + "<tr><td>1<td>2" * 500
        + "</table><img src=a.jpg><hr>"
        + chart
        + "</article></div>"
    )
    check_markup(article)
    check_markup(nested("div", MAX_DEPTH))
    check_markup('<img src="data:image/png;base64,' + "A" * 500_000 + '" alt="A long picture">')
    check_markup("<p " + " ".join(f'a{i}="x y z"' for i in range(MAX_ATTRIBUTES)) + ">x</p>")


@pytest.mark.parametrize(
    "markup",
    [
        "<div/>" * (MAX_DEPTH + 1),  # HTML ignores the slash on a div: still nested
        "<div>" * (MAX_DEPTH + 1),  # never closed
        "<svg>" + "<g>" * (MAX_DEPTH + 1) + "</svg>",
        "<i>x</i>" * (MAX_TAGS // 2 + 1),
        "<p " + " ".join(f"a{i}=1" for i in range(MAX_ATTRIBUTES + 1)) + ">x</p>",
    ],
)
def test_hostile_shapes_are_refused(markup: str) -> None:
    with pytest.raises(MarkupTooComplex):
        check_markup(markup)


def test_a_tag_left_open_again_and_again_is_read_in_one_pass() -> None:
    check_markup("<a " * 100_000)  # no ">" anywhere: no tag at all, and no quadratic rescans


def write_markdown(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(f"---\ntitle: {name}\ndate: 2026-11-20\n---\n\n{body}\n", "utf-8")


def test_a_markdown_file_nested_too_deep_is_skipped_not_a_crash(tmp_path):
    site = tmp_path / "site"
    write_markdown(site, "lists.md", "".join("  " * i + "- item\n" for i in range(600)))
    write_markdown(site, "quotes.md", ">" * 5000 + " quote")
    write_markdown(site, "html.md", nested("div", MAX_DEPTH + 5))
    write_markdown(site, "fine.md", "An ordinary story.\n\n- one\n  - two\n")
    result = collect_articles([str(site)])
    assert [a.title for a in result.articles] == ["fine.md"]
    skipped = sorted(Path(w.source).name for w in result.warnings)
    assert skipped == ["html.md", "lists.md", "quotes.md"]
    assert all("the file was skipped" in w.message for w in result.warnings)


def test_the_checks_leave_dates_and_sources_alone(tmp_path):
    result = collect_feed(tmp_path, FINE)
    (article,) = result.articles
    assert article.published == datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    assert result.warnings == []


def test_a_yaml_alias_bomb_in_the_front_matter_is_refused_before_it_grows(tmp_path):
    levels = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefghi", "bcdefghij", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    site = tmp_path / "site"
    site.mkdir()
    front = "\n".join(levels) + "\ntitle: *j\n"  # 9**10 strings once written out as text
    (site / "2026-11-20-bomb.md").write_text(f"---\n{front}---\nBody.\n", encoding="utf-8")
    write_markdown(site, "fine.md", "An ordinary story.")
    result = collect_articles([str(site)])
    assert [a.title for a in result.articles] == ["fine.md"]
    (warning,) = result.warnings
    assert "the front matter key 'title' must be a single value" in warning.message


def test_front_matter_of_megabytes_is_refused(tmp_path):
    site = tmp_path / "site"
    write_markdown(site, "big.md", "Body.")
    text = (site / "big.md").read_text(encoding="utf-8")
    (site / "big.md").write_text(text.replace("---\n", "---\nnotes: " + "x" * 200_000 + "\n", 1))
    (warning,) = collect_articles([str(site)]).warnings
    assert (
        "the front matter is 200," in warning.message and "the file was skipped" in warning.message
    )
