"""`donations setup`: creates or adopts the Payment Link through the real stripe library."""

from __future__ import annotations

import json

import pytest

from dispatch.donations import donation_link_base
from dispatch.errors import InputError
from dispatch.jobs.donations import setup_donations, to_minor_units
from dispatch.store import donations as store


def test_setup_creates_product_pay_what_you_want_price_and_donate_link(
    db, make_settings, stripe_env, stripe_stub
):
    settings = make_settings(
        **stripe_env, DISPATCH_OUTLET_NAME="The Valley Ledger", DISPATCH_CURRENCY="eur"
    )
    result = setup_donations(db, settings, preset="15")

    products = stripe_stub.calls("POST", "/v1/products")
    prices = stripe_stub.calls("POST", "/v1/prices")
    links = stripe_stub.calls("POST", "/v1/payment_links")
    assert len(products) == len(prices) == len(links) == 1
    assert products[0].form["name"] == "Donation to The Valley Ledger"
    assert prices[0].form["custom_unit_amount"] == {"enabled": "true", "preset": "1500"}
    assert prices[0].form["currency"] == "eur"
    product_id = next(iter(stripe_stub.objects["product"]))
    assert prices[0].form["product"] == product_id
    assert links[0].form["submit_type"] == "donate"
    assert links[0].form["line_items"] == [
        {"price": next(iter(stripe_stub.objects["price"])), "quantity": "1"}
    ]
    for call in products + prices + links:
        assert call.headers["Idempotency-Key"].startswith("dispatch-")
    [link] = result.links
    assert link["created"] and link["kind"] == "custom"
    assert donation_link_base(db, settings) == link["url"]
    assert store.stripe_mode(db) == "test"


def test_setup_twice_finds_the_stored_link_and_creates_nothing(
    db, make_settings, stripe_env, stripe_stub, run_cli
):
    first = run_cli("donations", "setup", "--json", env=stripe_env)
    assert first.exit_code == 0, first.output
    stripe_stub.requests.clear()

    second = run_cli("donations", "setup", "--json", env=stripe_env)

    assert second.exit_code == 0, second.output
    assert [r.method for r in stripe_stub.requests] == ["GET"]  # checks the link is active
    links = json.loads(second.stdout)["links"]
    assert len(links) == 1 and links[0]["created"] is False
    assert links[0]["url"] == json.loads(first.stdout)["links"][0]["url"]


def test_setup_adds_fixed_and_monthly_links_once(db, make_settings, stripe_env, stripe_stub):
    settings = make_settings(**stripe_env)
    setup_donations(db, settings, fixed=("5", "25"), monthly=("10",))
    again = setup_donations(db, settings, fixed=("5", "25"), monthly=("10",))

    assert len(stripe_stub.calls("POST", "/v1/payment_links")) == 4
    assert len(stripe_stub.calls("POST", "/v1/products")) == 1
    kinds = sorted((link["kind"], link["amount_minor"]) for link in again.links)
    assert kinds == [("custom", None), ("fixed", 500), ("fixed", 2500), ("monthly", 1000)]
    monthly_price = [c for c in stripe_stub.calls("POST", "/v1/prices") if "recurring" in c.form]
    assert monthly_price[0].form["recurring"] == {"interval": "month"}
    monthly_link = stripe_stub.calls("POST", "/v1/payment_links")[-1]
    assert "submit_type" not in monthly_link.form  # not allowed for subscriptions


def test_setup_adopts_the_link_named_in_settings(db, make_settings, stripe_env, stripe_stub):
    existing = stripe_stub.add_payment_link(url="https://donate.stripe.test/b/ours")
    settings = make_settings(**stripe_env, DISPATCH_PAYMENT_LINK=existing["url"])
    result = setup_donations(db, settings)
    assert stripe_stub.calls("POST", "/v1/payment_links") == []
    assert [(link["id"], link["kind"]) for link in result.links] == [(existing["id"], "adopted")]


def test_setup_without_a_key_names_the_variable(run_cli):
    result = run_cli("donations", "setup")
    assert result.exit_code == 1
    assert "STRIPE_SECRET_KEY is not set" in result.output


def test_a_key_that_is_not_a_stripe_key_is_refused(run_cli, stripe_env):
    result = run_cli("donations", "sync", env=dict(stripe_env, STRIPE_SECRET_KEY="hunter2"))
    assert result.exit_code == 1
    assert "does not look like a Stripe secret or restricted key" in result.output
    assert "hunter2" not in result.output


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "usd", 1250),
        ("10", "eur", 1000),
        ("1000", "jpy", 1000),
        ("1.5", "kwd", 1500),
    ],
)
def test_amounts_in_major_units_become_minor_units(text, currency, minor):
    assert to_minor_units(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [("12.345", "usd"), ("10.5", "jpy"), ("-1", "usd"), ("ten", "usd"), ("0", "eur")],
)
def test_bad_amounts_are_refused(text, currency):
    with pytest.raises(InputError):
        to_minor_units(text, currency)
