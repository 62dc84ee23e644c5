"""Languages: the gettext catalogs of the fixed words readers see, and how dates read.

The templates mark their fixed strings with Jinja's i18n extension (``{% trans %}``); the
catalogs live in ``dispatch/locale/<lang>/LC_MESSAGES/dispatch.po`` (compiled ``.mo`` next to
them, shipped in the package) and are managed with Babel (``pybabel extract / update /
compile``, see docs/DESIGN.md). An outlet's own catalogs (DISPATCH_LOCALE_DIR, same layout)
are merged over the shipped ones, so it can change any single string. Dates, numbers and
text direction come from Babel's CLDR data for the language tag.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.support import NullTranslations, Translations

from dispatch.errors import ConfigError
from dispatch.money import format_count, parse_language

#: The gettext domain of every catalog (shipped and an outlet's own).
DOMAIN = "dispatch"
#: The catalogs folder inside the package.
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
#: Languages whose catalogs ship with Dispatch (English is the source language).
SHIPPED = ("en", "es", "de", "fr", "ar")
#: The separator between persona and language in a variant's name: "non_donor@de". The
#: default language's variants keep the bare persona name.
LANGUAGE_MARK = "@"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention, extracted by pybabel
    """Marks a string for extraction; it is translated where it is shown."""
    return message


def locale_of(tag: str) -> Locale:
    """The Babel locale of a BCP 47 tag (``pt-BR``): raises InputError for an unknown tag."""
    return parse_language(tag)


def text_direction(tag: str) -> str:
    """Right to left ("rtl") for Arabic, Hebrew, Persian, Urdu..., else "ltr"."""
    return "rtl" if locale_of(tag).character_order == "right-to-left" else "ltr"


def normalize_tag(tag: str) -> str:
    """A language as written in settings and subscriber rows, compared case-insensitively:
    ``pt_BR`` and ``PT-br`` are both ``pt-br``."""
    return tag.strip().replace("_", "-").lower()


def pick_language(tag: str | None, languages: Sequence[str]) -> str:
    """The language of ``languages`` (the outlet's, default first) a reader's language picks:
    the same tag, compared case-insensitively (``pt_BR`` is ``pt-BR``), else the outlet's
    language a regional tag belongs to (``de-AT`` reads ``de``), else the default. A value that
    is not a tag ("German") picks the default: it is used as written, never guessed at."""
    if tag:
        wanted = normalize_tag(tag)
        for lang in languages:
            if normalize_tag(lang) == wanted:
                return lang
        for lang in languages:
            if wanted.startswith(normalize_tag(lang) + "-"):
                return lang
    return languages[0]


def language_list(default: str, extra: Iterable[str]) -> tuple[str, ...]:
    """DISPATCH_LANGUAGE first, then each other DISPATCH_LANGUAGES entry once, as written."""
    out = [default]
    seen = {normalize_tag(default)}
    for tag in extra:
        if tag.strip() and normalize_tag(tag) not in seen:
            seen.add(normalize_tag(tag))
            out.append(tag.strip())
    return tuple(out)


def _load(folder: Path, locale: Locale) -> NullTranslations:
    names = [str(locale)]
    if locale.territory:
        names.append(locale.language)
    return Translations.load(str(folder), names, DOMAIN)


@lru_cache(maxsize=64)
def translations(tag: str, outlet_dir: Path | None = None) -> gettext.NullTranslations:
    """The catalog for a language: the shipped one, with the outlet's own merged over it.

    A language without a catalog (shipped or the outlet's) reads the English source strings.
    """
    locale = locale_of(tag)
    shipped = _load(LOCALE_DIR, locale)
    if outlet_dir is None:
        return shipped
    if not outlet_dir.is_dir():
        raise ConfigError(
            f"DISPATCH_LOCALE_DIR points to {outlet_dir}, which is not a folder",
            "Point it at a folder holding <lang>/LC_MESSAGES/dispatch.mo, or unset it.",
        )
    own = _load(outlet_dir, locale)
    if not isinstance(own, Translations):
        return shipped
    if not isinstance(shipped, Translations):
        return own
    shipped.merge(own)  # a fresh object (loaded above): the outlet's strings win
    return shipped


def long_date(value: date | datetime | None, tag: str) -> str:
    """A date with its weekday as the language writes it: "Saturday, November 28, 2026",
    "Samstag, 28. November 2026", "sábado, 28 de noviembre de 2026"."""
    if value is None:
        return ""
    day = value.date() if isinstance(value, datetime) else value
    return format_date(day, format="full", locale=locale_of(tag))


def day_date(value: str | date | None, tag: str) -> str:
    """An ISO date (a campaign's end) without its weekday: "December 31, 2026"."""
    if not value:
        return ""
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if isinstance(day, datetime):
        day = day.date()
    return format_date(day, format="long", locale=locale_of(tag))


def format_number(value: int, tag: str) -> str:
    """A count as the language writes it: 1,234 in English, 1.234 in German (dispatch.money,
    the one module that writes numbers with Babel)."""
    return format_count(value, locale=tag)
