"""Mail that scores clean and reads well: every kind of mail (the digest for each reader kind,
appeals, thank-yous, the signup confirmation) built by the real code, then scored by Debian's
SpamAssassin (local tests only) and read for structure and wording.

The builders here are shared with tests/test_mail_quality_links.py and _browser.py.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

import dkim
import pytest

from dispatch.jobs.appeals import THANKS_VARIANT, _render_thanks, render_appeal
from dispatch.jobs.messages import message_config
from dispatch.jobs.signup import already_subscribed_message, confirmation_message
from dispatch.mailer.dkim import DkimSigner, generate_key
from dispatch.models import Article, Issue, Persona
from dispatch.render.message import MessageFactory, Recipient
from dispatch.render.settings import renderer_from, send_links
from dispatch.render.templates import AppealCopy
from dispatch.store import campaigns as campaign_store
from tests.conftest import skip_or_fail
from tests.plugins.web import PAYMENT_LINK, web_env

READER = "o'brien@example.org"
READER_NAME = "Siobhán O'Brien"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
#: Rules that fire only because a built file never crossed a relay, or on the reader's own
#: address (an apostrophe in o'brien@...): nothing the templates can change.
IGNORED_RULES = {"NO_RECEIVED", "NO_RELAYS", "APOSTROPHE_TOCC"}
MAX_SCORE = 0.5


def direct_env(**extra: str) -> dict[str, str]:
    """Settings without the web service: donation links go straight to Stripe."""
    env = web_env(**extra)
    env.pop("DISPATCH_PUBLIC_URL")
    return env


def sample_issue(issue_id: str = "2026-W48") -> Issue:
    published = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    articles = (
        Article(
            title="Council passes a budget with a hole in it",
            guid="a1",
            url="https://riverside-ledger.org/2026/11/budget",
            published=published,
            source="test",
            excerpt="The council voted 7 to 4 for a budget that leaves the library fund short.",
            image_url="https://riverside-ledger.org/img/hall.jpg",
            image_alt="The council chamber during the vote",
        ),
        Article(
            title="Flood defences: what the gauge said",
            guid="a2",
            url="https://riverside-ledger.org/2026/11/flood",
            published=published,
            source="test",
            excerpt="The river rose 1.2 metres overnight.",
        ),
        Article(
            title="Letters: the bridge, the bus and the bakery",
            guid="a3",
            url="",
            published=published,
            source="test",
            excerpt="Readers wrote in about the week's news.",
        ),  # a story without a link
    )
    return Issue(
        id=issue_id,
        kind="digest",
        status="draft",
        subject="The Ledger: budget and floods",
        preheader="Also: the river gauge",
        note="Good morning.\n\nA short note from the editor.",
        created_at=NOW,
        window_end=NOW,
        articles=articles,
    )


@dataclass
class Copy:
    """One reader's copy of one kind of mail."""

    token: str = "tok_quality"
    unsub_token: str = "unsub_quality"
    email: str = READER
    name: str = READER_NAME

    def recipient(self, key: str) -> Recipient:
        return Recipient(
            email=self.email,
            name=self.name,
            token=self.token,
            unsub_token=self.unsub_token,
            key=key,
        )


def start_campaign(db: Any) -> None:
    """A campaign that has raised nothing yet (the wording readers see at its start)."""
    campaign_store.create_campaign(
        db,
        name="Winter fund",
        goal_minor=500_000,
        currency="usd",
        starts_on=date(2026, 11, 1),
        ends_on=date(2026, 12, 31),
    )


def build_kinds(
    db: Any,
    settings: Any,
    copy: Copy | None = None,
    kinds: tuple[str, ...] | None = None,
    issue_id: str = "2026-W48",
    confirm_url: str = "",
) -> dict[str, bytes]:
    """Every kind of mail for one reader, keyed 'digest/<persona>', 'appeal/<persona>',
    'thanks', 'confirm' and 'already_subscribed' (the signup's two only where the web service
    is configured)."""
    copy = copy or Copy()
    renderer = renderer_from(settings)
    config = message_config(db, settings)
    out: dict[str, bytes] = {}
    campaign = campaign_store.active_progress(db, NOW)
    issue = sample_issue(issue_id)
    digest = renderer.render_issue(issue, campaign=campaign, links=send_links(settings, issue.id))
    factory = MessageFactory(issue.id, {v.persona: v for v in digest}, config)
    for persona in Persona:
        out[f"digest/{persona.value}"] = factory.build(persona.value, copy.recipient("d"))
    appeal = render_appeal(
        db,
        settings,
        "appeal-2026-11-30-all",
        "Will you support us?",
        "Winter is when our budget runs thin.",
        "A word from the editor",
        NOW,
    )
    factory = MessageFactory("appeal-2026-11-30-all", {v.persona: v for v in appeal}, config)
    for persona in Persona:
        out[f"appeal/{persona.value}"] = factory.build(persona.value, copy.recipient("a"))
    gift = {
        "issue_id": issue.id,
        "issue_subject": issue.subject,
        "amount_minor": 2500,
        "currency": "usd",
        "checkout_mode": "payment",
    }
    thanks = _render_thanks(renderer, settings, "thanks-1", gift, NOW, db)
    factory = MessageFactory("thanks-1", {THANKS_VARIANT: thanks}, config)
    out["thanks"] = factory.build(THANKS_VARIANT, copy.recipient("t"))
    if settings.public_url:
        url = confirm_url or f"{settings.public_url.rstrip('/')}/confirm/" + "c" * 43
        out["confirm"] = confirmation_message(db, settings, renderer, copy.email, url, 48)
        out["already_subscribed"] = already_subscribed_message(db, settings, renderer, copy.email)
    return {k: v for k, v in out.items() if kinds is None or k in kinds}


def html_of(message: bytes) -> str:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    return parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]


def text_of(message: bytes) -> str:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    return parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]


# -- SpamAssassin ------------------------------------------------------------------------------

_RULE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s", re.MULTILINE)


def spam_rules(message: bytes) -> dict[str, float]:
    """The rules SpamAssassin's local tests (-L: no network) fire on a message, with points."""
    if shutil.which("spamassassin") is None:
        skip_or_fail("Debian's spamassassin is not installed (apt-get install spamassassin)")
    run = subprocess.run(
        ["spamassassin", "-t", "-L"], input=message, capture_output=True, timeout=120, check=False
    )
    report = run.stdout.decode("utf-8", "replace")
    _, sep, table = report.partition("Content analysis details:")
    assert sep, f"spamassassin gave no report: {run.stderr.decode(errors='replace')[-500:]}"
    table = table.split("\n---- ", 1)[-1]
    return {name: float(points) for points, name in _RULE_LINE.findall(table)}


@pytest.fixture
def web_settings(make_settings, db):
    start_campaign(db)
    return make_settings(**web_env("https://riverside-ledger.org"))


@pytest.fixture
def direct_settings(make_settings, db):
    start_campaign(db)
    return make_settings(**direct_env())


DIRECT_KINDS = [f"digest/{p.value}" for p in Persona] + [f"appeal/{p.value}" for p in Persona]
DIRECT_KINDS += ["thanks"]
WEB_KINDS = ["digest/non_donor", "appeal/non_donor", "thanks", "confirm", "already_subscribed"]


def _assert_scores_clean(message: bytes, kind: str) -> None:
    rules = spam_rules(message)
    counted = {k: v for k, v in rules.items() if k not in IGNORED_RULES}
    assert sum(counted.values()) <= MAX_SCORE, f"{kind} scores {counted}"


@pytest.mark.parametrize("kind", DIRECT_KINDS)
def test_every_kind_scores_clean_without_the_web_service(db, direct_settings, kind):
    message = build_kinds(db, direct_settings, kinds=(kind,))[kind]
    if kind != "thanks":
        assert PAYMENT_LINK in html_of(message)  # the direct Stripe link is in there
    _assert_scores_clean(message, kind)


@pytest.mark.parametrize("kind", [*WEB_KINDS, "digest/supporter", "digest/card_failing"])
def test_every_kind_scores_clean_with_the_web_service(db, web_settings, kind):
    _assert_scores_clean(build_kinds(db, web_settings, kinds=(kind,))[kind], kind)


def test_the_hidden_preview_text_has_no_colour_of_its_own(db, web_settings):
    for kind, message in build_kinds(db, web_settings).items():
        (style,) = re.findall(r'<div class="preheader" style="([^"]*)"', html_of(message))
        assert "color" not in style.replace("background-color", ""), kind
        assert "display:none" in style, kind


def test_direct_links_leave_the_address_out_unless_asked(db, make_settings):
    """The address in a link of the mail itself costs +1.0 (GB_CUSTOM_HTM_URI); the web
    service's redirect prefills it without that (tests/test_web.py)."""
    kind = "appeal/non_donor"
    message = build_kinds(db, make_settings(**direct_env()), kinds=(kind,))[kind]
    assert "client_reference_id=tok_quality" in text_of(message)
    assert "prefilled_email" not in text_of(message) + html_of(message)
    opted_in = make_settings(**direct_env(DISPATCH_PREFILL_EMAIL_IN_LINK="true"))
    message = build_kinds(db, opted_in, kinds=(kind,))[kind]
    assert "&prefilled_email=o%27brien%40example.org" in text_of(message)


# -- headers: Date and DKIM --------------------------------------------------------------------


def test_date_header_uses_numeric_zone(db, web_settings):
    for kind, message in build_kinds(db, web_settings).items():
        parsed = email.message_from_bytes(message)
        assert re.fullmatch(r"\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000", parsed["Date"]), (
            kind
        )


def test_the_signup_confirmation_is_dkim_signed(db, make_settings, tmp_path):
    """DNS is the one part nothing local stands in for: dkimpy's verify gets the key record
    from a dnsfunc."""
    pem = generate_key("rsa", 2048)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(pem)
    key_file.chmod(0o600)
    settings = make_settings(
        **web_env(
            "https://riverside-ledger.org",
            DISPATCH_DKIM_DOMAIN="riverside-ledger.org",
            DISPATCH_DKIM_SELECTOR="news",
            DISPATCH_DKIM_KEY_FILE=str(key_file),
        )
    )
    record = DkimSigner("riverside-ledger.org", "news", pem).dns_record().encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"news._domainkey.riverside-ledger.org."
        return record

    signup_mail = build_kinds(db, settings, kinds=("confirm", "already_subscribed"))
    assert len(signup_mail) == 2
    for message in signup_mail.values():
        assert message.startswith(b"DKIM-Signature:")
        assert dkim.verify(message, dnsfunc=dnsfunc)


# -- wording -----------------------------------------------------------------------------------


def test_a_campaign_with_nothing_raised_reads_as_a_beginning(db, web_settings):
    for kind, message in build_kinds(db, web_settings).items():
        if kind in ("confirm", "already_subscribed") or kind.endswith("/supporter"):
            continue  # a current supporter is never asked, so never shown the campaign
        for body in (html_of(message), text_of(message)):
            assert "from 0 readers" not in body, kind
            assert "(0%)" not in body and "$0.00" not in body and "0.00 USD" not in body, kind
            assert "Winter fund" in body, kind
    digest = text_of(build_kinds(db, web_settings, kinds=("digest/non_donor",))["digest/non_donor"])
    assert "Winter fund has just begun" in " ".join(digest.split())
    assert "December 31, 2026" in " ".join(digest.split())  # Babel's en: CLDR's long date


def test_the_appeal_says_what_the_outlet_configures(db, make_settings):
    defaults = build_kinds(db, make_settings(**direct_env()), kinds=("appeal/non_donor",))
    body = html_of(defaults["appeal/non_donor"])
    assert "No owner" not in body and "no advertiser" not in body
    assert AppealCopy().headline in body and AppealCopy().button in body
    own = make_settings(
        **direct_env(
            DISPATCH_APPEAL_HEADLINE="Keep the Ledger <free>",
            DISPATCH_APPEAL_TEXT="We answer to readers only.",
            DISPATCH_APPEAL_BUTTON="Chip in",
        )
    )
    for kind, message in build_kinds(
        db, own, kinds=("appeal/non_donor", "digest/non_donor")
    ).items():
        html, text = html_of(message), text_of(message)
        assert "Keep the Ledger &lt;free&gt;</h2>" in html, kind
        assert "We answer to readers only." in html and ">Chip in</a>" in html, kind
        assert "KEEP THE LEDGER <FREE>" in text and "We answer to readers only." in text, kind


def test_settings_defaults_match_the_renderers_appeal():
    from dispatch.config import Settings

    settings = Settings()
    assert (
        AppealCopy(settings.appeal_headline, settings.appeal_text, settings.appeal_button)
        == AppealCopy()
    )


# -- structure for screen readers --------------------------------------------------------------


class _Outline(HTMLParser):
    """Headings and links (with their text) of an HTML body."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.links: list[tuple[str, str]] = []
        self._open: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "h2", "h3", "h4", "a"):
            self._open.append((tag, dict(attrs).get("href") or "", []))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            name, href, text = self._open.pop()
            value = " ".join("".join(text).split())
            if self._open:
                self._open[-1][2].append(value)
            if name == "a":
                self.links.append((href, value))
            else:
                self.headings.append((name, value))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


def outline(html: str) -> _Outline:
    parser = _Outline()
    parser.feed(html)
    return parser


@pytest.mark.parametrize(
    "kind",
    WEB_KINDS
    + ["digest/recent_donor", "appeal/lapsed_donor", "digest/supporter", "digest/card_failing"],
)
def test_one_h1_and_headings_for_sections(db, web_settings, kind):
    found = outline(html_of(build_kinds(db, web_settings, kinds=(kind,))[kind]))
    levels = [level for level, _ in found.headings]
    assert levels.count("h1") == 1 and levels[0] == "h1", found.headings
    assert found.headings[0][1] == "The Riverside Ledger"
    if kind.startswith(("digest", "appeal")):  # the appeal has a heading of its own
        appeal_titles = {
            "Support our reporting",
            "Thank you for standing with us",
            "Will you renew your support?",
            "Thank you for giving every month",
            "Your monthly gift needs a new card",
        }
        assert any(level == "h2" and text in appeal_titles for level, text in found.headings)
    if kind.startswith("digest"):
        stories = [text for level, text in found.headings if level == "h3"]
        assert stories == [a.title for a in sample_issue().articles]
        assert ("h2", "3 stories this week") in found.headings
    for level, text in found.headings:
        assert text, f"empty {level}"


def test_story_links_name_the_story(db, web_settings):
    found = outline(
        html_of(build_kinds(db, web_settings, kinds=("digest/non_donor",))["digest/non_donor"])
    )
    texts = [text for _, text in found.links]
    assert "Read the full story" not in texts
    for article in sample_issue().articles:
        to_story = [text for href, text in found.links if article.url and href == article.url]
        if article.url:
            assert to_story and all(article.title in text for text in to_story), to_story
    assert all(text for text in texts), found.links  # no link without a name
