"""Split sanitised HTML into its top-level blocks, with each block's text, using the stdlib parser.

Cleaning works on blocks: a doubled caption is a block whose text equals the one before it, the
outlet's trailing plea is a run of blocks at the end. Container tags (div, section, article...)
are transparent: their children become blocks and the containers themselves are dropped, and
loose inline content between blocks is gathered into a run that is later wrapped in ``<p>``.
The input is expected to be nh3's output (balanced, entity-encoded), and whatever is joined
back is sanitised again, so this module never has to be a security boundary.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

BLOCK_TAGS = frozenset(
    {
        "p", "ul", "ol", "dl", "blockquote", "figure", "table", "pre", "hr",
        "h1", "h2", "h3", "h4", "h5", "h6",
    }
)  # fmt: skip
CONTAINER_TAGS = frozenset(
    {"div", "section", "article", "main", "header", "footer", "aside", "body", "html"}
)
VOID_TAGS = frozenset({"br", "hr", "img", "wbr", "col", "source", "area", "input", "meta", "link"})
#: Tags whose text is separated from its neighbours by a space when flattened.
_SPACED_TAGS = frozenset({"li", "td", "th", "dt", "dd", "p", "figcaption", "br", "tr", "caption"})
_WS = re.compile(r"\s+")


def normalise_space(text: str) -> str:
    """Collapse all whitespace (including non-breaking spaces and line breaks) to single spaces."""
    return _WS.sub(" ", text.replace("\u00a0", " ")).strip()


@dataclass
class Block:
    """One top-level block: its HTML as written, its tag ("" for a run of inline content)."""

    html: str
    tag: str
    text: str = ""

    def as_html(self) -> str:
        return f"<p>{self.html.strip()}</p>" if self.tag == "" else self.html


@dataclass
class Image:
    src: str
    alt: str


@dataclass
class _Pending:
    start: int
    tag: str
    text: list[str] = field(default_factory=list)


class _BlockSplitter(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self.line_starts = [0]
        for match in re.finditer("\n", source):
            self.line_starts.append(match.end())
        self.blocks: list[Block] = []
        self.images: list[Image] = []
        self.current: _Pending | None = None
        self.depth = 0
        self.last_br_at_top = False

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def _finish(self, end: int) -> None:
        if self.current is None:
            return
        chunk = self.source[self.current.start : end]
        text = normalise_space("".join(self.current.text))
        if self.current.tag or chunk.strip():
            self.blocks.append(Block(html=chunk, tag=self.current.tag, text=text))
        self.current = None

    def _text(self, text: str) -> None:
        if self.current is None:
            if not text.strip():
                return
            self.current = _Pending(self._offset(), "")
        self.current.text.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._offset()
        if tag == "img":
            values = dict(attrs)
            self.images.append(Image(values.get("src") or "", values.get("alt") or ""))
        if self.depth == 0:
            if tag in CONTAINER_TAGS:
                self._finish(start)
                return
            if tag in BLOCK_TAGS:
                self._finish(start)
                self.current = _Pending(start, tag)
                if tag in VOID_TAGS:
                    end = start + len(self.get_starttag_text() or "")
                    self._finish(end)
                    return
                self.depth = 1
                return
            if tag == "br":
                if self.last_br_at_top:
                    self._finish(start)
                    self.last_br_at_top = False
                    return
                self.last_br_at_top = True
            elif self.current is None:
                self.current = _Pending(start, "")
            if tag in _SPACED_TAGS and self.current is not None:
                self.current.text.append(" ")
            return
        if tag in _SPACED_TAGS and self.current is not None:
            self.current.text.append(" ")
        if tag not in VOID_TAGS:
            self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS:
            return
        start = self._offset()
        if self.depth == 0:
            if tag in CONTAINER_TAGS:
                self._finish(start)
            return
        if tag in _SPACED_TAGS and self.current is not None:
            self.current.text.append(" ")
        self.depth -= 1
        if self.depth == 0:
            close = self.source.find(">", start)
            self._finish(close + 1 if close >= 0 else len(self.source))

    def handle_data(self, data: str) -> None:
        if self.depth == 0 and data.strip():
            self.last_br_at_top = False
        self._text(data)

    def handle_entityref(self, name: str) -> None:
        self.last_br_at_top = False
        self._text(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.last_br_at_top = False
        self._text(html.unescape(f"&#{name};"))

    def close(self) -> None:
        super().close()
        self._finish(len(self.source))


def split_blocks(markup: str) -> tuple[list[Block], list[Image]]:
    """The top-level blocks of ``markup`` in order, and every ``<img>`` met on the way."""
    parser = _BlockSplitter(markup)
    parser.feed(markup)
    parser.close()
    return parser.blocks, parser.images


def join_blocks(blocks: list[Block]) -> str:
    return "\n".join(block.as_html() for block in blocks)


def html_text(markup: str) -> str:
    """All text of ``markup``, entities decoded, whitespace collapsed."""
    blocks, _ = split_blocks(markup)
    return normalise_space(" ".join(b.text for b in blocks))
