"""Turn what a source supplies into what a reader may see (nh3 lives here).

- :func:`sanitise_html` keeps a safe subset: paragraphs, links (``rel="noopener"``), emphasis,
  lists, quotes, h2-h4, images, figures, simple tables. No script/style/iframe/form/object/embed/
  svg (their content goes too), no ``on*`` handlers, no ``style`` attributes, no URLs but http(s),
  mailto and tel; relative URLs are resolved against the article's URL (or dropped without one).
- :func:`clean_body` sanitises, drops doubled captions and cuts the trailing boilerplate.
- :func:`clean_title` makes one line of plain text; :func:`make_excerpt` about N words ending at a
  sentence; :func:`lead_image` picks the first usable picture.

Boilerplate patterns are Python regular expressions searched (``re.search``) in the text of each
block near the end of an article; add ``(?i)`` for a case-insensitive one. Only a run of blocks
at the very end is cut: walking back from the last block, blocks that match a pattern and short
sign-off lines (a few words, like the outlet's name or the editor's) are skipped over, and the
walk stops at the first ordinary paragraph. The cut starts at the earliest block that matched a
pattern, so a paragraph in the middle of a story that mentions donations is never touched, and
an article is never cut to nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache

import nh3

from dispatch.articles.htmlblocks import (
    CONTAINER_TAGS,
    Block,
    Image,
    join_blocks,
    normalise_space,
    split_blocks,
)
from dispatch.articles.limits import check_markup
from dispatch.articles.urls import SAFE_LINK_SCHEMES, is_http_url, resolve_url

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "a", "em", "strong", "b", "i", "u", "s", "sub", "sup", "small", "mark",
        "abbr", "cite", "q", "code", "pre", "kbd", "ul", "ol", "li", "dl", "dt", "dd",
        "blockquote", "h2", "h3", "h4", "img", "figure", "figcaption", "table", "thead",
        "tbody", "tfoot", "tr", "th", "td", "caption",
    }
)  # fmt: skip
#: Removed together with everything inside them.
DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "noframes", "object", "embed",
        "applet", "form", "button", "select", "textarea", "svg", "math", "noscript",
        "noembed", "template", "title", "head", "audio", "video", "canvas", "dialog",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "abbr": {"title"},
    "th": {"colspan", "rowspan", "scope"},
    "td": {"colspan", "rowspan"},
    "ol": {"start"},
}
_URL_ATTRIBUTES = frozenset({"href", "src"})
_HEADING_OPEN = re.compile(r"<(/?)h([156])(?=[\s>/])", re.IGNORECASE)

#: Defaults for DISPATCH_BOILERPLATE_PATTERNS: donation pleas and sign-offs in general.
DEFAULT_BOILERPLATE_PATTERNS: tuple[str, ...] = (
    # "Support <anything> Journalism" / "Support our independent reporting" as a heading
    r"(?i)^support\b[^.!?]{0,120}\b(journalism|reporting|newsroom|news|media|press)\b[\s.!:]*$",
    r"(?i)\b(click|tap)\s+(here|below|the\s+button)\b[^.]{0,120}\b(donat|contribut|support)",
    r"(?i)\b(donate|give|contribute|chip\s+in)\s+(now|today|here|online)\b",
    r"(?i)\b(urges?|asks?|invites?|encourages?|need)\s+you\s+to\s+(support|donate|contribute)",
    r"(?i)\bsupport\s+us\s+(financially|with\s+(a|your)\s+(donation|gift|contribution))",
    r"(?i)\b(make|making)\s+a\s+(one-off\s+|monthly\s+|small\s+)?(donation|contribution)\b"
    r"[^.]{0,80}\b(us|our|journalism|work)\b",
    r"(?i)\bbecome\s+a\s+(member|supporter|patron|subscriber)\b",
    r"(?i)^(independent|reader-funded|reader-supported)\b[^.]{0,80}\b(journalism|news)\b"
    r"[^.]{0,80}\b(needs|depends|relies)\b",
    r"(?i)^[\w.'’ -]{2,60},\s*(editor|editor-in-chief|publisher|founder|managing\s+editor)\b"
    r"[^.]{0,60}\.?$",
    r"(?i)^(editor|publisher|founder)\s*:",
    r"^[—–-]{1,2}\s*\S",
)
_SIGN_OFF_MAX_WORDS = 8
_TAIL_MAX_BLOCKS = 10


# -- sanitising ---------------------------------------------------------------------------


def sanitise_html(markup: str, base_url: str = "", containers: bool = False) -> str:
    """The safe subset of ``markup``; relative links resolved against ``base_url``.

    ``containers`` keeps div/section/article tags (attribute-free) for the block splitter, which
    turns their children into blocks and drops them; the final output never has them.
    Raises MarkupTooComplex (see ``limits``) before parsing markup too big or deep to sanitise.
    """
    if not markup or not markup.strip():
        return ""
    check_markup(markup)
    # Headings the email does not use become the nearest allowed level, not loose text.
    markup = _HEADING_OPEN.sub(
        lambda m: f"<{m.group(1)}h{'2' if m.group(2) == '1' else '4'}", markup
    )

    def keep_url(tag: str, attr: str, value: str) -> str | None:
        if attr in _URL_ATTRIBUTES:
            schemes = SAFE_LINK_SCHEMES if tag == "a" else frozenset({"http", "https"})
            return resolve_url(value, base_url, schemes)
        return value

    return nh3.clean(
        markup,
        tags=set(ALLOWED_TAGS | CONTAINER_TAGS) if containers else set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=keep_url,
        url_schemes=set(SAFE_LINK_SCHEMES),
        link_rel="noopener",
        strip_comments=True,
    ).strip()


def strip_tags(markup: str) -> str:
    """Plain text of a fragment: tags (and script/style content) removed, entities decoded.
    Raises MarkupTooComplex like :func:`sanitise_html`."""
    check_markup(markup)
    text = nh3.clean(markup, tags=set(), clean_content_tags={"script", "style"})
    return html.unescape(text)


# -- titles ---------------------------------------------------------------------------------

_ENTITY = re.compile(r"&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028\u2029\u202a-\u202e\ufeff]")


def clean_title(raw: str) -> str:
    """One line of plain text: tags stripped, entities decoded (twice if double-encoded)."""
    text = strip_tags(raw or "")
    if _ENTITY.search(text):  # feeds often encode titles twice ("&amp;#8217;")
        text = html.unescape(text)
    text = _INVISIBLE.sub(" ", text)
    return normalise_space(text)


# -- bodies ----------------------------------------------------------------------------------


def compile_patterns(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """Compile boilerplate patterns; empty means the defaults. Raises re.error on a bad one."""
    return _compile(tuple(patterns) or DEFAULT_BOILERPLATE_PATTERNS)


@lru_cache(maxsize=8)
def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def drop_doubled_blocks(blocks: list[Block]) -> list[Block]:
    """Drop a block whose text is the same as the block right before it (a doubled caption)."""
    kept: list[Block] = []
    for block in blocks:
        if kept and block.text and block.text == kept[-1].text:
            continue
        kept.append(block)
    return kept


def _is_sign_off(text: str) -> bool:
    words = text.split()
    return 0 < len(words) <= _SIGN_OFF_MAX_WORDS and len(text) <= 80


def cut_boilerplate(blocks: list[Block], patterns: Sequence[re.Pattern[str]]) -> list[Block]:
    """Cut the trailing run of plea and sign-off blocks (see the module docstring)."""
    cut_at: int | None = None
    lowest = max(1, len(blocks) - _TAIL_MAX_BLOCKS)
    for index in range(len(blocks) - 1, lowest - 1, -1):
        text = blocks[index].text
        if not text:
            continue  # an empty block (an image, a rule) neither stops nor starts a cut
        if any(p.search(text) for p in patterns):
            cut_at = index
        elif not _is_sign_off(text):
            break
    if cut_at is None:
        return blocks
    return blocks[:cut_at]


def clean_body(markup: str, base_url: str, patterns: Sequence[re.Pattern[str]]) -> str:
    """Sanitised body with doubled captions dropped and the trailing plea/sign-off cut."""
    safe = sanitise_html(markup, base_url, containers=True)
    if not safe:
        return ""
    blocks, _ = split_blocks(safe)
    blocks = cut_boilerplate(drop_doubled_blocks(blocks), patterns)
    # Joining re-serialises slices of sanitised markup; sanitise once more so the result is
    # safe by construction whatever the splitting did.
    return sanitise_html(join_blocks(blocks), base_url)


# -- plain text in the outlet's shape --------------------------------------------------------


def plain_text_to_html(lines: Sequence[str]) -> str:
    """Paragraphs separated by blank lines become ``<p>``; a line repeated right after itself
    is a photo caption: the repeat is dropped and the caption kept as a ``<figcaption>``."""
    paragraphs: list[tuple[str, list[str]]] = []  # (kind, lines)
    current: list[str] = []
    previous = ""

    def flush() -> None:
        if current:
            paragraphs.append(("p", current.copy()))
            current.clear()

    for raw in lines:
        line = normalise_space(raw)
        if not line:
            flush()
            continue
        if line == previous:
            # The previous line was a caption: move it out of its paragraph into its own.
            if current and current[-1] == line:
                current.pop()
            elif paragraphs and paragraphs[-1][1] and paragraphs[-1][1][-1] == line:
                paragraphs[-1][1].pop()
                if not paragraphs[-1][1]:
                    paragraphs.pop()
            flush()
            if not (paragraphs and paragraphs[-1] == ("caption", [line])):
                paragraphs.append(("caption", [line]))
            continue
        current.append(line)
        previous = line
    flush()
    parts = []
    for kind, body in paragraphs:
        text = html.escape(" ".join(body), quote=False)
        if kind == "caption":
            parts.append(f"<figure><figcaption>{text}</figcaption></figure>")
        else:
            parts.append(f"<p>{text}</p>")
    return "\n".join(parts)


# -- excerpts ----------------------------------------------------------------------------------

_EXCERPT_SKIP = frozenset({"figure", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "hr"})
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "sr",
        "jr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "cllr",
        "rev",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "approx",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)


def body_text_for_excerpt(body_html: str) -> str:
    """The running text of a body: paragraphs and lists, not captions, headings or tables."""
    blocks, _ = split_blocks(body_html)
    chosen = [b.text for b in blocks if b.text and b.tag not in _EXCERPT_SKIP]
    if not chosen:
        chosen = [b.text for b in blocks if b.text]
    return normalise_space(" ".join(chosen))


def _ends_sentence(words: Sequence[str], index: int) -> bool:
    word = words[index]
    if not _SENTENCE_END.search(word):
        return False
    bare = word.rstrip("\"'”’»)]").rstrip(".").lower()
    if word.rstrip("\"'”’»)]").endswith(".") and (
        bare in _ABBREVIATIONS or re.fullmatch(r"[a-z]", bare)
    ):
        return False  # "Dr." or an initial, not the end of a sentence
    if index + 1 < len(words):
        following = words[index + 1].lstrip("\"'“‘«([")
        if following and following[0].islower():
            return False  # "the U.S. said" goes on
    return True


def make_excerpt(text: str, words: int = 60) -> str:
    """About ``words`` words of ``text``, ending at a sentence end when one falls between half
    and four thirds of the target; otherwise cut at a word boundary with an ellipsis."""
    text = normalise_space(text)
    all_words = text.split(" ") if text else []
    if words <= 0 or len(all_words) <= words:
        return text
    low = max(1, words // 2)
    high = min(len(all_words), (words * 4) // 3)
    best: int | None = None
    for count in range(low, high + 1):
        if _ends_sentence(all_words, count - 1) and (
            best is None or abs(count - words) < abs(best - words)
        ):
            best = count
    if best is not None:
        return " ".join(all_words[:best])
    cut = " ".join(all_words[:words]).rstrip(",;:—–-([{\"'“‘ ")
    return cut + "…"


# -- images -----------------------------------------------------------------------------------


def lead_image_from_body(body_html: str) -> Image | None:
    """The first ``<img>`` of a sanitised body with an http(s) source."""
    _, images = split_blocks(body_html)
    for image in images:
        src = html.unescape(image.src)
        if is_http_url(src):
            return Image(src, normalise_space(image.alt))
    return None


def safe_image_url(value: str, base_url: str) -> str | None:
    """An image URL from metadata, resolved and limited to http(s)."""
    if not isinstance(value, str):
        return None
    return resolve_url(value, base_url, frozenset({"http", "https"}))
