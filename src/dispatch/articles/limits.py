"""A fast look at markup before the HTML parser sees it: too big, too many tags, too deep.

html5ever (under nh3) spends time quadratic in nesting depth: one feed item of 50,000 nested
``<div>`` took 5 s to sanitise and 200,000 took minutes. One linear regex pass here rejects such
markup before any parser runs, so a hostile or broken article costs milliseconds and is left out
with a warning instead of hanging the build. The depth limit is the one WebKit's HTML parser
applies (512); no real article comes near it, nor near the size and tag limits.

A tag with thousands of attributes is refused too (html5ever compares each new attribute's
name with the tag's others). The count is approximate by design (it reads tags with a regex,
not a tokenizer): elements that close themselves (void elements, the optional-end-tag ones
such as ``p`` and ``li``, and ``<x/>`` inside svg or math) add no depth; stray end tags are
ignored.
"""

from __future__ import annotations

import re

MAX_MARKUP_CHARS = 1_000_000  # a book chapter is ~100 KB of HTML; a 1 MB "article" is not one
MAX_TAGS = 25_000  # sanitising costs ~4 µs a tag: 25,000 tags is ~0.1 s
MAX_DEPTH = 512  # WebKit's HTML parser nests no deeper than this either
MAX_ATTRIBUTES = 1_000  # in one tag: html5ever checks each new one against the others

#: Never nest: void elements, and elements a sibling of the same kind closes implicitly.
_NO_DEPTH = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "param", "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "option",
        "optgroup", "rb", "rt", "rp", "rtc", "thead", "tbody", "tfoot", "colgroup", "caption",
    }
)  # fmt: skip
_FOREIGN = frozenset({"svg", "math"})
# [^<>]* never runs past the next "<": a tag left open cannot make the scan quadratic.
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/<>]*)[^<>]*?(/?)>")
# Only a tag this long can hold MAX_ATTRIBUTES attributes ("a=1 " is 4 characters).
_LONG_TAG = re.compile(rf"<[A-Za-z][^<>]{{{MAX_ATTRIBUTES * 2},}}")
_ATTRIBUTE = re.compile(r"""[^\s"'<>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]*))?""")


class MarkupTooComplex(ValueError):
    """Markup over a limit; the message says which, in words for the editor."""


def check_size(text: str, what: str = "HTML") -> None:
    """Raise :class:`MarkupTooComplex` when ``text`` (HTML, or Markdown before conversion) is
    over the size limit or holds more "<" than the tag limit. C speed: two passes over it."""
    if len(text) > MAX_MARKUP_CHARS:
        raise MarkupTooComplex(
            f"its {what} is {len(text) / 1_000_000:.1f} MB "
            f"(more than {MAX_MARKUP_CHARS // 1_000_000} MB for one article)"
        )
    if text.count("<") > MAX_TAGS:
        raise MarkupTooComplex(f"its {what} has more than {MAX_TAGS:,} tags")


def check_markup(markup: str) -> None:
    """Raise :class:`MarkupTooComplex` when ``markup`` is too large, has too many tags or nests
    too deeply to sanitise cheaply. Costs one regex pass, at most MAX_TAGS matches."""
    if len(markup) > MAX_MARKUP_CHARS:
        check_size(markup)
    for long_tag in _LONG_TAG.finditer(markup):  # duplicate checks are quadratic per tag
        if len(_ATTRIBUTE.findall(long_tag.group())) > MAX_ATTRIBUTES + 1:  # + the tag's name
            raise MarkupTooComplex(f"a tag in its HTML has more than {MAX_ATTRIBUTES:,} attributes")
    if markup.count("<") <= MAX_DEPTH:
        return  # too few tags to nest too deep or be too many
    depth = 0
    foreign = 0  # inside svg/math, where <x/> really closes itself
    for count, match in enumerate(_TAG.finditer(markup), 1):
        if count > MAX_TAGS:
            raise MarkupTooComplex(f"its HTML has more than {MAX_TAGS:,} tags")
        closing, name, self_closing = match.groups()
        name = name.lower()
        if name in _NO_DEPTH:
            continue
        if closing:
            if depth:
                depth -= 1
            if name in _FOREIGN and foreign:
                foreign -= 1
            continue
        if self_closing and foreign:
            continue
        depth += 1
        if name in _FOREIGN:
            foreign += 1
        if depth > MAX_DEPTH:
            raise MarkupTooComplex(
                f"its HTML nests more than {MAX_DEPTH} elements deep (broken or hostile markup)"
            )
