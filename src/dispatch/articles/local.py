"""Folders of local articles: Markdown with YAML front matter, and plain text (Markdown lives here).

Markdown (``*.md``, ``*.markdown``): front matter keys ``title``, ``date``, ``url``, ``image``
(a URL, or a mapping with ``url``/``src`` and ``alt``) and ``summary``; other keys are ignored.
Without a ``title`` the first ``# Heading`` is the title (and leaves the body).

Plain text (``*.txt``), the shape of a copied outlet article: the first line is the title, then
optionally ``URL:``, ``Date:`` and ``Image:`` lines, then paragraphs separated by blank lines.
A line repeated right after itself is a photo caption (the repeat is dropped); the trailing
donation plea and sign-off are cut like any article's.

Every local article's GUID is ``file:<folder name>/<path inside the folder>``, stable however
the folder is reached. Its URL is the ``url`` key or ``URL:`` line, else "" (no link in the email).
Its date: ``date`` key or ``Date:`` line -> a date at the start of the file name
(``2026-11-18-slug.txt``) -> the file's modification time (never later than ``options.now``).
A date without a time is midnight UTC; a time without a zone is UTC.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import markdown

from dispatch.articles.clean import (
    body_text_for_excerpt,
    clean_body,
    clean_title,
    lead_image_from_body,
    make_excerpt,
    plain_text_to_html,
    safe_image_url,
    strip_tags,
)
from dispatch.articles.frontmatter import FrontMatterError, split_front_matter
from dispatch.articles.htmlblocks import normalise_space
from dispatch.articles.limits import MarkupTooComplex, check_size
from dispatch.articles.options import PARTIAL, Candidate, CollectOptions, SourceWarning
from dispatch.articles.urls import canonical_url, is_http_url
from dispatch.models import Article

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
TEXT_SUFFIXES = frozenset({".txt"})
ARTICLE_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES
_NAME_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?!\d)")
_H1 = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_TEXT_META = re.compile(r"^(url|date|image)\s*:\s*(\S.*)$", re.IGNORECASE)
_MAX_FILE_BYTES = 5 * 1024 * 1024
_SCALARS = (str, int, float, date, type(None))  # bool is an int; datetime is a date
# Python-Markdown recurses once per level of list or quote nesting: a line indented this deep
# (spaces, tabs, ">") is broken or hostile, and would exhaust the stack or take seconds.
_TOO_DEEP_MARKDOWN = re.compile(r"^[ \t>]{256}", re.MULTILINE)


class UnusableFile(Exception):
    """This file cannot be used; the message says why."""


def collect_folder(
    folder: Path, source: str, options: CollectOptions, patterns: tuple[Any, ...]
) -> tuple[list[Candidate], list[SourceWarning]]:
    """Every article file in ``folder`` (and its subfolders, hidden ones skipped)."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in ARTICLE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    if not files:
        return [], [SourceWarning(source, "the folder has no .md, .markdown or .txt articles")]
    candidates: list[Candidate] = []
    warnings: list[SourceWarning] = []
    for path in files:
        relative = path.relative_to(folder).as_posix()
        guid = f"file:{folder.resolve().name}/{relative}"
        try:
            candidates.append(read_article(path, guid, source, options, patterns, warnings))
        except UnusableFile as exc:
            warnings.append(SourceWarning(str(path), f"{exc}; the file was skipped", PARTIAL))
    return candidates, warnings


def read_article(
    path: Path,
    guid: str,
    source: str,
    options: CollectOptions,
    patterns: tuple[Any, ...],
    warnings: list[SourceWarning],
) -> Candidate:
    """One local article file as a candidate. Raises UnusableFile when the file cannot be used."""
    try:
        return _read_article(path, guid, source, options, patterns, warnings)
    except MarkupTooComplex as exc:
        raise UnusableFile(str(exc)) from exc


def _read_article(
    path: Path,
    guid: str,
    source: str,
    options: CollectOptions,
    patterns: tuple[Any, ...],
    warnings: list[SourceWarning],
) -> Candidate:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise UnusableFile("the file is larger than 5 MB")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnusableFile(f"the file is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise UnusableFile(f"cannot read the file ({exc.strerror or exc})") from exc
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        fields = _markdown_fields(text)
    else:
        fields = _text_fields(text)

    def warn(message: str) -> None:
        warnings.append(SourceWarning(str(path), message, PARTIAL))

    url = ""
    raw_url = fields.get("url")
    if raw_url not in (None, ""):
        if isinstance(raw_url, str) and is_http_url(raw_url.strip()):
            url = raw_url.strip()
        else:
            warn(f"url {raw_url!r} is not an http(s) address; the article has no link")
    published = _file_date(path, fields.get("date"), options, warn)
    title = clean_title(str(fields.get("title") or ""))
    if not title:
        title = clean_title(path.stem.replace("-", " ").replace("_", " ")).capitalize()
        warn(f"no title found; used the file name ({title!r})")
    body_html = clean_body(fields["body_html"], url, patterns)
    summary = fields.get("summary")
    summary_text = normalise_space(strip_tags(str(summary))) if summary else ""
    excerpt = make_excerpt(summary_text or body_text_for_excerpt(body_html), options.excerpt_words)
    image_url, image_alt = _image(fields.get("image"), url)
    if image_url is None:
        found = lead_image_from_body(body_html)
        if found is not None:
            image_url, image_alt = found.src, found.alt
    article = Article(
        title=title,
        url=url,
        guid=guid,
        published=published,
        source=source,
        excerpt=excerpt,
        body_html=body_html,
        image_url=image_url,
        image_alt=(clean_title(image_alt) or title) if image_url else "",
        canonical_url=canonical_url(url),
    )
    return Candidate(article=article, full_content=True)


def _markdown_fields(text: str) -> dict[str, Any]:
    try:
        meta, body, _ = split_front_matter(text)
    except FrontMatterError as exc:
        raise UnusableFile(str(exc)) from exc
    fields: dict[str, Any] = {k: meta.get(k) for k in ("title", "date", "url", "image", "summary")}
    for key, value in fields.items():
        # One value each (image: a URL or url/alt): a YAML alias "bomb" nests lists by
        # reference, cheap to load but gigabytes once turned into text.
        inner = value.values() if key == "image" and isinstance(value, dict) else [value]
        if not all(isinstance(v, _SCALARS) for v in inner):
            raise UnusableFile(
                f"the front matter key {key!r} must be a single value, not a list or mapping"
                + (" (or url and alt)" if key == "image" else "")
            )
    lines = body.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None:
        heading = _H1.match(lines[first].strip())
        if heading:
            heading_text = clean_title(heading.group(1))
            if not fields["title"]:
                fields["title"] = heading_text
            if clean_title(str(fields["title"])) == heading_text:
                del lines[first]
    source = "\n".join(lines)
    check_size(source, "Markdown")  # raw HTML passes through Markdown: bound it before, too
    if _TOO_DEEP_MARKDOWN.search(source):
        raise UnusableFile("its Markdown nests lists or quotes more than a hundred levels deep")
    try:
        fields["body_html"] = markdown.markdown(
            source, extensions=["extra", "sane_lists"], output_format="html"
        )
    except RecursionError as exc:
        raise UnusableFile("its Markdown nests too deeply to read") from exc
    return fields


def _text_fields(text: str) -> dict[str, Any]:
    lines = text.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise UnusableFile("the file is empty")
    fields: dict[str, Any] = {"title": lines[first]}
    rest = lines[first + 1 :]
    # Optional "URL:", "Date:", "Image:" lines right after the title (blank lines allowed).
    index = 0
    while index < len(rest):
        line = rest[index].strip()
        if not line:
            index += 1
            continue
        meta = _TEXT_META.match(line)
        if meta is None or meta.group(1).lower() in fields:
            break
        key, value = meta.group(1).lower(), meta.group(2).strip()
        valid = parse_date(value) is not None if key == "date" else is_http_url(value)
        if not valid:
            break  # ordinary body text that happens to start with "Date:" or "Image:"
        fields[key] = value
        index += 1
    fields["body_html"] = plain_text_to_html(rest[index:])
    return fields


def _image(value: Any, base: str) -> tuple[str | None, str]:
    if isinstance(value, dict):
        url = value.get("url") or value.get("src") or ""
        return safe_image_url(str(url), base), str(value.get("alt") or "")
    if isinstance(value, str):
        return safe_image_url(value, base), ""
    return None, ""


def _file_date(path: Path, value: Any, options: CollectOptions, warn: Any) -> datetime:
    if value not in (None, ""):
        parsed = parse_date(value)
        if parsed is not None:
            return parsed
        warn(f"date {value!r} is not a date this tool understands (use 2026-11-18 or ISO 8601)")
    named = _NAME_DATE.match(path.name)
    if named:
        try:
            year, month, day = (int(part) for part in named.groups())
            return datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            pass
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    if options.now is not None and modified > options.now:
        return options.now
    return modified


def parse_date(value: Any) -> datetime | None:
    """A front matter or ``Date:`` value as tz-aware UTC, or None when it is not a date."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0), tzinfo=UTC)
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            try:
                moment = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = moment.replace(tzinfo=UTC)
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
