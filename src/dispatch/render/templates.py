"""Jinja2 rendering and premailer CSS inlining: the only module that imports either.

An issue is rendered once per persona (non-donor, recent donor, lapsed donor); each HTML body is
inlined once. Per-recipient parts stay as ``models.PLACEHOLDERS`` for the send to fill in by
string replacement, so no template render or CSS inlining happens per recipient.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
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

#: Where the donation appeal goes in a digest: after this many articles (or at the end).
APPEAL_AFTER = 2


@dataclass(frozen=True)
class Outlet:
    """What the templates say about the outlet itself."""

    name: str
    url: str = ""
    postal_address: str = ""
    lang: str = "en"


@dataclass(frozen=True)
class AppealCopy:
    """The standard appeal's wording (DISPATCH_APPEAL_*): the outlet's own claims, not ours."""

    headline: str = "Support our reporting"
    text: str = (
        "If this newsletter is useful to you, please consider a gift. Every contribution,"
        " large or small, helps pay for the reporting in it."
    )
    button: str = "Donate now"


@dataclass(frozen=True)
class Links:
    """The links of one copy: placeholders when rendering for the send, real URLs in previews."""

    donate: str = PLACEHOLDERS["DONATE_URL"]
    unsubscribe: str = PLACEHOLDERS["UNSUBSCRIBE_URL"]
    archive: str = ""


def _longdate(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{value:%A} {value.day} {value:%B %Y}"


def _day(value: str | date | None) -> str:
    """An ISO date (a campaign's end) as readers write it: 31 December 2026."""
    if not value:
        return ""
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day.day} {day:%B %Y}"


def _wrap(value: str, width: int = 72) -> str:
    return "\n".join(
        textwrap.fill(line, width=width, break_long_words=False, break_on_hyphens=False)
        for line in str(value).splitlines()
    )


def _money_filter(lang: str) -> Callable[[int, str], str]:
    def money(minor_units: int, currency: str) -> str:
        """Amounts in emails and pages: "$5,000", "$12.50", in the outlet's language."""
        return format_money(int(minor_units), currency, locale=lang, whole=True)

    return money


class Renderer:
    """Renders issues and other emails from a templates folder over the bundled defaults."""

    def __init__(
        self,
        templates_dir: Path,
        outlet: Outlet,
        defaults_dir: Path | None = None,
        appeal: AppealCopy | None = None,
    ):
        search = [str(templates_dir)]
        if defaults_dir is not None and defaults_dir != templates_dir:
            search.append(str(defaults_dir))
        self.outlet = outlet
        self.appeal = appeal or AppealCopy()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search),
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=False,
            lstrip_blocks=False,
            keep_trailing_newline=True,
        )
        self.env.filters["longdate"] = _longdate
        self.env.filters["wrap"] = _wrap
        self.env.filters["day"] = _day
        self.env.filters["money"] = _money_filter(outlet.lang)

    # -- generic -------------------------------------------------------------------------

    def render_template(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            template = self.env.get_template(name)
            return template.render({"outlet": self.outlet, "appeal_copy": self.appeal, **context})
        except jinja2.TemplateNotFound as exc:
            raise RenderError(f"The template {exc.name} was not found") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(
                f"The template {exc.filename or exc.name} has a syntax error on line {exc.lineno}:"
                f" {exc.message}"
            ) from exc
        except jinja2.UndefinedError as exc:
            raise RenderError(f"The template {name} uses an unknown value: {exc.message}") from exc

    def render_email(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """Render ``name.html`` (CSS inlined) and ``name.txt`` with the same context."""
        html = inline_css(self.render_template(f"{name}.html", context))
        text = tidy_text(self.render_template(f"{name}.txt", context))
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
    ) -> list[RenderedVariant]:
        """One finished variant per persona, placeholders left in unless given real values."""
        context = {
            "issue": _IssueView(issue),
            "subject": issue.subject,
            "preheader": issue.preheader,
            "campaign": campaign,
            "links": links or Links(),
            "greeting": greeting,
            "appeal_after": APPEAL_AFTER,
        }
        variants = []
        for persona in personas:
            html, text = self.render_email("digest", {**context, "persona": str(persona)})
            variants.append(RenderedVariant(str(persona), issue.subject, html, text))
        return variants


class _IssueView:
    """What the digest templates see of an issue."""

    def __init__(self, issue: Issue) -> None:
        self.id = issue.id
        self.subject = issue.subject
        self.preheader = issue.preheader
        self.note = issue.note.strip()
        self.note_paragraphs = [p.strip() for p in self.note.split("\n\n") if p.strip()]
        self.articles: Sequence[Article] = issue.articles
        end = issue.window_end or issue.created_at
        self.dateline = f"Issue {issue.id} · {_longdate(end)}"


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
        return Premailer(
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
