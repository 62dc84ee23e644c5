"""The donation page in the reader's language (review findings), through the Flask test client
and the real stripe library talking to the Stripe stand-in: a typed amount is read the way the
page's language writes numbers (German "12,50", "1.000"), and what the page says back is in that
language."""

from __future__ import annotations

import pytest

SESSIONS = "/v1/checkout/sessions"


@pytest.fixture
def client(make_web_app, stripe_env):
    return make_web_app(
        **stripe_env,
        DISPATCH_DONATION_AMOUNTS="5,10,25",
        DISPATCH_CURRENCY="eur",
        DISPATCH_DONATION_MAX="2000",
        DISPATCH_LANGUAGES="en,de,es,fr,ar",
    ).test_client()


def _token(db, ledger, email, lang):
    token = ledger("2026-W47", email)
    if lang != "en":
        with db.transaction() as conn:
            conn.execute(
                "UPDATE deliveries SET variant = ? WHERE token = ?", (f"non_donor@{lang}", token)
            )
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
