"""The ledger under faults: interrupted runs, 4xx, 5xx, dropped connections, crashes in flight.

All against the real aiosmtpd fixture; the invariant checked everywhere is that each active
subscriber ends up with exactly one accepted copy (or a recorded failure), never two.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dispatch.errors import SendError
from dispatch.jobs.send import SendOptions, send_issue
from dispatch.mailer import RetryPolicy
from dispatch.store import issues as issue_store
from dispatch.store import ledger
from tests.conftest import sqlite_only
from tests.plugins.smtp import add_subscribers, create_sample_issue

FAST = RetryPolicy(base=0.01, maximum=0.05, give_up_after=1.0)


def people(n: int) -> list[tuple[str, str]]:
    return [(f"reader{i:04d}@example.org", f"Reader {i}") for i in range(n)]


@pytest.fixture
def settings(make_settings, smtp_env):
    return make_settings(**smtp_env)


def states(db, issue_id="2026-W48") -> Counter:
    return Counter(
        r[0] for r in db.execute("SELECT state FROM deliveries WHERE issue_id = ?", (issue_id,))
    )


def fix_ledger(db, issue_id: str) -> None:
    assert ledger.fix_deliveries(db, issue_id, {}, "non_donor")


def assert_each_once(smtp_server, expected: list[str]) -> None:
    counts = Counter(m.rcpt for m in smtp_server.messages)
    assert sorted(counts) == sorted(expected)
    assert set(counts.values()) == {1}, [a for a, n in counts.items() if n > 1]


def test_many_recipients_over_several_connections_each_get_exactly_one(db, settings, smtp_server):
    add_subscribers(db, people(300))
    issue = create_sample_issue(db)
    summary = send_issue(db, settings, issue, SendOptions(concurrency=4, retry=FAST))
    assert summary.sent_now == 300 and summary.complete
    assert_each_once(smtp_server, [e for e, _ in people(300)])
    assert smtp_server.connections >= 2  # really concurrent connections, each reused
    assert smtp_server.connections < 20


def test_interrupted_run_resumes_without_duplicates_or_gaps(db, settings, smtp_server):
    add_subscribers(db, people(60))
    issue = create_sample_issue(db)
    smtp_server.handler.slow_data = 0.01  # so that the Ctrl-C lands midway on any machine
    done = 0

    def stop_after_20(n: int) -> None:  # a Ctrl-C after 20 messages
        nonlocal done
        done += n
        if done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        send_issue(
            db, settings, issue, SendOptions(concurrency=3, retry=FAST), progress=stop_after_20
        )
    first = len(smtp_server.messages)
    assert 20 <= first < 60
    after_stop = states(db)
    assert after_stop["sending"] == 0 and after_stop["uncertain"] == 0  # a clean stop
    assert after_stop["sent"] == first
    assert issue_store.get_issue(db, issue).status == "sending"

    summary = send_issue(db, settings, issue, SendOptions(concurrency=3, retry=FAST))
    assert summary.sent_now == 60 - first and summary.complete
    assert_each_once(smtp_server, [e for e, _ in people(60)])


def test_relay_that_goes_away_midway_stops_clearly_and_a_rerun_finishes(db, settings, smtp_server):
    add_subscribers(db, people(30))
    issue = create_sample_issue(db)
    smtp_server.drop_after(12)
    with pytest.raises(SendError) as raised:
        send_issue(db, settings, issue, SendOptions(concurrency=2, retry=FAST))
    assert "accepted nothing" in str(raised.value) and "rerun" in str(raised.value)
    assert len(smtp_server.messages) == 12
    left = states(db)
    assert left["sent"] == 12 and left["pending"] == 18 and left["sending"] == 0
    assert left["failed"] == 0  # dropped connections are never a permanent failure

    smtp_server.recover()
    summary = send_issue(db, settings, issue, SendOptions(concurrency=2, retry=FAST))
    assert summary.complete and summary.sent_now == 18
    assert_each_once(smtp_server, [e for e, _ in people(30)])


def test_temporary_refusals_are_retried_until_accepted(db, settings, smtp_server):
    add_subscribers(db, people(5))
    issue = create_sample_issue(db)
    smtp_server.script_rcpt(
        "reader0001@example.org", "451 4.7.1 greylisted", "452 4.2.2 full", "250"
    )
    smtp_server.script_data("reader0003@example.org", "454 4.7.0 Throttling", "250")
    summary = send_issue(db, settings, issue, SendOptions(retry=FAST))
    assert summary.complete and summary.failed == []
    assert_each_once(smtp_server, [e for e, _ in people(5)])
    attempts = dict(db.execute("SELECT email, attempts FROM deliveries").fetchall())
    assert attempts["reader0001@example.org"] == 3
    assert attempts["reader0003@example.org"] == 2
    assert attempts["reader0000@example.org"] == 1


def test_permanent_refusal_exits_3_with_the_list_and_retry_failed_sends_it(
    db, run_cli, smtp_server, smtp_env
):
    add_subscribers(db, people(4))
    issue = create_sample_issue(db)
    # Not about the address (that would be a hard bounce, see test_send_bounces.py).
    smtp_server.script_rcpt("reader0002@example.org", "554 5.6.0 message content rejected")
    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 3, result.output
    assert "reader0002@example.org  554 5.6.0 message content rejected" in result.output
    assert "1 of 4 recipients of 2026-W48 failed permanently" in result.output
    assert "--retry-failed" in result.output
    assert len(smtp_server.messages) == 3

    data = json.loads(run_cli("status", issue, "--json", env=smtp_env).output)
    assert data["counts"]["sent"] == 3 and data["counts"]["failed"] == 1
    assert data["failed"] == ["reader0002@example.org"]
    assert data["replies"] == {"reader0002@example.org": "554 5.6.0 message content rejected"}

    again = run_cli("send", issue, env=smtp_env)  # a plain rerun does not retry failures
    assert again.exit_code == 3 and len(smtp_server.messages) == 3

    smtp_server.script_rcpt("reader0002@example.org", "250")
    fixed = run_cli("send", issue, "--retry-failed", env=smtp_env)
    assert fixed.exit_code == 0, fixed.output
    assert_each_once(smtp_server, [e for e, _ in people(4)])


def test_rows_in_flight_at_a_crash_become_uncertain_and_are_resolved_on_purpose(
    db, run_cli, smtp_server, smtp_env, settings
):
    add_subscribers(db, people(6))
    issue = create_sample_issue(db)
    fix_ledger(db, issue)  # what a send does first, before any message
    # What a kill -9 leaves: two rows marked 'sending' whose outcome nobody recorded.
    db.execute(
        "UPDATE deliveries SET state = 'sending' WHERE email IN"
        " ('reader0001@example.org', 'reader0004@example.org')"
    )

    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 3, result.output
    assert "2 recipients were in flight" in result.output
    assert "--resend-uncertain" in result.output
    assert sorted(m.rcpt for m in smtp_server.messages) == sorted(
        e for e, _ in people(6) if e not in ("reader0001@example.org", "reader0004@example.org")
    )
    data = json.loads(run_cli("status", issue, "--json", env=smtp_env).output)
    assert data["uncertain"] == ["reader0001@example.org", "reader0004@example.org"]
    assert issue_store.get_issue(db, issue).status == "sending"

    rerun = run_cli("send", issue, env=smtp_env)  # still left alone without a decision
    assert rerun.exit_code == 3 and len(smtp_server.messages) == 4

    resend = run_cli("send", issue, "--resend-uncertain", env=smtp_env)
    assert resend.exit_code == 0, resend.output
    assert_each_once(smtp_server, [e for e, _ in people(6)])
    assert issue_store.get_issue(db, issue).status == "sent"


def test_skip_uncertain_marks_them_skipped_and_finishes(
    db, run_cli, smtp_server, smtp_env, settings
):
    add_subscribers(db, people(3))
    issue = create_sample_issue(db)
    fix_ledger(db, issue)
    db.execute("UPDATE deliveries SET state = 'sending' WHERE email = 'reader0000@example.org'")
    result = run_cli("send", issue, "--skip-uncertain", env=smtp_env)
    assert result.exit_code == 0, result.output
    assert sorted(m.rcpt for m in smtp_server.messages) == [
        "reader0001@example.org",
        "reader0002@example.org",
    ]
    assert states(db) == Counter({"sent": 2, "skipped": 1})
    assert issue_store.get_issue(db, issue).status == "sent"


def test_someone_who_unsubscribes_mid_send_is_skipped(db, settings, smtp_server):
    add_subscribers(db, people(3))
    issue = create_sample_issue(db)
    fix_ledger(db, issue)
    db.execute(
        "UPDATE subscribers SET status = 'unsubscribed' WHERE email = 'reader0002@example.org'"
    )
    summary = send_issue(db, settings, issue, SendOptions(retry=FAST))
    assert summary.complete
    assert smtp_server.to("reader0002@example.org") == []
    assert states(db) == Counter({"sent": 2, "skipped": 1})


@sqlite_only  # on PostgreSQL a second sender joins the send (tests/test_send_senders.py)
def test_a_second_send_on_the_same_database_is_refused_while_one_runs(db, settings):
    from dispatch.jobs.send import send_lock

    add_subscribers(db, people(1))
    issue = create_sample_issue(db)
    with send_lock(db), pytest.raises(SendError, match="Another `dispatch send` is running"):
        send_issue(db, settings, issue)


def test_status_tells_rows_in_flight_from_rows_left_by_a_stopped_send(db, run_cli, smtp_env):
    from dispatch.jobs.send import send_lock

    add_subscribers(db, people(2))
    issue = create_sample_issue(db)
    fix_ledger(db, issue)
    db.execute("UPDATE deliveries SET state = 'sending' WHERE email = 'reader0000@example.org'")
    stopped = run_cli("status", issue, env=smtp_env)
    assert "1 were in flight when a send stopped" in stopped.output
    with send_lock(db):
        running = run_cli("status", issue, env=smtp_env)
    assert "1 in flight now" in running.output
