"""Thank-yous of monthly gifts (issue 11): the first payment is thanked once, naming the issue,
with the signed "manage your monthly gift" link; renewals are never thanked."""

from __future__ import annotations

import re
import time

import pytest

from dispatch.jobs.appeals import thank_donors
from dispatch.jobs.donations import sync_donations
from dispatch.jobs.giving import subscription_for_ref
from tests.plugins.web import SECRET_KEY


@pytest.fixture
def link(stripe_stub):
    return stripe_stub.add_payment_link(url="https://donate.stripe.test/b/monthly")


@pytest.fixture
def settings(make_settings, stripe_env, smtp_env, link):
    return make_settings(
        **{
            **smtp_env,
            **stripe_env,
            "DISPATCH_PAYMENT_LINK": link["url"],
            "DISPATCH_PUBLIC_URL": "https://news.example.org",
            "DISPATCH_SECRET_KEY": SECRET_KEY,
        }
    )


def test_a_monthly_gift_is_thanked_once_with_its_manage_link_and_renewals_are_not(
    db, settings, stripe_stub, link, ledger, smtp_server
):
    stripe_stub.clock = int(time.time()) - 3600  # thank-yous go to gifts of the last 14 days
    token = ledger("2026-W47", "ana@example.test")
    session = stripe_stub.start_subscription(
        payment_link=link["id"], token=token, amount=1500, currency="eur", email="ana@example.test"
    )
    sync_donations(db, settings)
    assert thank_donors(db, settings).sent == 1
    [mail] = smtp_server.to("ana@example.test")
    text = mail.parsed().get_body(("plain",)).get_content()
    assert "monthly gift of €15" in text and "(2026-W47)" in " ".join(text.split())
    ref = re.search(r"https://news\.example\.org/m/(\S+)", text).group(1)
    assert subscription_for_ref(db, settings, ref) == session["subscription"]
    html = mail.parsed().get_body(("html",)).get_content()
    assert f"/m/{ref}" in html

    stripe_stub.advance(days=70)  # two renewals
    sync_donations(db, settings)
    assert thank_donors(db, settings).sent == 0
    assert len(smtp_server.to("ana@example.test")) == 1
