"""collect_articles: every source read, one bad source never stopping the others."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dispatch.articles.clean import compile_patterns
from dispatch.articles.dedupe import merge_duplicates
from dispatch.articles.feeds import collect_feed
from dispatch.articles.local import ARTICLE_SUFFIXES, UnusableFile, collect_folder, read_article
from dispatch.articles.options import Candidate, CollectOptions, CollectResult, SourceWarning
from dispatch.errors import ConfigError

_DEFAULT_OPTIONS = CollectOptions()


def collect_articles(
    sources: Sequence[str], options: CollectOptions = _DEFAULT_OPTIONS
) -> CollectResult:
    """Articles of all ``sources`` merged, deduplicated and sorted newest first.

    A source is an http(s) feed URL, a feed file, a folder of local articles, or one local
    article file. A source that cannot be used gives a :class:`SourceWarning` and the others
    still count; nothing is raised for a bad source. No date window is applied here.
    Raises ConfigError only for a boilerplate pattern that is not a valid regular expression.
    """
    if isinstance(sources, str):  # one source passed bare, not a list of its characters
        sources = [sources]
    try:
        patterns = compile_patterns(options.boilerplate_patterns)
    except re.error as exc:
        raise ConfigError(
            f"DISPATCH_BOILERPLATE_PATTERNS has a pattern that is not a regular expression "
            f"({exc.msg} in {exc.pattern!r})",
            "Fix or remove that pattern; patterns are Python regular expressions.",
        ) from exc
    candidates: list[Candidate] = []
    warnings: list[SourceWarning] = []
    seen: set[str] = set()
    for raw in sources:
        source = raw.strip()
        if not source or source in seen:
            continue
        seen.add(source)
        found, problems = _collect_one(source, options, patterns)
        candidates.extend(found)
        warnings.extend(problems)
    ordered = [Candidate(c.article, c.full_content, order) for order, c in enumerate(candidates)]
    return CollectResult(articles=merge_duplicates(ordered), warnings=warnings)


def _collect_one(
    source: str, options: CollectOptions, patterns: tuple[re.Pattern[str], ...]
) -> tuple[list[Candidate], list[SourceWarning]]:
    scheme = urlsplit(source).scheme.lower() if "://" in source else ""
    if scheme in ("http", "https"):
        return collect_feed(source, options, patterns)
    if scheme == "file":
        path = Path(unquote(urlsplit(source).path))
    elif scheme:
        return [], [SourceWarning(source, f"{scheme}: sources are not supported (use http(s))")]
    else:
        path = Path(source).expanduser()
    if path.is_dir():
        return collect_folder(path, source, options, patterns)
    if path.is_file():
        if path.suffix.lower() in ARTICLE_SUFFIXES:
            return _single_article(path, source, options, patterns)
        return collect_feed(source, options, patterns, path=str(path))
    if path.exists():
        return [], [SourceWarning(source, "not a file or folder")]
    return [], [SourceWarning(source, "no such file or folder (and not an http(s) URL)")]


def _single_article(
    path: Path, source: str, options: CollectOptions, patterns: tuple[re.Pattern[str], ...]
) -> tuple[list[Candidate], list[SourceWarning]]:
    warnings: list[SourceWarning] = []
    guid = f"file:{path.resolve().parent.name}/{path.name}"
    try:
        return [read_article(path, guid, source, options, patterns, warnings)], warnings
    except UnusableFile as exc:
        return [], [*warnings, SourceWarning(source, f"{exc}; the file was skipped")]
