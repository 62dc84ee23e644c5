"""A forwarded copy (review finding): reader A forwards an issue, B starts a monthly gift from
A's link. The payer is the supporter, never A: A's next copy keeps the ask and has no manage
link to B's gift, through the real renderer, send engine and the Stripe stand-in."""

from __future__ import annotations

import re

import pytest

from dispatch.jobs.donations import sync_donations
from dispatch.jobs.send import send_issue
from dispatch.render.issue import render_and_store
from dispatch.store import issues as issue_store
from dispatch.store.supporters import donor_states, gift_subscriptions
from tests.plugins.web import SECRET_KEY

PUBLIC = "https://news.example.org"


@pytest.fixture
def settings(make_settings, stripe_env, smtp_env, stripe_stub):
    link = stripe_stub.add_payment_link(url="https://donate.stripe.test/b/outlet")
    env = {
        **smtp_env,
        **stripe_env,
        "DISPATCH_PAYMENT_LINK": link["url"],
        "DISPATCH_PUBLIC_URL": PUBLIC,
        "DISPATCH_SECRET_KEY": SECRET_KEY,
        "DISPATCH_DONATION_AMOUNTS": "5,10,25",
    }
    return make_settings(**env), link


def _subscriber_id(db, email):
    return db.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()["id"]


def test_a_forwarded_monthly_gift_makes_the_payer_the_supporter_not_the_forwarder(
    db, settings, stripe_stub, ledger, smtp_server
):
    settings, link = settings
    token_a = ledger("2026-W40", "a@example.test")
    ledger("2026-W40", "b@example.test")
    stripe_stub.start_subscription(payment_link=link["id"], token=token_a, email="b@example.test")
    sync_donations(db, settings)
    a, b = _subscriber_id(db, "a@example.test"), _subscriber_id(db, "b@example.test")

    assert a not in donor_states(db) and a not in gift_subscriptions(db)
    assert donor_states(db)[b] == "active" and b in gift_subscriptions(db)

    issue_store.create_issue(db, "2026-W48", subject="This week")
    render_and_store(db, settings, "2026-W48")
    send_issue(db, settings, "2026-W48")
    copies = {m.rcpt: m for m in smtp_server.messages}
    text_a = copies["a@example.test"].parsed().get_body(("plain",)).get_content()
    assert not re.search(r"/m/\S+", text_a)
    assert "THANK YOU FOR GIVING EVERY MONTH" not in text_a
    text_b = copies["b@example.test"].parsed().get_body(("plain",)).get_content()
    assert re.search(re.escape(PUBLIC) + r"/m/\S+", text_b)
