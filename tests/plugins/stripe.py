"""Fixtures for the Stripe API stand-in (tests/stripe_stub): a real HTTP server on loopback that
the real stripe library reaches through STRIPE_API_BASE."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stripe_stub import StripeStub

TEST_KEY = "sk_test_dispatchTESTkey0123456789"
LIVE_KEY = "sk_live_dispatchLIVEkey0123456789"


@pytest.fixture
def stripe_stub() -> Iterator[StripeStub]:
    stub = StripeStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def stripe_env(stripe_stub: StripeStub) -> dict[str, str]:
    """Settings that point the real stripe library at the stand-in with a test-mode key."""
    return {
        "STRIPE_SECRET_KEY": TEST_KEY,
        "STRIPE_API_BASE": stripe_stub.url,
        "STRIPE_MAX_NETWORK_RETRIES": "2",
    }


@pytest.fixture
def ledger(db):  # noqa: ANN001 - the shared db fixture
    """Seed subscribers, issues and send-ledger rows directly (the send engine's own tests
    cover how they are made); returns a helper that adds one delivery and gives its token."""
    import secrets

    from dispatch.store import to_db_time, utcnow

    def add(
        issue_id: str,
        email: str,
        *,
        name: str = "",
        state: str = "sent",
        kind: str = "digest",
        sent_at: str | None = None,
    ) -> str:
        now = to_db_time(utcnow())
        with db.transaction() as conn:
            if conn.execute("SELECT 1 FROM issues WHERE id = ?", (issue_id,)).fetchone() is None:
                conn.execute(
                    "INSERT INTO issues (id, kind, status, subject, created_at, sent_at)"
                    " VALUES (?, ?, 'sent', ?, ?, ?)",
                    (issue_id, kind, f"Issue {issue_id}", sent_at or now, sent_at or now),
                )
            row = conn.execute("SELECT id FROM subscribers WHERE email = ?", (email,)).fetchone()
            if row is None:
                cur = conn.execute(
                    "INSERT INTO subscribers (email, name, status, unsub_token, created_at,"
                    " updated_at) VALUES (?, ?, 'active', ?, ?, ?)",
                    (email, name, secrets.token_urlsafe(16), now, now),
                )
                sub_id = cur.lastrowid
            else:
                sub_id = row["id"]
            token = secrets.token_urlsafe(16)
            conn.execute(
                "INSERT INTO deliveries (issue_id, subscriber_id, email, token, variant, state,"
                " created_at, updated_at, sent_at) VALUES (?, ?, ?, ?, 'non_donor', ?, ?, ?, ?)",
                (issue_id, sub_id, email, token, state, now, now, now if state == "sent" else None),
            )
        return token

    return add
