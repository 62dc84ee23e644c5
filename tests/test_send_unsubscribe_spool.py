"""Review finding: an unsubscribe the web service spooled (the database was busy) is honoured
by the next list send, before its ledger is fixed: the reader is not mailed."""

from __future__ import annotations

from dispatch.store import subscribers as subscriber_store
from dispatch.store import unsubscribe_spool
from tests.plugins.smtp import add_subscribers, create_sample_issue

PEOPLE = [("ana@example.org", "Ana"), ("bo@example.org", "Bo"), ("cy@example.org", "Cy")]


def test_a_spooled_unsubscribe_is_applied_before_the_send_mails_anyone(
    db, run_cli, smtp_server, smtp_env
):
    add_subscribers(db, PEOPLE)
    issue = create_sample_issue(db)
    bo = subscriber_store.get_subscriber(db, "bo@example.org")
    assert bo is not None
    unsubscribe_spool.spool_unsubscribe(db.path, bo.unsub_token)  # as defer_unsubscribe does

    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 0, result.output
    assert smtp_server.to("bo@example.org") == []
    assert len(smtp_server.messages) == 2
    after = subscriber_store.get_subscriber(db, "bo@example.org")
    assert after is not None and after.status == "unsubscribed"
    assert not unsubscribe_spool.has_spooled(db.path)


def test_a_damaged_spool_byte_blocks_no_send_and_loses_no_unsubscribe(
    db, run_cli, smtp_server, smtp_env
):
    """A byte the disk garbled in the spool is a token that matches nobody; the good tokens
    beside it are applied and the send goes on (a strict read failed every send for good)."""
    add_subscribers(db, PEOPLE)
    issue = create_sample_issue(db)
    bo = subscriber_store.get_subscriber(db, "bo@example.org")
    assert bo is not None
    unsubscribe_spool.spool_unsubscribe(db.path, bo.unsub_token)
    with open(unsubscribe_spool.spool_path(db.path), "ab") as spool:
        spool.write(b"\xff\xfe garbled\n")

    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 0, result.output
    assert smtp_server.to("bo@example.org") == []
    assert not unsubscribe_spool.has_spooled(db.path)
