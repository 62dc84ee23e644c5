"""Issue 12, items 2-4, against the real aiosmtpd fixture: hard bounces during the send, list
sends without one-click unsubscribe, the STARTTLS error's advice, and the send's lock file."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from dispatch.config import Secret
from dispatch.errors import SendError
from dispatch.jobs import send as send_job
from dispatch.jobs.send import SendOptions, send_issue, send_lock
from dispatch.mailer import RetryPolicy, SmtpConnection
from dispatch.mailer.connection import is_hard_bounce
from dispatch.mailer.url import SmtpTarget
from dispatch.store import subscribers as subscriber_store
from dispatch.store.sendlock import send_running
from tests.conftest import sqlite_only
from tests.plugins.smtp import add_subscribers, create_sample_issue

FAST = RetryPolicy(base=0.01, maximum=0.05, give_up_after=2.0)


def people(n: int) -> list[tuple[str, str]]:
    return [(f"reader{i:04d}@example.org", f"Reader {i}") for i in range(n)]


def status_of(db, email: str) -> str:
    return db.execute("SELECT status FROM subscribers WHERE email = ?", (email,)).fetchone()[0]


# -- hard bounces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reply", "bounce"),
    [
        (550, "5.1.1 <x@example.org>: Recipient address rejected: User unknown", True),
        (550, "Requested action not taken: mailbox unavailable", True),
        (550, "5.2.1 The email account that you tried to reach is disabled", True),
        (553, "5.1.10 Recipient address has null MX", True),
        (550, "5.7.1 Message rejected due to policy", False),  # about the sender or content
        (552, "5.2.2 Mailbox full, quota exceeded", False),
        (554, "5.6.0 Message content rejected", False),
        (553, "5.1.8 Bad sender's system address", False),  # the sender's, not the reader's
        (450, "4.1.1 user unknown, try later", False),  # temporary is temporary
    ],
)
def test_which_permanent_refusals_are_hard_bounces(code, reply, bounce):
    assert is_hard_bounce(code, reply) is bounce


def test_a_hard_bounce_marks_the_reader_bounced_at_once_and_the_next_send_exits_0(
    db, run_cli, smtp_server, smtp_env
):
    add_subscribers(db, people(5))
    issue = create_sample_issue(db)
    smtp_server.script_rcpt("reader0001@example.org", "550 5.1.1 user unknown")
    smtp_server.script_data("reader0003@example.org", "550 mailbox unavailable")
    smtp_server.script_rcpt("reader0004@example.org", "554 5.6.0 Message content rejected")

    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 3, result.output
    assert "Bounced now" in result.output
    assert "reader0001@example.org  550 5.1.1 user unknown" in result.output
    assert "reader0003@example.org  550 mailbox unavailable" in result.output
    assert status_of(db, "reader0001@example.org") == "bounced"  # at once, by this send
    assert status_of(db, "reader0003@example.org") == "bounced"
    # A refusal that says nothing about the address is a failure to look at, not a bounce.
    assert status_of(db, "reader0004@example.org") == "active"
    assert "1 of 5 recipients of 2026-W48 failed permanently" in result.output

    data = json.loads(run_cli("status", issue, "--json", env=smtp_env).output)
    assert data["failed"] == ["reader0004@example.org"]

    smtp_server.script_rcpt("reader0004@example.org", "250")
    fixed = run_cli("send", issue, "--retry-failed", env=smtp_env)
    assert fixed.exit_code == 0, fixed.output  # the bounced ones are no longer a failure
    assert "2 refused for good earlier" in fixed.output
    counts = Counter(m.rcpt for m in smtp_server.messages)
    assert "reader0001@example.org" not in counts and "reader0003@example.org" not in counts
    assert counts["reader0004@example.org"] == 1

    again = run_cli("send", issue, env=smtp_env)
    assert again.exit_code == 0, again.output


def test_hard_bounces_alone_exit_3_naming_them_then_0(db, run_cli, smtp_server, smtp_env):
    add_subscribers(db, people(3))
    issue = create_sample_issue(db)
    smtp_server.script_rcpt("reader0002@example.org", "550 5.1.1 no such user")
    first = run_cli("send", issue, "--json", env=smtp_env)
    assert first.exit_code == 3, first.output
    summary, _ = json.JSONDecoder().raw_decode(first.output[first.output.index("{") :])
    assert summary["bounced_now"] == ["reader0002@example.org"]
    assert run_cli("send", issue, env=smtp_env).exit_code == 0
    subscriber = subscriber_store.get_subscriber(db, "reader0002@example.org")
    assert subscriber is not None and subscriber.status == "bounced"


def test_an_account_level_refusal_still_stops_the_run_and_bounces_nobody(
    db, run_cli, smtp_server, smtp_env
):
    add_subscribers(db, people(4))
    issue = create_sample_issue(db)
    smtp_server.script_rcpt("reader0001@example.org", "550 5.7.1 Daily sending quota exceeded")
    result = run_cli("send", issue, "--concurrency", "1", env=smtp_env)
    assert result.exit_code == 1, result.output
    assert all(status_of(db, e) == "active" for e, _ in people(4))


# -- one-click unsubscribe --------------------------------------------------------------------


def test_a_list_send_without_an_https_unsubscribe_url_warns_naming_the_setting(
    db, run_cli, smtp_server, smtp_env
):
    add_subscribers(db, people(2))
    issue = create_sample_issue(db)
    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 0, result.output
    assert "DISPATCH_PUBLIC_URL is not set" in result.output
    assert len(smtp_server.messages) == 2


def test_a_big_list_without_one_click_is_refused_unless_asked_for(
    db, run_cli, smtp_server, smtp_env, monkeypatch, tmp_path
):
    # The limit (5,000) lowered so that the test sends 4 messages, not 5,001.
    monkeypatch.setattr(send_job, "ONE_CLICK_LIMIT", 3)
    add_subscribers(db, people(4))
    issue = create_sample_issue(db)
    refused = run_cli("send", issue, env=smtp_env)
    assert refused.exit_code == 1, refused.output
    assert "DISPATCH_PUBLIC_URL" in refused.output
    assert "--without-one-click-unsubscribe" in refused.output
    assert smtp_server.messages == []
    assert db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0  # nothing fixed

    # Test copies and dry runs are not list sends.
    assert run_cli("send", issue, "--to", "me@example.org", env=smtp_env).exit_code == 0
    dry = run_cli("send", issue, "--dry-run", str(tmp_path / "out"), env=smtp_env)
    assert dry.exit_code == 0, dry.output
    assert len(list((tmp_path / "out").glob("*.eml"))) == 4
    sent = run_cli("send", issue, "--without-one-click-unsubscribe", env=smtp_env)
    assert sent.exit_code == 0, sent.output
    assert len(smtp_server.messages) == 5


def test_with_an_https_public_url_there_is_no_warning(db, run_cli, smtp_server, smtp_env):
    add_subscribers(db, people(2))
    issue = create_sample_issue(db)
    env = {**smtp_env, "DISPATCH_PUBLIC_URL": "https://news.example.org"}
    result = run_cli("send", issue, env=env)
    assert result.exit_code == 0, result.output
    assert "DISPATCH_PUBLIC_URL" not in result.output


# -- STARTTLS advice ------------------------------------------------------------------------


def test_no_starttls_with_a_password_names_starttls_never_and_what_the_relay_offered(
    smtp_server,
):
    # What parse_smtp_url makes of smtp://user:pass@relay.example.org (STARTTLS required)
    # but pointing at the fixture, which offers no STARTTLS.
    target = SmtpTarget(
        "127.0.0.1", smtp_server.port, starttls="require", username="u", password=Secret("pw")
    )
    with pytest.raises(SendError) as caught:
        SmtpConnection(target, timeout=5).open()
    text = f"{caught.value.message} {caught.value.hint}"
    assert "?starttls=never" in text
    assert "PIPELINING" in text  # what its EHLO offered
    assert "drop ?starttls=require" not in text
    assert "pw" not in text


# -- the lock file ----------------------------------------------------------------------------


def lock_file(db) -> Path:
    return Path(f"{Path(db.path).resolve()}.send-lock")


def test_the_send_lock_file_is_removed_after_a_send(db, make_settings, smtp_server, smtp_env):
    add_subscribers(db, people(2))
    issue = create_sample_issue(db)
    summary = send_issue(db, make_settings(**smtp_env), issue, SendOptions(retry=FAST))
    assert summary.complete
    assert not lock_file(db).exists()
    assert not send_running(db) and not lock_file(db).exists()  # status creates none


@sqlite_only  # the lock file (PostgreSQL: test_store_postgres)
def test_a_stale_lock_file_from_a_killed_send_neither_blocks_nor_counts_as_running(
    db, make_settings, smtp_server, smtp_env
):
    add_subscribers(db, people(2))
    issue = create_sample_issue(db)
    lock_file(db).write_text("")  # what a kill -9 leaves: the file, no lock (the OS dropped it)
    assert not send_running(db)
    summary = send_issue(db, make_settings(**smtp_env), issue, SendOptions(retry=FAST))
    assert summary.complete and not lock_file(db).exists()


@sqlite_only  # the lock file (PostgreSQL: test_store_postgres)
def test_the_lock_still_excludes_a_second_send_while_held(db):
    with send_lock(db):
        assert lock_file(db).exists() and send_running(db)
        with (
            pytest.raises(SendError, match="Another `dispatch send` is running"),
            send_lock(db),
        ):
            pass
        assert lock_file(db).exists()  # the refused one removed nothing
    assert not lock_file(db).exists()
