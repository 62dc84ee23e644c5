"""The send under a misbehaving relay (the fault-injecting aiosmtpd of tests/plugins/smtp.py):
throttling above a rate, replies lost after the final dot, connections closed before it,
slow replies, no PIPELINING, rate limits, and DKIM on every message.

Assertions are on counts and order (who got how many copies, how many throttling replies and
where in the run they came), never on wall time.
"""

from __future__ import annotations

import json
from collections import Counter

import dkim
import pytest

from dispatch.jobs.send import SendOptions, send_issue
from dispatch.mailer import RetryPolicy
from dispatch.mailer.dkim import DkimSigner, generate_key
from dispatch.store import issues as issue_store
from dispatch.store import ledger
from tests.plugins.smtp import add_subscribers, create_sample_issue

FAST = RetryPolicy(base=0.01, maximum=0.1, give_up_after=20.0)


def people(n: int) -> list[tuple[str, str]]:
    return [(f"reader{i:04d}@example.org", f"Reader {i}") for i in range(n)]


def emails(n: int) -> list[str]:
    return [e for e, _ in people(n)]


@pytest.fixture
def settings(make_settings, smtp_env):
    return make_settings(**smtp_env)


def copies(smtp_server) -> Counter:
    return Counter(m.rcpt for m in smtp_server.messages)


def states(db) -> Counter:
    return Counter(r[0] for r in db.execute("SELECT state FROM deliveries"))


THROTTLE_STYLES = [
    ("454 4.7.0 Throttling failure: Maximum sending rate exceeded", "rcpt"),  # Amazon SES
    ("454 4.7.0 Throttling failure: Maximum sending rate exceeded", "mail"),
    ("421 4.7.0 Too many messages, closing connection", "mail"),
    ("451 4.7.1 Rate limit exceeded, try again later", "data"),  # after the whole message
]


@pytest.mark.parametrize(("reply", "at"), THROTTLE_STYLES)
def test_a_relay_that_throttles_above_r_is_converged_on_without_losing_anyone(
    db, settings, smtp_server, reply, at
):
    limit = 50.0  # well under what aiosmtpd and Dispatch manage on loopback
    n = 160
    add_subscribers(db, people(n))
    issue = create_sample_issue(db)
    smtp_server.throttle(limit, burst=4, reply=reply, at=at)
    summary = send_issue(db, settings, issue, SendOptions(concurrency=4, retry=FAST))

    assert summary.complete and summary.failed == [] and summary.uncertain == []
    assert copies(smtp_server) == Counter(emails(n))  # each exactly once, nobody lost
    throttled = smtp_server.throttled
    assert throttled >= 1  # it really ran into the limit...
    assert summary.throttled == throttled  # ...and saw every refusal as throttling
    # ...and slowed down instead of hammering the relay: a sender that only retried would be
    # refused several times per message. (How the rate settles near R is pinned down on a fake
    # clock in test_send_rates.py; wall-clock bounds here would make this test flaky.)
    assert throttled <= n, f"{throttled} refusals for {n} messages"
    assert summary.final_rate < 4 * limit
    # What it found is kept for this relay: next week's send starts near it.
    relay = f"127.0.0.1:{smtp_server.port}"
    assert 0 < ledger.relay_rate(db, relay) == pytest.approx(summary.learnt_rate, abs=0.01)


@pytest.mark.parametrize(("reply", "at"), THROTTLE_STYLES)
def test_a_throttled_message_goes_back_at_once_not_after_the_retry_backoff(
    db, settings, smtp_server, reply, at
):
    """Throttling says "slower", not "this message later": the pace absorbs the wait. With a
    10-minute backoff, a run that parked throttled messages would accept nothing for the 3 s
    it may stay idle and give up; one that requeues them finishes."""
    n = 40
    add_subscribers(db, people(n))
    issue = create_sample_issue(db)
    smtp_server.throttle(40.0, burst=2, reply=reply, at=at)
    slow = RetryPolicy(base=600.0, maximum=600.0, give_up_after=3.0)
    summary = send_issue(db, settings, issue, SendOptions(concurrency=4, retry=slow))
    assert summary.complete and summary.throttled >= 1
    assert copies(smtp_server) == Counter(emails(n))


def test_the_rate_learnt_last_time_starts_the_next_send(db, settings, smtp_server):
    add_subscribers(db, people(12))
    issue = create_sample_issue(db)
    relay = f"127.0.0.1:{smtp_server.port}"
    ledger.save_relay_rate(db, relay, 30.0)  # what last week's send found
    summary = send_issue(db, settings, issue, SendOptions(concurrency=2, retry=FAST))
    assert summary.complete and summary.throttled == 0
    # Nothing throttled, so nothing new was found: a send that had not started from the
    # learnt pace would know no rate at all (0) and keep none.
    assert summary.learnt_rate >= 30.0
    assert ledger.relay_rate(db, relay) >= 30.0


def test_reply_lost_after_the_final_dot_is_uncertain_not_resent(db, run_cli, smtp_server, smtp_env):
    add_subscribers(db, people(6))
    issue = create_sample_issue(db)
    smtp_server.script_data("reader0002@example.org", "ACCEPT+CLOSE", "250")  # arrived
    smtp_server.script_data("reader0004@example.org", "CLOSE", "250")  # lost with the line
    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 3, result.output
    assert "2 messages went out but the relay's reply was lost" in result.output
    assert copies(smtp_server) == Counter(e for e in emails(6) if e != "reader0004@example.org")

    status = run_cli("status", issue, env=smtp_env)
    assert "Uncertain (2):" in status.output and "--skip-uncertain" in status.output
    assert "reader0002@example.org  in doubt" in status.output
    data = json.loads(run_cli("status", issue, "--json", env=smtp_env).output)
    assert data["uncertain"] == ["reader0002@example.org", "reader0004@example.org"]
    assert data["status"] == "sending"

    again = run_cli("send", issue, env=smtp_env)  # a plain rerun never resends them
    assert again.exit_code == 3 and len(smtp_server.messages) == 5

    resend = run_cli("send", issue, "--resend-uncertain", env=smtp_env)
    assert resend.exit_code == 0, resend.output
    # The editor chose to resend: the lost one now has its copy, the other got a second.
    assert copies(smtp_server)["reader0004@example.org"] == 1
    assert copies(smtp_server)["reader0002@example.org"] == 2
    assert issue_store.get_issue(db, issue).status == "sent"


def test_skip_uncertain_after_a_lost_reply_mails_nobody_twice(db, run_cli, smtp_server, smtp_env):
    add_subscribers(db, people(3))
    issue = create_sample_issue(db)
    smtp_server.script_data("reader0001@example.org", "ACCEPT+CLOSE", "250")
    assert run_cli("send", issue, env=smtp_env).exit_code == 3
    skip = run_cli("send", issue, "--skip-uncertain", env=smtp_env)
    assert skip.exit_code == 0, skip.output
    assert copies(smtp_server) == Counter(emails(3))
    assert states(db) == Counter({"sent": 2, "skipped": 1})


def test_connection_closed_before_the_final_dot_is_retried_safely(db, settings, smtp_server):
    add_subscribers(db, people(8))
    issue = create_sample_issue(db)
    smtp_server.script_rcpt("reader0003@example.org", "CLOSE", "CLOSE", "250")
    smtp_server.script_data("reader0005@example.org", "451 4.3.0 try again", "250")
    smtp_server.script_rcpt("reader0006@example.org", "550 5.1.1 no such user")
    summary = send_issue(db, settings, issue, SendOptions(concurrency=2, retry=FAST))
    assert copies(smtp_server) == Counter(e for e in emails(8) if e != "reader0006@example.org")
    assert summary.uncertain == []
    assert summary.failed == []  # a hard bounce: named apart, its reader bounced
    assert summary.bounced == [("reader0006@example.org", "550 5.1.1 no such user")]
    attempts = dict(db.execute("SELECT email, attempts FROM deliveries").fetchall())
    assert attempts["reader0003@example.org"] == 3
    assert attempts["reader0005@example.org"] == 2


def test_slow_replies_and_a_relay_without_pipelining(db, settings, smtp_server):
    add_subscribers(db, people(12))
    issue = create_sample_issue(db)
    smtp_server.handler.pipelining = False
    smtp_server.handler.slow_data = 0.05
    smtp_server.handler.slow_mail = 0.01
    smtp_server.script_rcpt("reader0007@example.org", "452 4.2.2 over quota", "250")
    summary = send_issue(db, settings, issue, SendOptions(concurrency=3, retry=FAST))
    assert summary.complete
    assert copies(smtp_server) == Counter(emails(12))


def test_global_rate_spaces_messages(db, settings, smtp_server):
    add_subscribers(db, people(12))
    issue = create_sample_issue(db)
    stamps: list[float] = []
    original = smtp_server.handler.handle_MAIL

    async def stamped(server, session, envelope, address, options):
        import time

        stamps.append(time.monotonic())
        return await original(server, session, envelope, address, options)

    smtp_server.handler.handle_MAIL = stamped
    summary = send_issue(db, settings, issue, SendOptions(concurrency=4, rate=20, retry=FAST))
    assert summary.complete and copies(smtp_server) == Counter(emails(12))
    # A lower bound only (a slow machine can only make the gaps longer): 12 messages at 20/s
    # with bursts of one take at least 11 intervals.
    assert stamps[-1] - stamps[0] >= 11 / 20 * 0.9


def test_rate_per_connection_spaces_each_connections_messages(
    db, make_settings, smtp_env, smtp_server
):
    add_subscribers(db, people(8))
    issue = create_sample_issue(db)
    settings = make_settings(**smtp_env, DISPATCH_SMTP_RATE_PER_CONNECTION="10")
    stamps: dict[int, list[float]] = {}
    original = smtp_server.handler.handle_MAIL

    async def stamped(server, session, envelope, address, options):
        import time

        stamps.setdefault(id(session), []).append(time.monotonic())
        return await original(server, session, envelope, address, options)

    smtp_server.handler.handle_MAIL = stamped
    summary = send_issue(db, settings, issue, SendOptions(concurrency=2, retry=FAST))
    assert summary.complete and copies(smtp_server) == Counter(emails(8))
    for times in stamps.values():  # lower bounds only, per connection
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(gap >= 0.1 * 0.8 for gap in gaps), gaps


def test_every_message_is_dkim_signed_when_configured(
    db, make_settings, smtp_env, smtp_server, tmp_path
):
    pem = generate_key("rsa", 2048)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(pem)
    settings = make_settings(
        **smtp_env,
        DISPATCH_DKIM_DOMAIN="outlet.test",
        DISPATCH_DKIM_SELECTOR="news2026",
        DISPATCH_DKIM_KEY_FILE=str(key_file),
    )
    record = DkimSigner("outlet.test", "news2026", pem).dns_record().encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:  # DNS: the one thing not local
        assert name == b"news2026._domainkey.outlet.test."
        return record

    add_subscribers(db, people(5))
    issue = create_sample_issue(db)
    summary = send_issue(db, settings, issue, SendOptions(retry=FAST))
    assert summary.complete and len(smtp_server.messages) == 5
    for message in smtp_server.messages:
        assert message.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
        assert dkim.verify(message.data, dnsfunc=dnsfunc), message.rcpt


def test_a_crash_of_dispatch_itself_while_data_goes_out_leaves_the_row_uncertain(
    db, settings, smtp_server, monkeypatch
):
    """A bug (not the relay) raising after a message's data started to go: the run stops,
    and that row is in doubt, not pending (a rerun must not resend it on its own)."""
    from dispatch.errors import SendError
    from dispatch.mailer import connection

    add_subscribers(db, people(5))
    issue = create_sample_issue(db)
    real_send = connection.SmtpConnection.send

    def send(self, sender, recipient, data, gate=None, dot_safe=False):
        if recipient == "reader0002@example.org":  # a bug strikes right after the gate
            assert gate is not None and gate()
            raise RuntimeError("boom")
        return real_send(self, sender, recipient, data, gate=gate, dot_safe=dot_safe)

    monkeypatch.setattr(connection.SmtpConnection, "send", send)
    with pytest.raises(SendError, match="boom"):
        send_issue(db, settings, issue, SendOptions(concurrency=1, retry=FAST))
    assert states(db)["uncertain"] == 1
    row = db.execute("SELECT state FROM deliveries WHERE email = 'reader0002@example.org'")
    assert row.fetchone()[0] == "uncertain"
    monkeypatch.setattr(connection.SmtpConnection, "send", real_send)
    rerun = send_issue(db, settings, issue, SendOptions(retry=FAST))
    assert smtp_server.to("reader0002@example.org") == []  # left for the editor to decide
    assert rerun.uncertain == [("reader0002@example.org", "in doubt: boom")]


def test_a_sending_quota_refusal_stops_the_run_instead_of_failing_everyone(
    db, run_cli, smtp_server, smtp_env
):
    """A 5xx about the sending account is not about the reader (listmonk #2273)."""
    add_subscribers(db, people(30))
    issue = create_sample_issue(db)
    smtp_server.script_data("reader0005@example.org", "550 5.4.5 Daily user sending quota exceeded")
    result = run_cli("send", issue, "--concurrency", "1", env=smtp_env)
    assert result.exit_code == 1, result.output
    assert "quota exceeded" in result.output and "rerun to resume" in result.output
    counts = states(db)
    assert counts["failed"] == 0 and counts["pending"] >= 1
    assert issue_store.get_issue(db, issue).status == "sending"

    smtp_server.data_scripts.clear()  # the provider raised the quota
    again = run_cli("send", issue, env=smtp_env)
    assert again.exit_code == 0, again.output
    assert copies(smtp_server) == Counter(emails(30))  # everyone once, nobody lost


def test_a_garbled_reply_to_the_final_dot_is_uncertain_not_resent(
    db, run_cli, smtp_server, smtp_env
):
    add_subscribers(db, people(4))
    issue = create_sample_issue(db)
    smtp_server.script_data("reader0001@example.org", "25O 2.0.0 queued")
    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 3, result.output
    assert json.loads(run_cli("status", issue, "--json", env=smtp_env).output)["uncertain"] == [
        "reader0001@example.org"
    ]
    assert run_cli("send", issue, env=smtp_env).exit_code == 3  # a plain rerun never resends
    assert smtp_server.rcpt_attempts["reader0001@example.org"] == 1
