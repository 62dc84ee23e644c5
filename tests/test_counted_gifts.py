"""The counted-gift rule lives in one view (migration 0012), and reports, campaign progress,
donor personas and thank-you candidates all read it: they agree on which gifts count."""

from __future__ import annotations

from datetime import UTC, datetime

from dispatch.store import campaigns, open_db, reports, thanks
from dispatch.store import donations as store

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
T0 = int(datetime(2026, 11, 10, tzinfo=UTC).timestamp())


def _gift(db, n: int, status: str, amount: int, mode: str = "payment") -> None:
    store.record_donation(
        db,
        {
            "session_id": f"cs_test_{n}",
            "livemode": False,
            "payment_link": "plink_1",
            "payment_intent": f"pi_{n}",
            "checkout_mode": mode,
            "status": status,
            "amount_minor": amount,
            "currency": "usd",
            "token": None,
            "payer_email": f"payer{n}@example.org",
            "created": T0 + n,
        },
        "sync",
    )


def _refund(db, n: int, amount: int, status: str = "succeeded") -> None:
    store.record_refund(
        db,
        {
            "refund_id": f"re_{n}_{amount}",
            "payment_intent": f"pi_{n}",
            "charge": None,
            "amount_minor": amount,
            "currency": "usd",
            "status": status,
            "livemode": False,
            "created": T0 + 100,
        },
    )


def test_one_view_decides_which_gifts_count_and_every_reader_agrees(tmp_path) -> None:
    db = open_db(tmp_path / "d.db", create=True)
    _gift(db, 1, "paid", 1000)  # counts in full
    _gift(db, 2, "paid", 2000)
    _refund(db, 2, 500)  # counts with its net, 1500
    _gift(db, 3, "paid", 3000)
    _refund(db, 3, 3000)  # refunded in full: does not count
    _gift(db, 4, "pending", 4000)  # a delayed payment still on its way
    _gift(db, 5, "failed", 5000)
    _gift(db, 6, "paid", 600, mode="subscription")  # monthly gifts count too
    _refund(db, 6, 600, status="failed")  # a failed refund takes nothing back

    rows = db.execute("SELECT id, session_id, net_minor FROM counted_gifts ORDER BY id").fetchall()
    assert [(r["session_id"], r["net_minor"]) for r in rows] == [
        ("cs_test_1", 1000),
        ("cs_test_2", 1500),
        ("cs_test_6", 600),
    ]
    by_issue = reports.gifts_by_issue(db)[None]
    assert by_issue["donations"] == 3 and by_issue["amounts"] == {"usd": 3100}
    db.execute(
        "INSERT INTO campaigns (name, goal_minor, currency, starts_on, ends_on, created_at)"
        " VALUES ('Fall', 10000, 'usd', '2026-11-01', '2026-11-30', '2026-11-01T00:00:00')"
    )
    campaign = campaigns.list_campaigns(db)[0]
    progress = campaigns.progress(db, campaign)
    assert (progress.raised_minor, progress.donors) == (3100, 3)
    assert sorted(r["id"] for r in thanks.candidates(db, "2026-11-01T00:00:00")) == sorted(
        r["id"] for r in rows
    )
