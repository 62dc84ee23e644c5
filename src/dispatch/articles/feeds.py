"""RSS 2.0 and Atom feeds, by URL or file (feedparser lives here).

We fetch URLs ourselves (urllib, a clear User-Agent, one deadline for the whole download, a size
cap) and hand feedparser a byte stream, so feedparser never opens a URL or a path itself; its
SAX parser has external entities switched off and it strips unsafe entity declarations.
Relative URLs inside an item resolve against the item's link (else the feed's own URL).

Undated items: an item's date is its ``published`` date, else its ``updated`` date. An item
with neither cannot be placed in a week, so it is left out, and the source gets one warning
that counts how many were left out. Items without a GUID use their link as GUID; a GUID that is
not a URI (``<guid isPermaLink="false">42</guid>``) is prefixed with the feed's own link so that
two sites' item "42" never merge.
"""

from __future__ import annotations

import base64
import calendar
import html
import io
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import feedparser

from dispatch import __version__
from dispatch.articles.clean import (
    body_text_for_excerpt,
    clean_body,
    clean_title,
    lead_image_from_body,
    make_excerpt,
    safe_image_url,
    sanitise_html,
    strip_tags,
)
from dispatch.articles.limits import MarkupTooComplex
from dispatch.articles.options import (
    PARTIAL,
    UNDATED,
    Candidate,
    CollectOptions,
    SourceWarning,
)
from dispatch.articles.urls import canonical_url, is_http_url, redact_url, resolve_url
from dispatch.errors import SourceError
from dispatch.models import Article

USER_AGENT = f"Dispatch/{__version__} (newsletter digest; feed reader)"
MAX_FEED_BYTES = 20 * 1024 * 1024
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
#: feedparser "bozo" reasons that are about labelling, not about broken XML.
_HARMLESS_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s): a feed server must not send us to file: or ftp:."""

    def redirect_request(  # type: ignore[no-untyped-def]
        self, req, fp, code, msg, headers, newurl
    ):
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(
                newurl, code, "redirect to a non-http(s) address refused", headers, fp
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")  # the feed's password is for its own host only
        return new


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def fetch_feed(url: str, timeout: float) -> tuple[bytes, str]:
    """Download a feed: its bytes and Content-Type. Raises SourceError saying what went wrong.

    A user name and password in the URL (``https://user:pass@host/feed``) are sent as HTTP
    Basic authentication and never shown in messages.
    """
    headers = {"User-Agent": USER_AGENT, "Accept": _ACCEPT}
    parts = urlsplit(url)
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        host = parts.netloc.rsplit("@", 1)[1]
        url_to_fetch = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    else:
        url_to_fetch = url
    url = redact_url(url)  # from here on, only for messages
    request = urllib.request.Request(url_to_fetch, headers=headers)
    deadline = time.monotonic() + timeout
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            content_type = response.headers.get("Content-Type", "")
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunk = response.read1(65536)  # returns what has arrived; read() waits to fill
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise SourceError(
                        f"{url} is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB",
                        "Point the source at the feed itself, not a page or a download.",
                    )
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise SourceError(
            f"fetching {url} failed with HTTP {exc.code} {exc.reason}",
            "Check the feed URL in --source or DISPATCH_SOURCES.",
        ) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise _timeout(url, timeout) from exc
        raise SourceError(
            f"cannot reach {url} ({exc.reason})",
            "Check the address and your connection, or leave the source out for now.",
        ) from exc
    except TimeoutError as exc:
        raise _timeout(url, timeout) from exc
    except OSError as exc:  # connection reset mid-body, etc.
        raise SourceError(
            f"reading {url} failed ({exc})", "Try again; if it persists, check the feed's server."
        ) from exc
    return b"".join(chunks), content_type


def _timeout(url: str, timeout: float) -> SourceError:
    return SourceError(
        f"{url} did not answer within {timeout:g} seconds",
        "Try again later or raise DISPATCH_FEED_TIMEOUT.",
    )


def parse_feed(
    data: bytes,
    source: str,
    options: CollectOptions,
    patterns: tuple[Any, ...],
    location: str = "",
    content_type: str = "application/xml",
) -> tuple[list[Candidate], list[SourceWarning]]:
    """Parse feed bytes into candidates; ``location`` is the feed's URL for relative links."""
    headers = {"content-type": content_type or "application/xml"}
    if location:
        headers["content-location"] = location
    parsed = feedparser.parse(
        io.BytesIO(data), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    warnings: list[SourceWarning] = []
    entries = parsed.get("entries", [])
    if parsed.get("bozo") and not entries:
        reason = _bozo_reason(parsed.get("bozo_exception"))
        return [], [SourceWarning(source, f"not a readable RSS or Atom feed ({reason})")]
    if not parsed.get("version") and not entries:
        return [], [SourceWarning(source, "not an RSS or Atom feed (no channel or feed element)")]
    exception = parsed.get("bozo_exception")
    if parsed.get("bozo") and type(exception).__name__ not in _HARMLESS_BOZO:
        warnings.append(
            SourceWarning(
                source,
                f"the feed is not well-formed XML ({_bozo_reason(exception)}); "
                f"kept the {len(entries)} item(s) that could be read",
                PARTIAL,
            )
        )
    feed_link = parsed.get("feed", {}).get("link", "") or ""
    base = location if is_http_url(location) else feed_link if is_http_url(feed_link) else ""
    candidates: list[Candidate] = []
    undated = 0
    for entry in entries:
        published = _entry_date(entry)
        if published is None:
            undated += 1
            continue
        try:
            if options.window and not options.window[0] <= published < options.window[1]:
                candidates.append(_bare_candidate(entry, published, source, base, feed_link))
                continue
            candidates.append(
                _candidate(entry, published, source, base, feed_link, options, patterns)
            )
        except MarkupTooComplex as exc:
            warnings.append(
                SourceWarning(source, f"left out the item {_item_name(entry)}: {exc}", PARTIAL)
            )
    if undated:
        everything = not candidates and undated == len(entries)
        warnings.append(
            SourceWarning(
                source,
                f"none of its {undated} item(s) has a published or updated date"
                if everything
                else f"left out {undated} item(s) with no published or updated date",
                UNDATED if everything else PARTIAL,
            )
        )
    return candidates, warnings


def _item_name(entry: Any) -> str:
    """How a warning names an item: its link or id, shortened (its title may be the problem)."""
    name = str(entry.get("link") or entry.get("id") or "(no link)")
    return repr(name if len(name) <= 100 else name[:99] + "…")


def _bozo_reason(exception: object) -> str:
    if exception is None:
        return "unknown error"
    get_message = getattr(exception, "getMessage", None)
    line = getattr(exception, "getLineNumber", None)
    if callable(get_message) and callable(line):  # a SAX parse error: say where
        column = getattr(exception, "getColumnNumber", lambda: 0)()
        return f"line {line()}, column {column}: {get_message()}"
    return str(exception).strip() or type(exception).__name__


def _entry_date(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    return None


def _candidate(
    entry: Any,
    published: datetime,
    source: str,
    base: str,
    feed_link: str,
    options: CollectOptions,
    patterns: tuple[Any, ...],
) -> Candidate:
    link = resolve_url(entry.get("link", "") or "", base, frozenset({"http", "https"})) or ""
    guid = _guid(entry, link, feed_link or source)
    title = clean_title(entry.get("title", "") or "")
    contents = entry.get("content") or []
    full = next((c for c in contents if (c.get("value") or "").strip()), None)
    summary_html = _as_html(entry.get("summary_detail") or {}, entry.get("summary", ""))
    body_source = _as_html(full, full.get("value", "")) if full else summary_html
    body_html = clean_body(body_source, link or base, patterns)
    if full is None and summary_html and not body_html:
        body_html = sanitise_html(summary_html, link or base)
    excerpt = make_excerpt(body_text_for_excerpt(body_html), options.excerpt_words)
    if not excerpt and summary_html:
        excerpt = make_excerpt(strip_tags(summary_html), options.excerpt_words)
    image_url, image_alt = _feed_image(entry, link or base)
    found = lead_image_from_body(body_html)
    if found is not None and image_url in (None, found.src):
        image_url, image_alt = found.src, found.alt  # the body's <img> knows its alt text
    if not title:
        title = make_excerpt(excerpt, 12) or link or "(untitled)"
    article = Article(
        title=title,
        url=link,
        guid=guid,
        published=published,
        source=source,
        excerpt=excerpt,
        body_html=body_html,
        image_url=image_url,
        image_alt=(image_alt or title) if image_url else "",
        canonical_url=canonical_url(link),
    )
    return Candidate(article=article, full_content=full is not None)


def _bare_candidate(
    entry: Any, published: datetime, source: str, base: str, feed_link: str
) -> Candidate:
    """An item outside the build's window: only what counting and deduplication read (GUID,
    link, date), none of the cleaning, which is most of a feed's cost past feedparser's own."""
    link = resolve_url(entry.get("link", "") or "", base, frozenset({"http", "https"})) or ""
    article = Article(
        title="",
        url=link,
        guid=_guid(entry, link, feed_link or source),
        published=published,
        source=source,
        canonical_url=canonical_url(link),
    )
    return Candidate(article=article, full_content=False)


def _guid(entry: Any, link: str, namespace: str) -> str:
    raw = (entry.get("id") or "").strip()
    if not raw:
        return link or f"{namespace}#{clean_title(entry.get('title', ''))}"
    if ":" in raw:
        return raw
    return f"{namespace.rstrip('/')}#{raw}"


def _as_html(detail: Any, value: str) -> str:
    """A feed text construct as HTML (plain text is escaped, not interpreted)."""
    if not value:
        return ""
    if (detail.get("type") or "") == "text/plain":
        return "\n".join(
            f"<p>{html.escape(p.strip())}</p>" for p in value.split("\n\n") if p.strip()
        )
    return value


def _feed_image(entry: Any, base: str) -> tuple[str | None, str]:
    """media:content (an image) -> media:thumbnail -> an image enclosure."""
    for media in entry.get("media_content") or []:
        kind = (media.get("medium") or media.get("type") or "image").lower()
        if kind.startswith("image"):
            url = safe_image_url(media.get("url", ""), base)
            if url:
                return url, ""
    for thumb in entry.get("media_thumbnail") or []:
        url = safe_image_url(thumb.get("url", ""), base)
        if url:
            return url, ""
    for enclosure in entry.get("enclosures") or []:
        if (enclosure.get("type") or "").lower().startswith("image/"):
            url = safe_image_url(enclosure.get("href", ""), base)
            if url:
                return url, ""
    return None, ""


def collect_feed(
    source: str, options: CollectOptions, patterns: tuple[Any, ...], path: str | None = None
) -> tuple[list[Candidate], list[SourceWarning]]:
    """One feed source: a URL to fetch or a file to read. Never raises for a bad source."""
    try:
        if path is None:
            data, content_type = fetch_feed(source, options.timeout)
            return parse_feed(data, source, options, patterns, source, content_type)
        with open(path, "rb") as handle:
            data = handle.read(MAX_FEED_BYTES + 1)
    except SourceError as exc:
        return [], [SourceWarning(source, exc.message)]
    except OSError as exc:
        return [], [SourceWarning(source, f"cannot read the feed file ({exc.strerror or exc})")]
    if len(data) > MAX_FEED_BYTES:
        return [], [SourceWarning(source, "the feed file is larger than 20 MB")]
    return parse_feed(data, source, options, patterns)
