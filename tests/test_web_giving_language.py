"""The donation page in the reader's language (review findings), through the Flask test client
and the real stripe library talking to the Stripe stand-in: a typed amount is read the way the
page's language writes numbers (German "12,50", "1.000"), and what the page says back is in that
language."""

from __future__ import annotations

import pytest

from dispatch.jobs.donations import handle_webhook
from dispatch.jobs.giving import manage_link
from tests.plugins.web import WEBHOOK_SECRET, seed_sent_issue, web_env
from tests.stripe_stub.events import signed
from tests.test_web_hardening import QUICK, WriteLock

SESSIONS = "/v1/checkout/sessions"


@pytest.fixture
def env(stripe_env):
    return {
        **stripe_env,
        "DISPATCH_DONATION_AMOUNTS": "5,10,25",
        "DISPATCH_CURRENCY": "eur",
        "DISPATCH_DONATION_MAX": "2000",
        "DISPATCH_LANGUAGES": "en,de,es,fr,ar",
    }


@pytest.fixture
def app(make_web_app, env):
    return make_web_app(**env)


@pytest.fixture
def client(app):
    return app.test_client()


def _token(db, ledger, email, lang):
    """A delivery token of a reader whose copy (and own language) is ``lang``."""
    token = ledger("2026-W47", email)
    if lang != "en":
        with db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET variant = ? WHERE token = ?", (f"non_donor@{lang}", token)
            )
            conn.execute("UPDATE subscribers SET language = ? WHERE email = ?", (lang, email))
    return token


def _amount_sent(stripe_stub):
    [call] = stripe_stub.calls("POST", SESSIONS)
    return call.form["line_items"][0]["price_data"]["unit_amount"]


@pytest.mark.parametrize(
    "lang, typed, minor",
    [
        ("de", "12,50", "1250"),
        ("de", "1.000", "100000"),
        ("en", "12.50", "1250"),
        ("en", "1,000", "100000"),
        ("fr", "12,5", "1250"),
    ],
)
def test_a_typed_amount_is_read_the_way_the_pages_language_writes_numbers(
    client, db, ledger, stripe_stub, lang, typed, minor
):
    token = _token(db, ledger, "ana@example.test", lang)
    response = client.post(f"/d/{token}", data={"frequency": "once", "custom": typed})
    assert response.status_code == 303
    assert _amount_sent(stripe_stub) == minor


def test_a_suggested_amount_is_read_as_the_page_wrote_it_in_any_language(
    client, db, ledger, stripe_stub
):
    token = _token(db, ledger, "ana@example.test", "de")
    response = client.post(f"/d/{token}", data={"frequency": "once", "amount": "10.00"})
    assert response.status_code == 303
    assert _amount_sent(stripe_stub) == "1000"


def test_an_english_amount_on_a_german_page_is_refused_not_misread(client, db, ledger, stripe_stub):
    token = _token(db, ledger, "ana@example.test", "de")
    response = client.post(f"/d/{token}", data={"frequency": "once", "custom": "12.50"})
    assert response.status_code == 400
    assert stripe_stub.calls("POST", SESSIONS) == []


@pytest.mark.parametrize(
    "data, says",
    [
        ({"frequency": "once", "custom": "zwölf"}, "„zwölf“ ist kein Betrag"),
        ({"frequency": "once", "custom": "12.50"}, "eine Zahl wie 10 oder 12,50 ein"),
        ({"frequency": "once", "custom": "0,50"}, "zwischen 1,00\xa0€ und 2.000,00\xa0€"),
        ({"frequency": "daily", "amount": "10"}, "einmalig, monatlich oder jährlich"),
    ],
)
def test_what_the_page_refuses_is_said_in_the_readers_language(
    client, db, ledger, stripe_stub, data, says
):
    token = _token(db, ledger, "ana@example.test", "de")
    response = client.post(f"/d/{token}", data=data)
    assert response.status_code == 400
    assert says in response.get_data(as_text=True)
    assert stripe_stub.calls("POST", SESSIONS) == []


def test_the_unavailable_and_thank_you_pages_speak_the_readers_language(
    client, db, ledger, stripe_stub
):
    token = _token(db, ledger, "ana@example.test", "de")
    stripe_stub.fail_next(10, status=500)
    response = client.post(f"/d/{token}", data={"frequency": "monthly", "amount": "5"})
    assert response.status_code == 503
    assert "Zahlungen sind gerade nicht möglich" in response.get_data(as_text=True)
    thanks = client.get(f"/d/{token}/thanks").get_data(as_text=True)
    assert "Vielen Dank" in thanks and 'lang="de"' in thanks


def test_the_manage_page_speaks_the_language_of_the_reader_who_gives(
    app, client, db, ledger, make_settings, env, stripe_stub
):
    token = _token(db, ledger, "ana@example.test", "fr")
    session = stripe_stub.start_subscription(token=token, currency="eur", email="ana@example.test")
    settings = make_settings(**env, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    for event in stripe_stub.events():  # the session's too: it names the reader
        body, headers = signed(event, WEBHOOK_SECRET)
        handle_webhook(db, settings, body, headers["Stripe-Signature"])
    link = manage_link(app.extensions["dispatch"].settings, session["subscription"])
    path = link.split("localhost", 1)[1]
    page = client.get(path).get_data(as_text=True)
    assert 'lang="fr"' in page and "Votre don mensuel" in page
    stripe_stub.fail_next(10, status=500)
    unavailable = client.post(path)
    assert unavailable.status_code == 503
    assert "Momentanément indisponible" in unavailable.get_data(as_text=True)


def test_a_deferred_unsubscribe_is_confirmed_in_the_readers_language(
    make_web_app, make_settings, db, db_url
):
    sent = seed_sent_issue(db, make_settings(**web_env()), [("ana@example.org", "Ana")])
    with db.transaction() as conn:
        conn.execute("UPDATE subscribers SET language = 'de' WHERE email = 'ana@example.org'")
    app = make_web_app(DISPATCH_LANGUAGES="en,de")
    app.extensions["dispatch"].patience = QUICK
    assert app.test_client().get("/archive/").status_code == 200  # the store is migrated
    lock = WriteLock(db_url)
    try:
        token = sent.readers["ana@example.org"].unsub_token
        response = app.test_client().post(f"/u/{token}")
    finally:
        lock.close()
    assert response.status_code == 202
    assert 'lang="de"' in response.get_data(as_text=True)
    app.extensions["dispatch"].outbox.join(timeout=60)
