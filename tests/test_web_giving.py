"""The donation page and the manage-your-gift link (issue 11), through the Flask test client,
with the real stripe library talking to the Stripe stand-in: a GET creates nothing at Stripe;
the POST creates one Checkout Session (mode, price_data, token in client_reference_id and
metadata); forged tokens, bad amounts and a failing Stripe create nothing."""

from __future__ import annotations

import pytest

from dispatch.jobs.donations import handle_webhook
from dispatch.jobs.giving import manage_link
from dispatch.store import clicks, retention
from tests.plugins.web import WEBHOOK_SECRET
from tests.stripe_stub.events import signed

SESSIONS = "/v1/checkout/sessions"


@pytest.fixture
def env(stripe_env):
    return {
        **stripe_env,
        "DISPATCH_DONATION_AMOUNTS": "5,10,25",
        "DISPATCH_CURRENCY": "eur",
        "DISPATCH_DONATION_MAX": "500",
    }


@pytest.fixture
def app(make_web_app, env):
    return make_web_app(**env)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def token(ledger):
    return ledger("2026-W47", "ana@example.test", name="Ana")


def _posts(stub, path=SESSIONS):
    return stub.calls("POST", path)


def test_get_shows_the_page_counts_the_click_and_creates_nothing_at_stripe(
    client, db, stripe_stub, token
):
    page = client.get(f"/d/{token}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "€10.00" in text and 'value="monthly"' in text and 'name="custom"' in text
    assert page.headers["Cache-Control"] == "no-store"
    assert stripe_stub.requests == []
    assert clicks.click_count(db, token) == 1
    client.get(f"/d/{token}?back=1")  # back from Checkout: not a second click
    assert clicks.click_count(db, token) == 1


def test_post_creates_a_subscription_session_and_redirects_to_it(client, stripe_stub, token):
    response = client.post(
        f"/d/{token}", data={"frequency": "monthly", "amount": "10", "nonce": "n1"}
    )
    assert response.status_code == 303
    [call] = _posts(stripe_stub)
    form = call.form
    assert form["mode"] == "subscription" and form["client_reference_id"] == token
    item = form["line_items"][0]["price_data"]
    assert (item["currency"], item["unit_amount"], item["recurring"]["interval"]) == (
        "eur",
        "1000",
        "month",
    )
    assert form["subscription_data"]["metadata"]["dispatch_token"] == token
    assert form["customer_email"] == "ana@example.test"
    assert "payment_intent_data" not in form
    session = stripe_stub.objects["checkout.session"][
        response.headers["Location"].rsplit("/", 1)[1]
    ]
    assert session["status"] == "open"


def test_one_time_custom_amount_is_a_payment_session_with_the_token_on_the_intent(
    client, stripe_stub, token
):
    response = client.post(
        f"/d/{token}", data={"frequency": "once", "amount": "10", "custom": "12.50", "nonce": "n2"}
    )
    assert response.status_code == 303
    form = _posts(stripe_stub)[0].form
    assert form["mode"] == "payment" and form["submit_type"] == "donate"
    assert form["line_items"][0]["price_data"]["unit_amount"] == "1250"
    assert "recurring" not in form["line_items"][0]["price_data"]
    assert form["payment_intent_data"]["metadata"]["dispatch_token"] == token


def test_the_same_form_posted_twice_gives_one_session(client, stripe_stub, token):
    data = {"frequency": "yearly", "amount": "25", "nonce": "same"}
    first = client.post(f"/d/{token}", data=data)
    again = client.post(f"/d/{token}", data=data)
    assert first.headers["Location"] == again.headers["Location"]
    assert len(stripe_stub.objects["checkout.session"]) == 1


@pytest.mark.parametrize(
    "amount, says",
    [("abc", "is not an amount"), ("0.50", "between"), ("501", "between"), ("-5", "")],
)
def test_a_bad_amount_is_refused_on_the_page_and_nothing_is_created(
    client, stripe_stub, token, amount, says
):
    response = client.post(f"/d/{token}", data={"frequency": "once", "custom": amount})
    assert response.status_code == 400
    assert says in response.get_data(as_text=True)
    assert stripe_stub.requests == []


def test_forged_or_altered_tokens_create_nothing(client, stripe_stub, token):
    for forged in ("forged_token_123", token[:-1] + ("A" if token[-1] != "A" else "B")):
        assert client.get(f"/d/{forged}").status_code == 404
        post = client.post(f"/d/{forged}", data={"frequency": "once", "amount": "10"})
        assert post.status_code == 404
    assert (
        client.post(f"/d/{token}", data={"frequency": "weekly", "amount": "10"}).status_code == 400
    )
    assert stripe_stub.requests == []


def test_stripe_failing_gives_the_reader_a_clear_page_and_a_retry_creates_one_session(
    client, stripe_stub, token, caplog
):
    stripe_stub.fail_next(10, status=500)
    data = {"frequency": "monthly", "amount": "5", "nonce": "retry"}
    response = client.post(f"/d/{token}", data=data)
    assert response.status_code == 503
    assert "nothing was charged" in response.get_data(as_text=True)
    assert "could not create a Checkout Session" in caplog.text
    assert stripe_stub.objects["checkout.session"] == {}
    stripe_stub.fail_next(0)
    assert client.post(f"/d/{token}", data=data).status_code == 303
    assert client.post(f"/d/{token}", data=data).status_code == 303
    assert len(stripe_stub.objects["checkout.session"]) == 1


def test_a_gift_through_the_page_is_attributed_by_the_webhook(
    client, db, make_settings, env, stripe_stub, token
):
    location = client.post(
        f"/d/{token}", data={"frequency": "monthly", "amount": "25", "nonce": "w"}
    ).headers["Location"]
    stripe_stub.complete_session(location.rsplit("/", 1)[1])
    stripe_stub.advance(months=2)
    settings = make_settings(**env, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    for event in stripe_stub.events():
        body, headers = signed(event, WEBHOOK_SECRET)
        handle_webhook(db, settings, body, headers["Stripe-Signature"])
    figures = retention.issue_figures(db, "2026-W47")
    assert (figures["donors_started"], figures["active"], figures["renewals"]) == (1, 1, 2)
    assert retention.lifetime(db, "2026-W47") == {"eur": 7500}


def test_the_manage_link_opens_the_portal_only_on_post_and_only_when_signed(
    client, app, db, make_settings, env, stripe_stub, token
):
    session = stripe_stub.start_subscription(token=token, currency="eur")
    settings = make_settings(**env, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    for event in stripe_stub.events("customer.subscription.created"):
        body, headers = signed(event, WEBHOOK_SECRET)
        handle_webhook(db, settings, body, headers["Stripe-Signature"])
    link = manage_link(app.extensions["dispatch"].settings, session["subscription"])
    path = link.split("localhost", 1)[1]
    assert client.get(path).status_code == 200
    assert _posts(stripe_stub, "/v1/billing_portal/sessions") == []
    response = client.post(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://billing.stripe.com/")
    [call] = _posts(stripe_stub, "/v1/billing_portal/sessions")
    assert call.form["customer"] == session["customer"]
    altered = path[:-2] + ("AA" if not path.endswith("AA") else "BB")
    assert client.get(altered).status_code == 404
    assert client.post(altered).status_code == 404
    assert client.post(f"/m/{session['subscription']}").status_code == 404
    assert len(_posts(stripe_stub, "/v1/billing_portal/sessions")) == 1


def test_the_pages_let_their_forms_lead_to_stripes_hosted_pages_only(client, token):
    policy = client.get(f"/d/{token}").headers["Content-Security-Policy"]
    assert "form-action 'self' https://checkout.stripe.com https://billing.stripe.com" in policy
    assert "script-src 'none'" in policy


def test_a_page_gift_whose_webhook_was_missed_is_caught_up_by_sync(
    client, db, make_settings, env, stripe_stub, token
):
    from dispatch.jobs.donations import sync_donations
    from dispatch.store import donations as donation_store

    link = stripe_stub.add_payment_link(url="https://donate.stripe.test/b/outlet")
    location = client.post(
        f"/d/{token}", data={"frequency": "once", "amount": "10", "nonce": "missed"}
    ).headers["Location"]
    stripe_stub.complete_session(location.rsplit("/", 1)[1])
    stripe_stub.add_session(payment_link=None, amount=999, token=None)  # not the outlet's
    settings = make_settings(**env, DISPATCH_PAYMENT_LINK=link["url"])

    result = sync_donations(db, settings).as_dict()

    [gift] = donation_store.list_donations(db)
    assert (gift.amount_minor, gift.currency, gift.issue_id) == (1000, "eur", "2026-W47")
    assert result["new"] == 1
    assert sync_donations(db, settings).as_dict()["new"] == 0


def test_a_page_subscription_synced_without_webhooks_counts_its_first_payment_once(
    client, db, make_settings, env, stripe_stub, token
):
    from dispatch.jobs.donations import sync_donations

    link = stripe_stub.add_payment_link(url="https://donate.stripe.test/b/outlet")
    location = client.post(
        f"/d/{token}", data={"frequency": "monthly", "amount": "10", "nonce": "sync"}
    ).headers["Location"]
    stripe_stub.complete_session(location.rsplit("/", 1)[1])
    stripe_stub.advance(months=3)
    settings = make_settings(**env, DISPATCH_PAYMENT_LINK=link["url"])
    sync_donations(db, settings)
    sync_donations(db, settings)
    assert retention.lifetime(db, "2026-W47") == {"eur": 4000}  # first payment + 3 renewals
    assert retention.issue_figures(db, "2026-W47")["renewals"] == 3


def test_recurring_events_through_the_webhook_route_count_once(
    make_web_app, env, db, stripe_stub, token
):
    client = make_web_app(**env, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET).test_client()
    stripe_stub.start_subscription(
        token=token, currency="eur", amount=900, metadata={"dispatch_token": token}
    )
    stripe_stub.advance(months=1)
    [renewal] = [
        e
        for e in stripe_stub.events("invoice.paid")
        if e["data"]["object"]["billing_reason"] == "subscription_cycle"
    ]
    body, headers = signed(renewal, WEBHOOK_SECRET)
    first = client.post("/stripe/webhook", data=body, headers=headers)
    again = client.post("/stripe/webhook", data=body, headers=signed(renewal, WEBHOOK_SECRET)[1])
    assert first.status_code == again.status_code == 200
    assert (first.get_json()["outcome"], again.get_json()["outcome"]) == ("new", "duplicate")
    assert retention.issue_figures(db, "2026-W47")["renewals"] == 1
    tampered = body.replace(b'"amount_paid": 900', b'"amount_paid": 9')
    assert client.post("/stripe/webhook", data=tampered, headers=headers).status_code == 400
