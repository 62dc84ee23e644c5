"""Jinja2 rendering and premailer CSS inlining: the only module that imports either.

An issue is rendered once per persona (non-donor, recent donor, lapsed donor) and language
(DISPATCH_LANGUAGES); each HTML body is inlined once. Per-recipient parts stay as
``models.PLACEHOLDERS`` for the send to fill in by string replacement, so no template render or
CSS inlining happens per recipient. Fixed strings are translated through Jinja's i18n extension
with the catalogs of ``render.i18n``: one Jinja environment per language, made once.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jinja2
from premailer import Premailer

from dispatch.errors import RenderError
from dispatch.models import (
    PLACEHOLDERS,
    Article,
    CampaignProgress,
    Issue,
    Persona,
    RenderedVariant,
)
from dispatch.money import format_money
from dispatch.render.i18n import (
    LANGUAGE_MARK,
    N_,
    day_date,
    format_number,
    language_list,
    locale_of,
    long_date,
    normalize_tag,
    pick_language,
    text_direction,
    translations,
)

#: Where the donation appeal goes in a digest: after this many articles (or at the end).
APPEAL_AFTER = 2


@dataclass(frozen=True)
class Outlet:
    """What the templates say about the outlet itself."""

    name: str
    url: str = ""
    postal_address: str = ""
    lang: str = "en"
    #: The donation link lets a reader choose a monthly gift (the web service's donation page),
    #: so a recent one-time donor is invited to give monthly rather than again (issue 11).
    monthly: bool = True


@dataclass(frozen=True)
class AppealCopy:
    """The standard appeal's wording (DISPATCH_APPEAL_*): the outlet's own claims, not ours."""

    headline: str = N_("Support our reporting")
    text: str = N_(
        "If this newsletter is useful to you, please consider a gift. Every contribution,"
        " large or small, helps pay for the reporting in it."
    )
    button: str = N_("Donate now")

    def translated(self, gettext: Callable[[str], str]) -> AppealCopy:
        """The default wording in a reader's language; an outlet's own wording is looked up in
        its catalog (DISPATCH_LOCALE_DIR) and otherwise kept as written."""
        return AppealCopy(gettext(self.headline), gettext(self.text), gettext(self.button))


@dataclass(frozen=True)
class Links:
    """The links of one copy: placeholders when rendering for the send, real URLs in previews."""

    donate: str = PLACEHOLDERS["DONATE_URL"]
    unsubscribe: str = PLACEHOLDERS["UNSUBSCRIBE_URL"]
    archive: str = ""
    manage: str = PLACEHOLDERS["MANAGE_URL"]  # current supporters' and failing cards' copies


def _wrap(value: str, width: int = 72) -> str:
    return "\n".join(
        textwrap.fill(line, width=width, break_long_words=False, break_on_hyphens=False)
        for line in str(value).splitlines()
    )


def variant_name(persona: str, lang: str, default: str) -> str:
    """A variant's name: "non_donor" in the default language, "non_donor@de" in another."""
    if normalize_tag(lang) == normalize_tag(default):
        return persona
    return f"{persona}{LANGUAGE_MARK}{lang}"


def _money_filter(lang: str) -> Callable[[int, str], str]:
    def money(minor_units: int, currency: str) -> str:
        """Amounts in emails and pages: "$5,000", "$12.50", in the outlet's language."""
        return format_money(int(minor_units), currency, locale=lang, whole=True)

    return money


class Renderer:
    """Renders issues and other emails from a templates folder over the bundled defaults, in the
    outlet's language and the other languages it offers."""

    def __init__(
        self,
        templates_dir: Path,
        outlet: Outlet,
        defaults_dir: Path | None = None,
        appeal: AppealCopy | None = None,
        *,
        languages: Sequence[str] = (),
        locale_dir: Path | None = None,
    ):
        search = [str(templates_dir)]
        if defaults_dir is not None and defaults_dir != templates_dir:
            search.append(str(defaults_dir))
        self._loader = jinja2.FileSystemLoader(search)
        self.outlet = outlet
        self.appeal = appeal or AppealCopy()
        #: The outlet's languages, its default (DISPATCH_LANGUAGE) first.
        self.languages = language_list(outlet.lang, languages)
        self.locale_dir = locale_dir
        self._envs: dict[str, jinja2.Environment] = {}
        self.env = self._env(outlet.lang)

    def _env(self, lang: str) -> jinja2.Environment:
        """The Jinja environment of one language (made once: templates compile once each)."""
        env = self._envs.get(lang)
        if env is not None:
            return env
        env = jinja2.Environment(
            loader=self._loader,
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=False,
            lstrip_blocks=False,
            keep_trailing_newline=True,
            extensions=["jinja2.ext.i18n"],
        )
        catalog = translations(lang, self.locale_dir)
        env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
        env.filters["longdate"] = lambda value: long_date(value, lang)
        env.filters["wrap"] = _wrap
        env.filters["day"] = lambda value: day_date(value, lang)
        env.filters["money"] = _money_filter(lang)
        env.filters["number"] = lambda value: format_number(value, lang)
        env.filters["t"] = catalog.gettext  # a fixed string chosen at run time (web_strings)
        env.globals["appeal_copy"] = self.appeal.translated(catalog.gettext)
        env.globals["outlet"] = replace(self.outlet, lang=lang)
        env.globals["text_dir"] = text_direction(lang)
        env.globals["languages"] = self._language_choices()
        self._envs[lang] = env
        return env

    def _language_choices(self) -> list[tuple[str, str]]:
        """(tag, name in that language) of each outlet language, for the signup form's
        choice: "Deutsch", "français", "العربية"."""
        return [(t, locale_of(t).get_display_name(locale_of(t)) or t) for t in self.languages]

    def language_for(self, tag: str | None) -> str:
        """The outlet language a reader's language picks (``pick_language``)."""
        return pick_language(tag, self.languages)

    def gettext(self, message: str, lang: str | None = None) -> str:
        """A fixed string for Python code (page titles, subjects) in a language."""
        return str(translations(self.language_for(lang), self.locale_dir).gettext(message))

    # -- generic -------------------------------------------------------------------------

    def render_template(
        self, name: str, context: Mapping[str, Any], lang: str | None = None
    ) -> str:
        """Render one template in ``lang`` (a reader's language; the outlet's by default)."""
        env = self._env(self.language_for(lang))
        try:
            template = env.get_template(name)
            return template.render(context)
        except jinja2.TemplateNotFound as exc:
            raise RenderError(f"The template {exc.name} was not found") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(
                f"The template {exc.filename or exc.name} has a syntax error on line {exc.lineno}:"
                f" {exc.message}"
            ) from exc
        except jinja2.UndefinedError as exc:
            raise RenderError(f"The template {name} uses an unknown value: {exc.message}") from exc

    def render_email(
        self, name: str, context: Mapping[str, Any], lang: str | None = None
    ) -> tuple[str, str]:
        """Render ``name.html`` (CSS inlined) and ``name.txt`` with the same context."""
        html = inline_css(self.render_template(f"{name}.html", context, lang))
        text = tidy_text(self.render_template(f"{name}.txt", context, lang))
        return html, text

    # -- digests -------------------------------------------------------------------------

    def render_issue(
        self,
        issue: Issue,
        *,
        personas: Iterable[str] = tuple(Persona),
        campaign: CampaignProgress | None = None,
        links: Links | None = None,
        greeting: str = PLACEHOLDERS["GREETING"],
        languages: Sequence[str] | None = None,
        texts: Callable[[str], tuple[str, str]] | None = None,
    ) -> list[RenderedVariant]:
        """One finished variant per persona and language (all of the outlet's unless given),
        placeholders left in unless given real values. The default language's variants are
        named by persona alone, the others "persona@lang" (``variant_name``). ``texts(lang)``
        gives a language's (subject, preheader) when they differ by language."""
        context = {
            "campaign": campaign,
            "links": links or Links(),
            "greeting": greeting,
            "appeal_after": APPEAL_AFTER,
        }
        variants = []
        personas = tuple(personas)
        for lang in self.languages if languages is None else languages:
            subject, preheader = texts(lang) if texts else (issue.subject, issue.preheader)
            view = _IssueView(issue, lang, self.gettext)
            view.subject, view.preheader = subject, preheader
            own = {**context, "issue": view, "subject": subject, "preheader": preheader}
            base = links or Links()
            if base.archive and lang != self.outlet.lang:  # the archive page in this language
                own["links"] = replace(base, archive=f"{base.archive}?lang={lang}")
            for persona in personas:
                html, text = self.render_email("digest", {**own, "persona": str(persona)}, lang)
                name = variant_name(str(persona), lang, self.outlet.lang)
                variants.append(RenderedVariant(name, subject, html, text))
        return variants


class _IssueView:
    """What the digest templates see of an issue."""

    def __init__(self, issue: Issue, lang: str, gettext: Callable[[str, str], str]) -> None:
        self.id = issue.id
        self.subject = issue.subject
        self.preheader = issue.preheader
        self.note = issue.note.strip()
        self.note_paragraphs = [p.strip() for p in self.note.split("\n\n") if p.strip()]
        self.articles: Sequence[Article] = issue.articles
        end = issue.window_end or issue.created_at
        # An id such as 2026-W48 inside right-to-left words is isolated (FSI ... PDI), else
        # the bidi algorithm shows it as W48-2026.
        isolate = ("\u2068", "\u2069") if text_direction(lang) == "rtl" else ("", "")
        self.dateline = gettext(N_("Issue %(id)s · %(date)s"), lang) % {
            "id": isolate[0] + issue.id + isolate[1],
            "date": long_date(end, lang),
        }


_premailer_log = logging.getLogger("dispatch.render.premailer")
_premailer_log.addHandler(logging.NullHandler())
_premailer_log.propagate = False


_STYLE_BLOCK = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.IGNORECASE | re.DOTALL)
_CSS_IMPORT = re.compile(r"@import\s[^;]*;?", re.IGNORECASE)


def _strip_css_imports(html: str) -> str:
    """cssutils fetches @import URLs even with premailer's allow_network=False: drop them."""
    return _STYLE_BLOCK.sub(
        lambda m: m.group(1) + _CSS_IMPORT.sub("", m.group(2)) + m.group(3), html
    )


def inline_css(html: str) -> str:
    """Move CSS into style attributes; media queries stay in <style>. Never touches the network.

    Width and height attributes are left as the template wrote them (Outlook reads those).
    """
    try:
        inlined: str = Premailer(
            _strip_css_imports(html),
            base_url=None,
            allow_network=False,
            allow_loading_external_files=False,
            disable_validation=True,
            disable_basic_attributes=["width", "height"],
            strip_important=False,
            keep_style_tags=False,
            remove_classes=False,
            cssutils_logging_handler=logging.NullHandler(),
            cssutils_logging_level=logging.CRITICAL,
        ).transform()
    except Exception as exc:  # premailer raises bare lxml/cssutils errors
        raise RenderError(f"Inlining the CSS failed: {exc}") from exc
    return inlined


def tidy_text(text: str) -> str:
    """Collapse the blank-line runs that template logic leaves; end with one newline."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    while out and not out[0]:
        out.pop(0)
    return "\n".join(out).rstrip() + "\n"
