"""Donor-aware mail (issue 11), through the real renderer, send engine (aiosmtpd on loopback)
and the Stripe stand-in driven by the real stripe library: a current monthly supporter is
thanked and never asked, and gets a working manage link; a one-time donor is invited to give
monthly; a donor whose card keeps failing is asked to update it; appeals skip supporters."""

from __future__ import annotations

import re
import time

import pytest

from dispatch.jobs.appeals import send_appeal
from dispatch.jobs.donations import sync_donations
from dispatch.jobs.send import send_issue
from dispatch.render.issue import render_and_store
from dispatch.store import issues as issue_store
from tests.plugins.web import SECRET_KEY

PUBLIC = "https://news.example.org"
PORTALS = "/v1/billing_portal/sessions"


@pytest.fixture
def link(stripe_stub):
    return stripe_stub.add_payment_link(url="https://donate.stripe.test/b/outlet")


@pytest.fixture
def env(stripe_env, smtp_env, link):
    return {
        **smtp_env,
        **stripe_env,
        "DISPATCH_PAYMENT_LINK": link["url"],
        "DISPATCH_PUBLIC_URL": PUBLIC,
        "DISPATCH_SECRET_KEY": SECRET_KEY,
        "DISPATCH_DONATION_AMOUNTS": "5,10,25",  # the donation page: monthly is on offer
    }


@pytest.fixture
def settings(make_settings, env):
    return make_settings(**env)


@pytest.fixture
def donors(db, settings, stripe_stub, link, ledger):
    """monthly (a gift running), failing (a monthly gift past due), once (a one-time gift three
    days ago), never (no gift). Returns the monthly donor's subscription."""
    tokens = {
        name: ledger("2026-W40", f"{name}@example.test")
        for name in ("monthly", "failing", "once", "never")
    }
    stripe_stub.clock = int(time.time()) - 40 * 86400
    running = stripe_stub.start_subscription(
        payment_link=link["id"], token=tokens["monthly"], email="monthly@example.test"
    )
    failing = stripe_stub.start_subscription(
        payment_link=link["id"], token=tokens["failing"], email="failing@example.test"
    )
    stripe_stub.set_card(failing["customer"], fails=True)
    stripe_stub.advance(days=33)  # the first renewal: paid for one, declined for the other
    stripe_stub.add_session(
        payment_link=link["id"],
        token=tokens["once"],
        email="once@example.test",
        created=int(time.time()) - 3 * 86400,
    )
    sync_donations(db, settings)
    return running["subscription"]


def _text(message) -> str:
    return " ".join(message.parsed().get_body(("plain",)).get_content().split())


def _html(message) -> str:
    return message.parsed().get_body(("html",)).get_content()


def _digest(db, settings) -> str:
    issue_store.create_issue(db, "2026-W48", subject="This week")
    render_and_store(db, settings, "2026-W48")
    return "2026-W48"


def test_each_donor_gets_their_own_copy_of_the_digest(
    db, settings, donors, smtp_server, make_web_app, env, stripe_stub
):
    send_issue(db, settings, _digest(db, settings))
    copies = {m.rcpt.split("@")[0]: m for m in smtp_server.messages}
    assert sorted(copies) == ["failing", "monthly", "never", "once"]

    supporter = _text(copies["monthly"])
    assert "THANK YOU FOR GIVING EVERY MONTH" in supporter
    assert "We will not ask you for more" in supporter
    for ask in ("/d/", "donate.stripe.test", "Give monthly", "Support our reporting"):
        assert ask not in supporter and ask not in _html(copies["monthly"])
    path = re.search(re.escape(PUBLIC) + r"(/m/\S+)", supporter).group(1)
    assert f'href="{PUBLIC}{path}"' in _html(copies["monthly"])

    once = _text(copies["once"])
    assert "a small monthly gift" in once and "Give monthly" in once
    assert "Give again" not in _html(copies["once"])

    failing = _text(copies["failing"])
    assert "YOUR MONTHLY GIFT NEEDS A NEW CARD" in failing and "Update my card" in failing
    assert re.search(re.escape(PUBLIC) + r"/m/sub_\S+", failing)

    assert "SUPPORT OUR REPORTING" in _text(copies["never"]).upper()

    # The supporter's link works: a GET shows a page and creates nothing at Stripe, the POST
    # opens a customer portal session for their own customer.
    client = make_web_app(**env).test_client()
    assert client.get(path).status_code == 200
    assert stripe_stub.calls("POST", PORTALS) == []
    response = client.post(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://billing.stripe.com/")
    [call] = stripe_stub.calls("POST", PORTALS)
    sub = stripe_stub.objects["subscription"][donors]
    assert call.form["customer"] == sub["customer"]


def test_an_appeal_to_everyone_never_asks_a_current_supporter(db, settings, donors, smtp_server):
    result = send_appeal(db, settings, segment="all", issue_id="appeal-all")
    assert sorted(m.rcpt for m in smtp_server.messages) == [
        "failing@example.test",
        "never@example.test",
        "once@example.test",
    ]
    assert result.fixed == 3
    assert "Update my card" in _text(
        next(m for m in smtp_server.messages if m.rcpt == "failing@example.test")
    )


def test_an_appeal_to_lapsed_donors_asks_the_failing_card_too(db, settings, donors, smtp_server):
    send_appeal(db, settings, segment="lapsed", issue_id="appeal-lapsed")
    assert [m.rcpt for m in smtp_server.messages] == ["failing@example.test"]


def test_without_a_monthly_offer_a_recent_donor_is_not_invited_to_give_monthly(db, make_settings):
    # Without the donation page the link is the one-off Payment Link: inviting a monthly gift
    # there would promise what the link cannot do.
    from dispatch.render.settings import renderer_from

    issue_store.create_issue(db, "2026-W48", subject="This week")
    issue = issue_store.get_issue(db, "2026-W48")
    for env, monthly in (
        ({}, False),
        ({"DISPATCH_PUBLIC_URL": PUBLIC, "DISPATCH_DONATION_AMOUNTS": "5,10"}, True),
    ):
        renderer = renderer_from(make_settings(STRIPE_SECRET_KEY="sk_test_x", **env))
        [variant] = renderer.render_issue(issue, personas=["recent_donor"])
        for body in (variant.html, variant.text):
            assert ("Give monthly" in body) is monthly
            assert ("Give again" in body) is not monthly
            assert ("a small monthly gift" in body) is monthly
