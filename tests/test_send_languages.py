"""Each reader's copy in their language (issue 14): the ledger gives every delivery the variant
of its reader's language, and the send delivers it, against a real SMTP server on loopback."""

from __future__ import annotations

from dispatch.store import issues as issue_store
from dispatch.store import ledger
from tests.plugins.smtp import add_subscribers
from tests.test_mail_quality import sample_issue

PEOPLE = [
    ("ana@example.org", "Ana Souza", "de"),
    ("jo@example.org", "Jo Weber", "DE-at"),
    ("marie@example.org", "Marie", "fr"),  # not one of the outlet's languages
    ("sam@example.org", "Sam", ""),
    ("nour@example.org", "Nour", "German"),  # not a tag: used as written, so the default
]


def add_readers(db) -> None:
    add_subscribers(db, [(email, name) for email, name, _ in PEOPLE])
    with db.transaction() as conn:
        for email, _, language in PEOPLE:
            conn.execute("UPDATE subscribers SET language = ? WHERE email = ?", (language, email))


def render(db, settings, issue_id: str = "2026-W48") -> str:
    from dispatch.render.settings import renderer_from

    issue = sample_issue(issue_id)
    issue_store.create_issue(db, issue_id, subject=issue.subject, articles=issue.articles)
    issue_store.save_variants(db, issue_id, renderer_from(settings).render_issue(issue))
    return issue_id


def test_the_ledger_gives_each_reader_the_variant_of_their_language(db, make_settings):
    add_readers(db)
    issue_id = render(db, make_settings(DISPATCH_LANGUAGES="en,de"))
    lapsed = db.execute("SELECT id FROM subscribers WHERE email = 'jo@example.org'").fetchone()
    assert ledger.fix_deliveries(db, issue_id, {lapsed["id"]: "lapsed_donor"}, "non_donor") == 5
    rows = dict(db.execute("SELECT email, variant FROM deliveries WHERE issue_id = ?", (issue_id,)))
    assert rows == {
        "ana@example.org": "non_donor@de",
        "jo@example.org": "lapsed_donor@de",
        "marie@example.org": "non_donor",
        "sam@example.org": "non_donor",
        "nour@example.org": "non_donor",
    }


def test_a_single_language_outlet_keeps_the_persona_variants(db, make_settings):
    add_readers(db)
    issue_id = render(db, make_settings())
    ledger.fix_deliveries(db, issue_id, {}, "non_donor")
    variants = {r[0] for r in db.execute("SELECT variant FROM deliveries")}
    assert variants == {"non_donor"}


def test_each_reader_receives_their_language(db, make_settings, run_cli, smtp_server, smtp_env):
    env = {**smtp_env, "DISPATCH_LANGUAGES": "en,de", "DISPATCH_OUTLET_NAME": "The Ledger"}
    add_readers(db)
    issue_id = render(db, make_settings(**env))
    result = run_cli("send", issue_id, env=env)
    assert result.exit_code == 0, result.output
    texts = {
        m.rcpt: m.parsed().get_body(("plain",)).get_content().replace("\r\n", "\n")
        for m in smtp_server.messages
    }
    assert len(texts) == 5
    for reader in ("ana@example.org", "jo@example.org"):
        assert "\nAusgabe 2026-W48 · " in texts[reader], reader
        assert "Abmelden: " in texts[reader]
    assert "Hallo Ana Souza," in texts["ana@example.org"]
    for reader in ("marie@example.org", "sam@example.org", "nour@example.org"):
        assert "\nIssue 2026-W48 · " in texts[reader] and "Unsubscribe: " in texts[reader]
    assert "Dear Sam," in texts["sam@example.org"]
    # the articles stay as written in every language
    assert all(sample_issue().articles[0].title in text for text in texts.values())


def test_a_german_outlet_greets_in_german(db, make_settings, run_cli, smtp_server, smtp_env):
    env = {**smtp_env, "DISPATCH_LANGUAGE": "de"}
    add_readers(db)
    issue_id = render(db, make_settings(**env))
    assert run_cli("send", issue_id, env=env).exit_code == 0
    texts = [m.parsed().get_body(("plain",)).get_content() for m in smtp_server.messages]
    assert len(texts) == 5 and all("Ausgabe 2026-W48" in t for t in texts)
    assert sum("Hallo Sam," in t for t in texts) == 1
