"""kill -9 in the middle of a real `python -m dispatch send`, then the same command again.

The send runs as a subprocess against the in-process SMTP server, slowed down (each reply to
the final dot comes 100 ms after the message was stored) so that the kill lands with messages
in flight. Afterwards every recipient has exactly one copy, except the rows marked uncertain:
at most one per connection, each with zero or one copy, listed by `status`, and resolved only
by --skip-uncertain or --resend-uncertain.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from dispatch.store import issues as issue_store
from dispatch.store import journal
from tests.conftest import sqlite_only
from tests.plugins.processes import CHILD_CONCURRENCY as CONCURRENCY
from tests.plugins.processes import dispatch
from tests.plugins.smtp import add_subscribers, create_sample_issue

N = 60


def people(n: int) -> list[tuple[str, str]]:
    return [(f"reader{i:04d}@example.org", f"Reader {i}") for i in range(n)]


def row_states(db) -> dict[str, str]:
    return dict(db.execute("SELECT email, state FROM deliveries").fetchall())


@pytest.mark.parametrize(
    ("kill_after", "resolve"),
    [(1, "--skip-uncertain"), (17, "--resend-uncertain"), (41, "--skip-uncertain")],
)
def test_kill_9_midway_then_rerun_mails_everyone_once_except_the_uncertain(
    db, smtp_server, child_env, kill_after, resolve
):
    add_subscribers(db, people(N))
    issue = create_sample_issue(db)
    smtp_server.handler.slow_data = 0.1

    proc = dispatch(child_env, "send", issue, wait=False)
    deadline = time.monotonic() + 60
    while len(smtp_server.messages) < kill_after:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "the send never got going"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    at_kill = Counter(m.rcpt for m in smtp_server.messages)
    assert kill_after <= sum(at_kill.values()) < N  # it really died midway
    ids = journal.in_flight(db)  # what the send journal says was going out
    # ... and has no outcome for in the database; on PostgreSQL the database knows too: a row
    # is 'sending' there from just before its journal line until its outcome, written just
    # before the journal's (a kill in between leaves the two a line apart).
    in_flight = [
        e
        for (i, e, state) in db.execute("SELECT id, email, state FROM deliveries")
        if (i in ids and state == "pending") or state == "sending"
    ]
    # Only rows whose bytes were going out; at least the one just stored, whose reply was
    # still 100 ms away when the kill came.
    assert 1 <= len(in_flight) <= CONCURRENCY
    stopped = dispatch(child_env, "status", issue)
    assert f"{len(in_flight)} were in flight when a send stopped" in stopped.stdout.read()

    rerun = dispatch(child_env, "send", issue)
    output = rerun.stdout.read() if rerun.stdout else ""
    states = row_states(db)
    uncertain = sorted(e for e, s in states.items() if s == "uncertain")
    assert sorted(in_flight) == uncertain  # exactly the rows in flight at the kill
    assert rerun.returncode == (3 if uncertain else 0), output
    got = Counter(m.rcpt for m in smtp_server.messages)
    for email, _ in people(N):
        if email in uncertain:
            assert got[email] in (0, 1), email  # maybe it arrived, never twice
        else:
            assert got[email] == 1 and states[email] == "sent", email

    status = dispatch(child_env, "status", issue, "--json")
    data = json.loads(status.stdout.read() if status.stdout else "")
    assert data["uncertain"] == uncertain
    assert data["status"] == ("sending" if uncertain else "sent")

    before = Counter(m.rcpt for m in smtp_server.messages)
    final = dispatch(child_env, "send", issue, resolve)
    assert final.returncode == 0, final.stdout.read() if final.stdout else ""
    after = Counter(m.rcpt for m in smtp_server.messages)
    assert issue_store.get_issue(db, issue).status == "sent"
    for email, _ in people(N):
        expected = before[email] + (
            1 if email in uncertain and resolve == "--resend-uncertain" else 0
        )
        assert after[email] == expected, email
    if resolve == "--skip-uncertain":
        assert all(row_states(db)[e] == "skipped" for e in uncertain)


@sqlite_only  # moves the SQLite file
def test_a_database_moved_after_a_kill_without_its_journal_resends_nobody(
    db, db_path, smtp_server, child_env, tmp_path
):
    """The journal held what was not yet committed; the marker in the database remembers how
    far the killed send had got, so without the journal those rows are uncertain, not resent."""
    add_subscribers(db, people(N))
    issue = create_sample_issue(db)
    db.close()
    smtp_server.handler.slow_data = 0.1
    proc = dispatch(child_env, "send", issue, wait=False)
    deadline = time.monotonic() + 60
    while len(smtp_server.messages) < 20:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    moved = tmp_path / "elsewhere" / "news.sqlite3"
    moved.parent.mkdir()
    for suffix in ("", "-wal", "-shm"):  # the database, but not its .journal folder
        source = db_path.with_name(db_path.name + suffix)
        if source.exists():
            source.rename(moved.with_name(moved.name + suffix))
    env = {**child_env, "DISPATCH_DB": str(moved)}
    smtp_server.handler.slow_data = 0
    rerun = dispatch(env, "send", issue)
    output = rerun.stdout.read() if rerun.stdout else ""
    assert rerun.returncode == 3, output  # some rows are uncertain
    got = Counter(m.rcpt for m in smtp_server.messages)
    assert max(got.values()) == 1, "somebody was mailed twice"
    status = json.loads(dispatch(env, "status", issue, "--json").stdout.read())
    assert status["uncertain"], "the rows the lost journal knew about must be in doubt"
    missing = {e for e, _ in people(N)} - set(got) - set(status["uncertain"])
    assert not missing, f"skipped: {sorted(missing)}"
