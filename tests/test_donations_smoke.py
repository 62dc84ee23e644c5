"""Opt-in smoke test against Stripe's real test mode (network). Skipped unless
STRIPE_TEST_SMOKE_KEY holds a test-mode key (sk_test_ or rk_test_ with write access to Products,
Prices and Payment Links, read access to Checkout Sessions and Refunds). It creates one Product,
Price and Payment Link in that test account, then syncs (normally zero sessions)."""

from __future__ import annotations

import os

import pytest

from dispatch.jobs.donations import setup_donations, sync_donations
from dispatch.store import donations as store

# Read at import: the autouse fixture of conftest clears STRIPE_* variables for each test.
SMOKE_KEY = os.environ.get("STRIPE_TEST_SMOKE_KEY", "")


@pytest.mark.skipif(not SMOKE_KEY, reason="STRIPE_TEST_SMOKE_KEY is not set (opt-in, network)")
def test_setup_and_sync_against_stripe_test_mode(db, make_settings):
    assert SMOKE_KEY.startswith(("sk_test_", "rk_test_")), "the smoke test takes test keys only"
    settings = make_settings(STRIPE_SECRET_KEY=SMOKE_KEY, DISPATCH_OUTLET_NAME="Dispatch smoke")
    made = setup_donations(db, settings)
    [link] = made.links
    assert link["created"] and link["url"].startswith("https://")
    again = setup_donations(db, settings)
    assert [entry["created"] for entry in again.links] == [False]
    result = sync_donations(db, settings)
    assert result.mode == "test" and store.stripe_mode(db) == "test"
