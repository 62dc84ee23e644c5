"""Cleaning rules: the sanitiser's attack vectors, titles, excerpts, captions, boilerplate, URLs."""

from __future__ import annotations

import pytest

from dispatch.articles import DEFAULT_BOILERPLATE_PATTERNS, canonical_url
from dispatch.articles.clean import (
    clean_body,
    clean_title,
    compile_patterns,
    make_excerpt,
    plain_text_to_html,
    sanitise_html,
)

DEFAULTS = compile_patterns(())


# -- sanitiser: one test per attack vector ---------------------------------------------------


def test_script_tag_and_its_content_are_removed() -> None:
    out = sanitise_html("<p>Hello<script>alert('x')</script> world</p>")
    assert out == "<p>Hello world</p>"


def test_style_tag_and_its_css_are_removed() -> None:
    out = sanitise_html("<style>body{display:none}</style><p>Text</p>")
    assert out == "<p>Text</p>"


@pytest.mark.parametrize(
    "markup",
    [
        '<img src="https://x.example/a.png" onerror="steal()">',
        '<p onclick="steal()">t</p>',
        '<a href="https://x.example/" onmouseover="steal()">t</a>',
    ],
)
def test_event_handler_attributes_are_removed(markup: str) -> None:
    out = sanitise_html(markup)
    assert "on" not in out.replace("noopener", "")
    assert "steal" not in out


def test_iframe_is_removed_with_its_fallback() -> None:
    out = sanitise_html('<p>a</p><iframe src="https://evil.example/">fallback</iframe>')
    assert out == "<p>a</p>"


def test_form_and_its_controls_are_removed() -> None:
    out = sanitise_html(
        '<form action="https://evil.example/"><input name="card"><button>Pay</button></form>'
        "<p>after</p>"
    )
    assert out == "<p>after</p>"


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "&#106;avascript:alert(1)",
        "&#x6A;&#x61;vascript:alert(1)",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    ],
)
def test_dangerous_link_schemes_are_dropped_however_spelled(href: str) -> None:
    out = sanitise_html(f'<a href="{href}">x</a>', base_url="https://site.example/post")
    assert out == '<a rel="noopener">x</a>'


def test_data_url_images_are_dropped() -> None:
    out = sanitise_html('<img src="data:image/png;base64,iVBORw0KGgo=" alt="pixel">')
    assert out == '<img alt="pixel">'


def test_style_attributes_are_removed_so_nothing_is_positioned() -> None:
    out = sanitise_html('<p style="position:fixed;top:0;left:0;width:100%">cover</p>')
    assert out == "<p>cover</p>"


def test_object_and_embed_are_removed() -> None:
    out = sanitise_html('<object data="x.swf"><param name="a"></object><embed src="x.swf">ok')
    assert out == "ok"


def test_svg_with_onload_is_removed_entirely() -> None:
    out = sanitise_html('<svg onload="alert(1)"><circle r="5"/><text>t</text></svg><p>p</p>')
    assert out == "<p>p</p>"


def test_links_get_noopener_and_relative_urls_resolve_against_the_article() -> None:
    out = sanitise_html(
        '<a href="../other">o</a> <img src="pic.jpg" alt="p">',
        base_url="https://site.example/news/2026/story",
    )
    assert out == (
        '<a href="https://site.example/news/other" rel="noopener">o</a> '
        '<img src="https://site.example/news/2026/pic.jpg" alt="p">'
    )


def test_relative_urls_without_a_base_are_dropped_rather_than_left_broken() -> None:
    assert sanitise_html('<a href="/x">x</a>') == '<a rel="noopener">x</a>'


def test_safe_formatting_is_kept() -> None:
    markup = (
        "<h2>Head</h2><p><strong>b</strong> <em>i</em></p><ul><li>one</li></ul>"
        "<blockquote><p>q</p></blockquote><figure><figcaption>c</figcaption></figure>"
    )
    assert sanitise_html(markup) == markup


def test_h1_becomes_h2_instead_of_loose_text() -> None:
    assert sanitise_html("<h1>Big</h1><p>x</p>") == "<h2>Big</h2><p>x</p>"


def test_wrapping_divs_are_unwrapped_into_paragraph_blocks() -> None:
    out = clean_body("<div><div>First part</div><div>Second part</div></div>", "", DEFAULTS)
    assert out == "<p>First part</p>\n<p>Second part</p>"


# -- titles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Council &amp; schools", "Council & schools"),
        ("It&#8217;s done", "It’s done"),
        ("Double &amp;#8217;encoded&amp;#8217;", "Double ’encoded’"),
        ("Budget <em>passes</em> <b>at last</b>", "Budget passes at last"),
        ("Line one\nline two\r\n  and   three", "Line one line two and three"),
        ("<script>alert(1)</script>Safe", "Safe"),
        ("Tabs\tand\u00a0nbsp\u2028separator", "Tabs and nbsp separator"),
        ("Rents rise &lt;5%", "Rents rise <5%"),
    ],
)
def test_titles_become_one_line_of_plain_text(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected


# -- excerpts ---------------------------------------------------------------------------------


def test_short_text_is_the_whole_excerpt() -> None:
    assert make_excerpt("Just a   short\nstory.", 60) == "Just a short story."


def test_excerpt_ends_at_the_sentence_end_nearest_the_target() -> None:
    first = " ".join(["word"] * 9) + " end."  # 10 words
    second = " ".join(["more"] * 9) + " stop."  # 20 words
    third = " ".join(["Tail"] * 30) + "."
    assert make_excerpt(f"{first} {second} {third}", 18) == f"{first} {second}"


def test_excerpt_accepts_a_closing_quote_after_the_full_stop() -> None:
    text = 'He said it was "over." ' + " ".join(["After"] * 20)
    assert make_excerpt(text, 6) == 'He said it was "over."'


def test_excerpt_without_a_sentence_end_is_cut_at_a_word_with_an_ellipsis() -> None:
    text = " ".join(f"w{i}," for i in range(100))
    assert make_excerpt(text, 10) == "w0, w1, w2, w3, w4, w5, w6, w7, w8, w9…"


def test_excerpt_does_not_stop_after_an_abbreviation_or_initial() -> None:
    text = "Officers met Dr. Patel and J. Smith on Monday to agree a plan for the town."
    text += " " + " ".join(["More"] * 30)
    assert make_excerpt(text, 12) == (
        "Officers met Dr. Patel and J. Smith on Monday to agree a plan for the town."
    )


def test_excerpt_far_from_any_sentence_end_is_cut_rather_than_ending_too_early() -> None:
    text = "Short. " + " ".join(["long"] * 100)
    assert make_excerpt(text, 40).endswith("long…")


# -- doubled captions and boilerplate ---------------------------------------------------------


def test_plain_text_doubled_caption_is_kept_once_as_a_caption() -> None:
    lines = ["Caption of the photo", "Caption of the photo", "", "Body text here."]
    assert plain_text_to_html(lines) == (
        "<figure><figcaption>Caption of the photo</figcaption></figure>\n<p>Body text here.</p>"
    )


def test_html_paragraph_repeating_the_figcaption_is_dropped() -> None:
    markup = "<figure><figcaption>The quay</figcaption></figure><p>The quay</p><p>Story.</p>"
    assert clean_body(markup, "", DEFAULTS) == (
        "<figure><figcaption>The quay</figcaption></figure>\n<p>Story.</p>"
    )


def test_identical_paragraphs_in_a_row_are_collapsed_whatever_their_spacing() -> None:
    markup = "<p>Same  line</p><p>Same\nline</p><p>Other.</p>"
    assert clean_body(markup, "", DEFAULTS) == "<p>Same  line</p>\n<p>Other.</p>"


def test_trailing_plea_and_sign_off_are_cut() -> None:
    markup = (
        "<p>The story itself, told in full sentences.</p>"
        "<p>Photo courtesy: staff</p>"
        "<p>Support The Weekly Bugle's Independent Journalism</p>"
        "<p>Times are hard. Please click here and choose the amount you want to donate.</p>"
        "<p>The Weekly Bugle</p><p>Ann Editor</p>"
    )
    assert clean_body(markup, "", DEFAULTS) == (
        "<p>The story itself, told in full sentences.</p>\n<p>Photo courtesy: staff</p>"
    )


def test_a_mid_article_mention_of_donations_is_kept() -> None:
    markup = (
        "<p>Opening paragraph.</p>"
        "<p>Organisers asked visitors to donate now to the lifeboat fund.</p>"
        "<p>The event ended with fireworks over the water, watched by hundreds.</p>"
    )
    assert clean_body(markup, "", DEFAULTS).count("<p>") == 3


def test_a_short_last_line_without_a_plea_is_not_treated_as_a_sign_off() -> None:
    markup = "<p>A long paragraph that tells the story.</p><p>More to follow.</p>"
    assert clean_body(markup, "", DEFAULTS).endswith("<p>More to follow.</p>")


def test_an_article_that_is_all_plea_is_not_cut_to_nothing() -> None:
    markup = "<p>Please click here to donate to our journalism.</p>"
    assert clean_body(markup, "", DEFAULTS) == markup


def test_custom_boilerplate_patterns_replace_the_defaults() -> None:
    markup = "<p>Story.</p><p>Click here to donate.</p><p>Read more stories like this</p>"
    custom = compile_patterns((r"^Read more stories",))
    assert clean_body(markup, "", custom) == "<p>Story.</p>\n<p>Click here to donate.</p>"


def test_default_patterns_do_not_name_any_one_outlet() -> None:
    joined = " ".join(DEFAULT_BOILERPLATE_PATTERNS).lower()
    assert "rmn" not in joined and "ledger" not in joined and "gazette" not in joined


# -- canonical URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.ORG/News/Story/", "https://example.org/News/Story"),
        ("https://example.org/a?utm_source=x&utm_medium=y&id=3", "https://example.org/a?id=3"),
        (
            "https://example.org/a?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&ref=tw",
            "https://example.org/a",
        ),
        ("https://example.org/a?b=2&a=1#comments", "https://example.org/a?a=1&b=2"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("http://example.org:8080/a/", "http://example.org:8080/a"),
        ("https://example.org/", "https://example.org"),
        ("", ""),
        ("file:gazette/x.txt", "file:gazette/x.txt"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected
