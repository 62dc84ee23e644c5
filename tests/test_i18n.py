"""Dispatch in the outlet's language (issue 14): complete catalogs, plural forms, dates, right to
left, per-language variants, an outlet's own catalog, and golden digests in German and Arabic."""

from __future__ import annotations

import email
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from email import policy
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po, write_po

from dispatch.config import Settings, default_templates_dir
from dispatch.errors import ConfigError
from dispatch.models import CampaignProgress, Persona
from dispatch.render.i18n import LOCALE_DIR, SHIPPED, long_date, text_direction, translations
from dispatch.render.message import MessageConfig, MessageFactory, Recipient
from dispatch.render.templates import Outlet, Renderer
from dispatch.render.web_strings import WEB_STRINGS
from tests.test_render import _compare_golden, fixed_issue

ROOT = Path(__file__).resolve().parent.parent


def _key(value):
    return tuple(value) if isinstance(value, list | tuple) else value


def _one_line(text: str) -> str:
    """Wrapped text as one line; no-break spaces (amounts, French punctuation) kept."""
    return re.sub(r" *\n *", " ", text)


def catalog(lang: str):
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "dispatch.po", "rb") as f:
        return read_po(f, locale=lang)


def renderer(lang: str = "en", languages: tuple[str, ...] = (), **kw) -> Renderer:
    outlet = Outlet("The Riverside Ledger", "https://ledger.example", "12 Quay Street", lang=lang)
    return Renderer(default_templates_dir(), outlet, languages=languages, **kw)


# -- the catalogs ------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", SHIPPED)
def test_every_message_has_a_translation(lang):
    cat = catalog(lang)
    missing = []
    for message in cat:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if len(strings) != (cat.num_plurals if message.pluralizable else 1):
            missing.append((message.id, "plural forms"))
        if not all(s.strip() for s in strings) or message.fuzzy:
            missing.append((message.id, "empty or fuzzy"))
    assert not missing, f"{lang}: {missing}"
    assert len([m for m in cat if m.id]) == len([m for m in catalog("en") if m.id])


@pytest.mark.parametrize("lang", SHIPPED)
def test_catalog_checks_pass_and_the_compiled_catalog_is_current(lang):
    cat = catalog(lang)
    problems = [(m.id, errors) for m, errors in cat.check() if errors]
    assert not problems, problems  # python-format placeholders agree with the msgid
    with open(LOCALE_DIR / lang / "LC_MESSAGES" / "dispatch.mo", "rb") as f:
        compiled = read_mo(f)

    def pairs(messages):
        return {_key(m.id): _key(m.string) for m in messages if m.id}

    po, mo = pairs(cat), pairs(compiled)
    assert po == mo, "run `pybabel compile -D dispatch -d src/dispatch/locale` (docs/DESIGN.md)"


def test_extraction_finds_no_string_missing_from_the_catalogs(tmp_path):
    """Every string the templates and the render code mark is in the catalogs (pybabel extract
    with the project's babel.cfg), and the catalogs hold nothing that is no longer used."""
    pot = tmp_path / "dispatch.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-o", str(pot), "--no-location", "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with open(pot, "rb") as f:
        extracted = {m.id for m in read_po(f) if m.id}
    assert len(extracted) > 90
    for lang in SHIPPED:
        known = {m.id for m in catalog(lang) if m.id}
        assert extracted - known == set(), f"{lang} lacks these (pybabel update, then translate)"
        assert known - extracted == set(), f"{lang} has strings no template uses"


def test_web_runtime_strings_are_marked():
    """The web service's error titles and messages are translated with the ``t`` filter, so
    each must be a marked string (render/web_strings.py)."""
    from dispatch.web import _MESSAGES

    assert set(_MESSAGES.values()) <= set(WEB_STRINGS)


# -- what the languages look like -------------------------------------------------------------


def test_dates_read_as_each_language_writes_them():
    day = date(2026, 11, 28)
    assert long_date(day, "en") == "Saturday, November 28, 2026"
    assert long_date(day, "de") == "Samstag, 28. November 2026"
    assert long_date(day, "es") == "sábado, 28 de noviembre de 2026"
    assert long_date(day, "fr") == "samedi 28 novembre 2026"
    assert long_date(day, "pt-BR") == "sábado, 28 de novembro de 2026"
    assert text_direction("ar") == "rtl" and text_direction("he") == "rtl"
    assert text_direction("de") == "ltr"


@pytest.mark.parametrize(
    ("lang", "counts"),
    [
        ("en", {1: "1 story this week", 2: "2 stories this week"}),
        ("de", {1: "Diese Woche: 1 Geschichte", 3: "Diese Woche: 3 Geschichten"}),
        ("fr", {1: "1 article cette semaine", 2: "2 articles cette semaine"}),
        ("es", {1: "1 historia esta semana", 2: "2 historias esta semana"}),
        (
            "ar",  # six forms: one, two, few (3-10), many (11-99), other (100...)
            {
                1: "قصة واحدة هذا الأسبوع",
                2: "قصتان هذا الأسبوع",
                3: "3 قصص هذا الأسبوع",
                11: "11 قصة هذا الأسبوع",
                100: "100 قصة هذا الأسبوع",
            },
        ),
    ],
)
def test_plural_forms(lang, counts):
    for count, expected in counts.items():
        text = translations(lang).ngettext(
            "%(count)s story this week", "%(count)s stories this week", count
        ) % {"count": count}
        assert text == expected, (lang, count)


def test_plural_in_a_rendered_digest():
    issue = fixed_issue()
    one = fixed_issue(articles=issue.articles[:1])
    r = renderer("de")
    [many] = r.render_issue(issue, personas=[Persona.NON_DONOR])
    [single] = r.render_issue(one, personas=[Persona.NON_DONOR])
    assert "Diese Woche: 3 Geschichten" in many.html
    assert "Diese Woche: 1 Geschichte<" in single.html


def test_campaign_readers_plural_and_money_in_the_language():
    campaign = CampaignProgress("Winterfonds", 500_000, "eur", 123_450, 1, "2026-12-31")
    [v] = renderer("de").render_issue(fixed_issue(), personas=["non_donor"], campaign=campaign)
    text = _one_line(v.text)
    assert "1.234,50\xa0€ von 5.000\xa0€" in text
    assert "1 Leserin oder Leser, noch bis zum 31. Dezember 2026" in text
    campaign = CampaignProgress("Winterfonds", 500_000, "eur", 123_450, 2, "2026-12-31")
    [v] = renderer("de").render_issue(fixed_issue(), personas=["non_donor"], campaign=campaign)
    assert "2 Leserinnen und Lesern" in _one_line(v.text)


# -- languages per reader ---------------------------------------------------------------------


def test_each_language_is_rendered_once_per_persona():
    r = renderer("en", ("de", "ar", "DE"))
    variants = r.render_issue(fixed_issue())
    names = [v.persona for v in variants]
    personas = [p.value for p in Persona]
    assert names == personas + [f"{p}@de" for p in personas] + [f"{p}@ar" for p in personas]
    by_name = {v.persona: v for v in variants}
    assert 'lang="de"' in by_name["non_donor@de"].html
    assert "Ausgabe 2026-W48 · Montag, 23. November 2026" in by_name["non_donor@de"].html
    # the articles stay as written
    assert "Councillors approved the riverside wall" in by_name["non_donor@ar"].html
    assert r.language_for("de_AT") == "de" and r.language_for("DE") == "de"
    assert r.language_for("German") == "en" and r.language_for("deu") == "en"
    assert r.language_for("") == "en" and r.language_for("xx") == "en"


def test_the_reader_copy_greets_in_its_language_and_falls_back_to_the_persona():
    r = renderer("en", ("de",))
    variants = {v.persona: v for v in r.render_issue(fixed_issue())}
    config = MessageConfig(from_name="Ledger", from_address="news@ledger.example",
                           payment_link="https://buy.stripe.com/test_x")  # fmt: skip
    factory = MessageFactory("2026-W48", variants, config)
    ada = Recipient(email="ada@example.org", name="Ada Lovelace", first_name="Ada", key="1")
    anon = Recipient(email="x@example.org", key="2")

    def text(variant: str, who: Recipient) -> str:
        msg = email.message_from_bytes(factory.build(variant, who), policy=policy.default)
        return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")

    assert text("lapsed_donor@de", ada).startswith("THE RIVERSIDE LEDGER\nAusgabe")
    assert "Hallo Ada," in text("lapsed_donor@de", ada)
    assert "Liebe Leserin, lieber Leser," in text("non_donor@de", anon)
    assert "Dear Ada," in text("lapsed_donor", ada)
    # a language the issue was not rendered in (the settings changed): the persona's variant
    assert "WILL YOU RENEW YOUR SUPPORT?" in text("lapsed_donor@fr", ada)


# -- settings and the outlet's own catalog ---------------------------------------------------


def test_languages_setting():
    s = Settings.from_mapping({"DISPATCH_LANGUAGE": "de", "DISPATCH_LANGUAGES": "en, de,fr"})
    assert s.language == "de" and s.languages == ("en", "de", "fr")
    with pytest.raises(ConfigError, match="DISPATCH_LANGUAGES lists 'xx-nope'"):
        Settings.from_mapping({"DISPATCH_LANGUAGES": "en,xx-nope"})


def test_an_outlet_catalog_overrides_single_strings(tmp_path):
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo

    own = Catalog(locale="de", domain="dispatch")
    own.add("Donate now", "Jetzt unterstützen")
    own.add("Support our reporting", "Machen Sie mit")
    folder = tmp_path / "locale" / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "dispatch.mo", "wb") as f:
        write_mo(f, own)
    with open(folder / "dispatch.po", "wb") as f:
        write_po(f, own)
    r = renderer("de", locale_dir=tmp_path / "locale")
    [v] = r.render_issue(fixed_issue(), personas=["non_donor"])
    assert "Jetzt unterstützen" in v.html and "Machen Sie mit" in v.html
    assert "Aus der Redaktion" in v.html  # the shipped strings are still there
    with pytest.raises(ConfigError, match="DISPATCH_LOCALE_DIR"):
        renderer("de", locale_dir=tmp_path / "nowhere")


def test_a_language_without_a_catalog_keeps_english_words_and_its_own_dates():
    [v] = renderer("pt-BR").render_issue(fixed_issue(), personas=["non_donor"])
    assert 'lang="pt-BR"' in v.html and "segunda-feira, 23 de novembro de 2026" in v.html
    assert "From the editor" in v.html


# -- right to left, and the golden digests in two more languages -----------------------------


def test_arabic_is_right_to_left():
    [v] = renderer("ar").render_issue(fixed_issue(), personas=["non_donor"])
    assert '<html lang="ar" dir="rtl"' in v.html
    assert '<body dir="rtl"' in v.html and 'class="container" dir="rtl"' in v.html
    assert "text-align:right" in v.html.replace(" ", "")


@pytest.mark.parametrize("lang", ["de", "ar"])
@pytest.mark.parametrize("persona", [Persona.NON_DONOR, Persona.LAPSED_DONOR])
def test_golden_digests_in_german_and_arabic(lang, persona):
    campaign = CampaignProgress("Winter fund", 500_000, "eur", 123_450, 41, "2026-12-31")
    [v] = renderer(lang).render_issue(fixed_issue(), personas=[persona], campaign=campaign)
    _compare_golden(f"digest_{persona}.{lang}.html", v.html)
    _compare_golden(f"digest_{persona}.{lang}.txt", v.text)


def test_web_pages_speak_the_language(make_settings):
    from dispatch.web import create_app
    from tests.plugins.web import web_env

    app = create_app(make_settings(**web_env(DISPATCH_LANGUAGE="fr")))
    client = app.test_client()
    page = client.get("/subscribe").get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in page and "Abonnez-vous à notre lettre" in page
    missing = client.get("/u/not-a-token").get_data(as_text=True)
    assert "Page introuvable" in missing and "Ce lien n’est pas valide." in missing
    app.extensions["dispatch"].close()


def test_english_pages_are_unchanged_in_wording(make_settings):
    from dispatch.web import create_app
    from tests.plugins.web import web_env

    app = create_app(make_settings(**web_env()))
    page = app.test_client().get("/subscribe").get_data(as_text=True)
    assert "Subscribe to our newsletter" in page and '<html lang="en" dir="ltr">' in page
    app.extensions["dispatch"].close()


# -- appeals and thank-yous -----------------------------------------------------------------


def test_an_appeal_is_rendered_in_each_language_with_its_default_subject(db, make_settings):
    from dispatch.jobs.appeals import render_appeal

    settings = make_settings(
        DISPATCH_OUTLET_NAME="The Riverside Ledger", DISPATCH_LANGUAGES="en,fr"
    )
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    subject = "Will you support The Riverside Ledger?"
    variants = {
        v.persona: v
        for v in render_appeal(db, settings, "appeal-x", subject, "Winter is hard.", "", now)
    }
    assert set(variants) == {f"{p}{s}" for p in Persona for s in ("", "@fr")}
    french = variants["lapsed_donor@fr"]
    assert french.subject == "Soutiendrez-vous The Riverside Ledger\xa0?"
    assert "30 novembre 2026" in french.html and "Renouveler mon soutien" in french.html
    assert "Winter is hard." in french.text  # the editor's message stays as written
    assert variants["non_donor"].subject == subject
    own = render_appeal(db, settings, "appeal-y", "Our own subject", "", "", now)
    assert {v.subject for v in own} == {"Our own subject"}


def test_a_thank_you_speaks_the_reader_language(db, make_settings):
    from dispatch.jobs.appeals import _render_thanks
    from dispatch.render.settings import renderer_from

    settings = make_settings(DISPATCH_OUTLET_NAME="Le Courrier", DISPATCH_LANGUAGES="fr,de")
    row = {"issue_id": "2026-W48", "issue_subject": "Die Flutmauer", "amount_minor": 2500,
           "currency": "eur", "checkout_mode": "subscription"}  # fmt: skip
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    renderer = renderer_from(settings)
    german = _render_thanks(renderer, settings, "thanks-1", row, now, db, "de")
    assert german.subject == "Danke, dass Sie Le Courrier unterstützen"
    assert "Vielen Dank für Ihre monatliche Spende über 25\xa0€." in _one_line(german.text)
    assert "„Die Flutmauer“ (2026-W48)" in german.text
    other = _render_thanks(renderer, settings, "thanks-1", row, now, db, "it")
    assert other.subject == "Thank you for supporting Le Courrier"  # DISPATCH_LANGUAGE: en


# -- the signup form's language --------------------------------------------------------------


def test_a_signup_in_another_language_is_mailed_and_kept_in_it(db, make_settings):
    from dispatch.jobs.signup import accept_signup, confirmation_message, mail_limits
    from dispatch.render.settings import renderer_from
    from dispatch.store import signups as signup_store
    from dispatch.store import subscribers as subs
    from tests.plugins.web import web_env

    settings = make_settings(
        **web_env(DISPATCH_LANGUAGES="en,de,ar", DISPATCH_SMTP_URL="smtp://127.0.0.1:2525")
    )
    assert accept_signup(settings, "Ana@Example.org", "Ana", "DE").language == "de"
    assert accept_signup(settings, "ana@example.org", "Ana", "fr").language == ""  # not offered
    signup = accept_signup(settings, "ana@example.org", "Ana", "de")
    data = confirmation_message(db, settings, renderer_from(settings), signup.address,
                                "https://x.test/confirm/t", 48, signup.language)  # fmt: skip
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg["Subject"] == "Bitte bestätigen Sie Ihr Abonnement von The Riverside Ledger"
    body = msg.get_body(("plain",)).get_content()
    assert "Der Link gilt 48 Stunden." in _one_line(body)
    now = datetime.now(UTC)
    pending = signup_store.NewConfirmation("h" * 64, "Ana", now, True, language="de")
    assert signup_store.reserve_signup_mail(db, signup.address, mail_limits(settings), now,
                                            pending) == "ok"  # fmt: skip
    assert subs.get_subscriber(db, "ana@example.org").language == "de"


def test_the_signup_form_offers_the_outlet_languages(make_web_app):
    page = make_web_app(DISPATCH_LANGUAGES="en,de,ar").test_client().get("/subscribe")
    html = page.get_data(as_text=True)
    assert '<option value="de" lang="de">Deutsch</option>' in html
    assert '<option value="en" lang="en" selected>English</option>' in html
    single = make_web_app().test_client().get("/subscribe").get_data(as_text=True)
    assert 'name="language"' not in single


def test_the_subject_and_preheader_dispatch_writes_follow_the_language(make_settings):
    from dataclasses import replace

    from dispatch.render.issue import _texts_by_language, default_preheader, default_subject

    settings = make_settings(DISPATCH_OUTLET_NAME="The Riverside Ledger", DISPATCH_LANGUAGES="fr")
    issue = fixed_issue()
    issue = replace(
        issue,
        subject=default_subject(settings.outlet_name, issue.articles),
        preheader=default_preheader(issue.articles),
    )
    texts = _texts_by_language(settings, issue)
    variants = {v.persona: v for v in renderer("en", ("fr",)).render_issue(issue, texts=texts)}
    french = variants["non_donor@fr"]
    assert french.subject == f"The Riverside Ledger\xa0: {issue.articles[0].title}"
    assert "Aussi\xa0: Café owners" in french.html
    assert variants["non_donor"].subject == issue.subject
    assert "Also: Café owners" in variants["non_donor"].html
    own = replace(issue, subject="Our flood special", preheader="Read this one")
    texts = _texts_by_language(settings, own)
    for v in renderer("en", ("fr",)).render_issue(own, texts=texts):
        assert v.subject == "Our flood special" and "Read this one" in v.html


def test_a_reader_signs_up_and_unsubscribes_in_their_language(make_web_app, smtp_server, db):
    from dispatch.store import subscribers as subs
    from tests.plugins.web import seed_sent_issue

    app = make_web_app(DISPATCH_SMTP_URL=smtp_server.url, DISPATCH_LANGUAGES="en,de")
    client = app.test_client()
    form = client.get("/subscribe").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    data = {"csrf_token": token, "email": "lena@example.org", "name": "Lena", "website": "",
            "language": "de"}  # fmt: skip
    page = client.post("/subscribe", data=data, buffered=True).get_data(as_text=True)
    assert "Sehen Sie in Ihr Postfach" in page and '<html lang="de"' in page
    app.extensions["dispatch"].outbox.join(timeout=30)
    [mail] = smtp_server.to("lena@example.org")
    assert mail.parsed()["Subject"].startswith("Bitte bestätigen Sie Ihr Abonnement")
    assert subs.get_subscriber(db, "lena@example.org").language == "de"
    html = mail.parsed().get_body(("html",)).get_content()
    link = re.search(r'href="https?://[^"/]+(/confirm/[A-Za-z0-9_-]+\?lang=de)"', html).group(1)
    confirm = client.get(link).get_data(as_text=True)
    assert "Bitte bestätigen Sie Ihr Abonnement" in confirm and "?lang=de" in confirm
    done = client.post(link).get_data(as_text=True)
    assert "Sie sind angemeldet" in done
    assert subs.get_subscriber(db, "lena@example.org").status.value == "active"

    settings = app.extensions["dispatch"].settings
    sent = seed_sent_issue(db, settings, [("ana@example.org", "Ana")], issue_id="2026-W40")
    with db.transaction() as conn:
        conn.execute("UPDATE subscribers SET language = 'de-AT' WHERE email = 'ana@example.org'")
    unsub = client.get(f"/u/{sent.readers['ana@example.org'].unsub_token}")
    assert "Vom Newsletter von The Riverside Ledger abmelden?" in unsub.get_data(as_text=True)


def test_the_donation_page_speaks_the_language_of_the_copy(make_web_app, stripe_env, ledger, db):
    env = {**stripe_env, "DISPATCH_DONATION_AMOUNTS": "5,10,25", "DISPATCH_CURRENCY": "eur",
           "DISPATCH_LANGUAGES": "en,de"}  # fmt: skip
    client = make_web_app(**env).test_client()
    german = ledger("2026-W47", "ana@example.test", name="Ana")
    english = ledger("2026-W47", "sam@example.test", name="Sam")
    with db.transaction() as conn:
        conn.execute("UPDATE deliveries SET variant = 'non_donor@de' WHERE token = ?", (german,))
    page = client.get(f"/d/{german}").get_data(as_text=True)
    assert '<html lang="de"' in page and "Wie oft?" in page and "10,00\xa0€" in page
    page = client.get(f"/d/{english}").get_data(as_text=True)
    assert '<html lang="en"' in page and "How often?" in page and "€10.00" in page


def test_the_archive_page_of_a_copy_is_in_its_language(make_web_app, db):
    from dispatch.store import issues as issue_store
    from tests.plugins.web import seed_sent_issue

    app = make_web_app(DISPATCH_LANGUAGES="en,de")
    sent = seed_sent_issue(db, app.extensions["dispatch"].settings, [("ana@example.org", "Ana")])
    german = issue_store.get_variants(db, sent.id)["non_donor@de"]
    assert f"/archive/{sent.id}?lang=de" in german.html
    client = app.test_client()
    page = client.get(f"/archive/{sent.id}?lang=de").get_data(as_text=True)
    assert "Ausgabe" in page and "Liebe Leserin, lieber Leser," in page
    page = client.get(f"/archive/{sent.id}?lang=xx").get_data(as_text=True)
    assert "Issue" in page and "Dear reader," in page


def test_a_form_sent_back_keeps_its_language(make_web_app):
    client = make_web_app(DISPATCH_LANGUAGES="en,de").test_client()
    form = client.get("/subscribe").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    data = {"csrf_token": token, "email": "not-an-address", "website": "", "language": "de"}
    page = client.post("/subscribe", data=data)
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert "Bitte prüfen Sie die E-Mail-Adresse: Sie scheint nicht gültig zu sein." in html
    assert '<option value="de" lang="de" selected>Deutsch</option>' in html


def test_a_count_of_readers_is_written_the_language_way():
    campaign = CampaignProgress("Winterfonds", 5_000_000, "eur", 2_345_600, 1234, "2026-12-31")
    [v] = renderer("de").render_issue(fixed_issue(), personas=["non_donor"], campaign=campaign)
    assert "gespendet von 1.234 Leserinnen und Lesern" in _one_line(v.text)
    [v] = renderer("en").render_issue(fixed_issue(), personas=["non_donor"], campaign=campaign)
    assert "raised from 1,234 readers" in _one_line(v.text)
