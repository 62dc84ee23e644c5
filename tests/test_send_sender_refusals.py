"""Review finding: a RCPT refusal that is about the sender (Postfix's delayed sender checks)
must not bounce the readers; and one reply repeated for many readers stops the run."""

from __future__ import annotations

import pytest

from dispatch.mailer import engine
from dispatch.mailer.connection import is_hard_bounce
from tests.plugins.smtp import add_subscribers, create_sample_issue

SENDER = "news@outlet.test"  # DISPATCH_FROM of run_cli (tests/conftest.py)


def people(n: int) -> list[tuple[str, str]]:
    return [(f"reader{i:04d}@example.org", f"Reader {i}") for i in range(n)]


def statuses(db) -> set[str]:
    return {row[0] for row in db.execute("SELECT status FROM subscribers").fetchall()}


def pending(db) -> int:
    return db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()[0]


@pytest.mark.parametrize(
    "reply",
    [
        "553 5.1.8 <{sender}>: Sender address rejected: Domain not found",
        "504 5.5.2 <{local}>: Sender address rejected: need fully-qualified address",
        "550 5.1.0 <{sender}>: Sender address rejected: User unknown in local recipient table",
    ],
)
def test_a_sender_refusal_at_rcpt_bounces_no_reader_and_stops_the_run(
    db, run_cli, smtp_server, smtp_env, reply
):
    add_subscribers(db, people(4))
    issue = create_sample_issue(db)
    text = reply.format(sender=SENDER, local=SENDER.split("@")[0])
    for email, _ in people(4):
        smtp_server.script_rcpt(email, text, text, text)
    result = run_cli("send", issue, "--concurrency", "1", env=smtp_env)
    assert result.exit_code == 1, result.output
    assert statuses(db) == {"active"}
    assert pending(db) == 4


def test_the_same_hard_bounce_for_many_readers_stops_the_run_as_a_relay_problem(
    db, run_cli, smtp_server, smtp_env, monkeypatch
):
    monkeypatch.setattr(engine, "BREAKER_REPEATS", 5)  # the default (20) needs a longer list
    add_subscribers(db, people(12))
    issue = create_sample_issue(db)
    for email, _ in people(12):
        smtp_server.script_rcpt(email, f"550 5.1.1 <{email}>: Recipient address rejected")
    result = run_cli("send", issue, "--concurrency", "1", env=smtp_env)
    assert result.exit_code == 1, result.output
    assert "in a row with the same reply" in result.output
    bounced = db.execute("SELECT COUNT(*) FROM subscribers WHERE status = 'bounced'").fetchone()
    assert bounced[0] == 0  # the ones before the breaker tripped were held, then kept pending
    assert pending(db) == 12


def test_different_hard_bounces_do_not_trip_the_breaker(db, run_cli, smtp_server, smtp_env):
    add_subscribers(db, people(3))
    issue = create_sample_issue(db)
    smtp_server.script_rcpt("reader0000@example.org", "550 5.1.1 user unknown")
    smtp_server.script_rcpt("reader0001@example.org", "550 mailbox unavailable")
    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 3, result.output
    assert statuses(db) == {"active", "bounced"}


def test_a_sender_address_rejection_is_never_a_hard_bounce_whatever_the_step():
    assert not is_hard_bounce(550, "5.1.0 <news@outlet.test>: Sender address rejected: x")
    assert is_hard_bounce(550, "5.1.1 <bob@example.org>: Recipient address rejected: x")


def test_held_bounces_below_the_breaker_are_applied_when_the_run_ends(
    db, run_cli, smtp_server, smtp_env
):
    add_subscribers(db, people(3))
    issue = create_sample_issue(db)
    for email, _ in people(3):
        smtp_server.script_rcpt(email, f"550 5.1.1 <{email}>: Recipient address rejected")
    result = run_cli("send", issue, "--concurrency", "1", env=smtp_env)
    assert result.exit_code == 3, result.output
    assert statuses(db) == {"bounced"}
    assert pending(db) == 0


@pytest.mark.parametrize(
    "dead", ["sender@example.org", "daily@example.org", "spam@example.org", "fakenews@outlet.test"]
)
def test_a_reader_whose_address_reads_like_the_sender_or_a_quota_is_only_a_bounce(
    db, run_cli, smtp_server, smtp_env, dead
):
    """Review finding: words inside the reader's own quoted address (sender@, daily@, spam@, or
    an address that merely contains ours) made a reader's refusal stop every run for good."""
    add_subscribers(db, [*people(2), (dead, "Dead Address")])
    issue = create_sample_issue(db)
    smtp_server.script_rcpt(dead, f"550 5.1.1 <{dead}>: Recipient address rejected: User unknown")
    result = run_cli("send", issue, "--concurrency", "1", env=smtp_env)
    assert result.exit_code == 3, result.output
    assert pending(db) == 0
    status = db.execute("SELECT status FROM subscribers WHERE email = ?", (dead,)).fetchone()[0]
    assert status == "bounced"
    assert is_hard_bounce(550, f"5.1.1 <{dead}>: Recipient address rejected: User unknown")


def test_held_bounces_stay_pending_when_the_run_stops_before_the_breaker_decides(
    db, run_cli, smtp_server, smtp_env
):
    """Review finding: three readers refused alike, then the relay refuses our sender: the run
    stops before the breaker could tell a relay problem from dead addresses, so none of the
    three is bounced (they stay pending and are tried again by the next run)."""
    add_subscribers(db, people(4))
    issue = create_sample_issue(db)
    for email, _ in people(3):
        smtp_server.script_rcpt(email, f"550 5.1.1 <{email}>: Recipient address rejected")
    smtp_server.script_rcpt(
        "reader0003@example.org", f"553 5.1.8 <{SENDER}>: Sender address rejected: Domain not found"
    )
    result = run_cli("send", issue, "--concurrency", "1", env=smtp_env)
    assert result.exit_code == 1, result.output
    assert statuses(db) == {"active"}
    assert pending(db) == 4


def test_no_bounce_breaker_trusts_a_long_run_of_identical_refusals(
    db, run_cli, smtp_server, smtp_env, monkeypatch
):
    """A real run of dead addresses that all get the relay's same reply would trip the breaker
    on every rerun; the editor who knows they are gone passes --no-bounce-breaker."""
    monkeypatch.setattr(engine, "BREAKER_REPEATS", 3)
    add_subscribers(db, people(5))
    issue = create_sample_issue(db)
    for email, _ in people(5):
        smtp_server.script_rcpt(email, f"550 5.1.1 <{email}>: Recipient address rejected")
    tripped = run_cli("send", issue, "--concurrency", "1", env=smtp_env)
    assert tripped.exit_code == 1 and "--no-bounce-breaker" in tripped.output
    for email, _ in people(5):
        smtp_server.script_rcpt(email, f"550 5.1.1 <{email}>: Recipient address rejected")
    trusted = run_cli("send", issue, "--concurrency", "1", "--no-bounce-breaker", env=smtp_env)
    assert trusted.exit_code == 3, trusted.output
    assert statuses(db) == {"bounced"}
    assert pending(db) == 0
