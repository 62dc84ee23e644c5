"""Donors are found among subscribers by address on the index, whatever case Stripe gave."""

from __future__ import annotations

import pytest

from dispatch.store import campaigns, thanks, to_db_time, utcnow
from tests.conftest import sqlite_only


def _plan(db, sql: str) -> str:
    return " | ".join(row["detail"] for row in db.execute("EXPLAIN QUERY PLAN " + sql, ("x",)))


@sqlite_only  # SQLite's EXPLAIN QUERY PLAN
@pytest.mark.parametrize("sql", [campaigns.PAYER_SUBSCRIBER, thanks.ACTIVE_PAYER])
def test_payer_lookups_use_the_address_index_not_a_scan(db, sql):
    plan = _plan(db, sql)
    assert "USING" in plan and "INDEX" in plan, plan
    assert "SCAN subscribers" not in plan, plan


def test_a_payer_address_in_another_case_still_finds_the_subscriber(db, run_cli, tmp_path):
    (tmp_path / "l.csv").write_text("ana@example.org,Ana\n", encoding="utf-8")
    assert run_cli("subscribers", "import", str(tmp_path / "l.csv")).exit_code == 0
    now = to_db_time(utcnow())
    with db.transaction() as conn:  # arranged: one paid gift as the Stripe sync stores it
        conn.execute(
            "INSERT INTO donations (session_id, livemode, status, amount_minor, currency,"
            " payer_email, session_created_at, paid_at, source, first_seen_at, updated_at)"
            " VALUES ('cs_1', 0, 'paid', 500, 'eur', 'Ana@Example.ORG', ?, ?, 'sync', ?, ?)",
            (now, now, now, now),
        )
    sub_id = db.execute("SELECT id FROM subscribers").fetchone()[0]
    assert campaigns.last_gift_by_subscriber(db) == {sub_id: now}
    donation_id = db.execute("SELECT id FROM donations").fetchone()[0]
    found = thanks.recipient_for(db, donation_id)
    assert found is not None and found["email"] == "ana@example.org"
