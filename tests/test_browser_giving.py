"""A reader gives through the donation page in a real browser (Debian's chromium through
Playwright) against the real app on loopback, which creates the Checkout Session at the Stripe
stand-in through the real stripe library. Stripe's hosted Checkout page itself cannot run here:
the browser's request to it is answered by a one-line stand-in page (Playwright's route)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.web import LiveWeb, serve_live, web_env

pytestmark = pytest.mark.browser


@pytest.fixture
def giving_web(make_settings, stripe_env) -> Iterator[LiveWeb]:
    with serve_live(
        lambda url: make_settings(
            **web_env(
                public_url=url,
                **stripe_env,
                DISPATCH_DONATION_AMOUNTS="5,10,25",
                DISPATCH_CURRENCY="eur",
            )
        )
    ) as live:
        yield live


def test_a_reader_gives_monthly_through_the_donation_page(
    giving_web, browser_page, stripe_stub, ledger
):
    token = ledger("2026-W47", "ana@example.test", name="Ana")
    page = browser_page
    page.route(
        "https://checkout.stripe.com/**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<h1>Stripe Checkout</h1>"
        ),
    )
    page.goto(f"{giving_web.url}/d/{token}")
    page.get_by_role("heading", name="Support our journalism").wait_for()

    page.get_by_label("Another amount").fill("abc")
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("alert").wait_for()
    assert "is not an amount" in page.get_by_role("alert").inner_text()
    assert stripe_stub.objects["checkout.session"] == {}

    page.get_by_label("Another amount").fill("")
    page.get_by_label("Yearly").check()
    page.get_by_label("€25.00").check()
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("heading", name="Stripe Checkout").wait_for()

    [session] = stripe_stub.objects["checkout.session"].values()
    assert page.url == session["url"]
    assert (session["mode"], session["amount_total"], session["currency"]) == (
        "subscription",
        2500,
        "eur",
    )
    assert session["client_reference_id"] == token
    assert session["customer_email"] == "ana@example.test"
    extra = stripe_stub._session_extra[session["id"]]
    assert extra["price"]["recurring"]["interval"] == "year"
    assert extra["subscription_metadata"] == {"dispatch_token": token}


def test_the_board_page_opens_offline_and_fetches_nothing(browser_page, run_cli, tmp_path):
    page_file = tmp_path / "board.html"
    assert run_cli("report", "--html", str(page_file)).exit_code == 0
    fetched = []

    def watch(route):
        fetched.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    browser_page.route("**/*", watch)
    browser_page.goto(page_file.as_uri())
    browser_page.get_by_role("heading", name="Which issues bring donors who stay").wait_for()
    assert [url for url in fetched if not url.startswith("file:")] == []
