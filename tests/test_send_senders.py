"""Several senders on one PostgreSQL ledger (issue 15): real `python -m dispatch send`
processes against one database and the in-process SMTP server, each with a journal folder of
its own (standing in for its machine). Started together they share the list; one killed with
SIGKILL, or frozen with SIGSTOP past its lease, is taken over by the others; nobody is mailed
twice, and only what the lost sender had going out is left in doubt.

PostgreSQL only (SQLite keeps one sender per database: tests/test_send_faults.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from dispatch.errors import ExitStatus
from dispatch.store import journal
from tests.conftest import postgres_only
from tests.plugins.processes import dispatch, output
from tests.plugins.smtp import add_subscribers, create_sample_issue

pytestmark = postgres_only

N = 300
CONCURRENCY = 2  # per sender: at most this many of a lost sender's rows can be in doubt
SLOW = 0.1  # seconds the relay takes to answer each message: 20 messages/s per sender


@pytest.fixture
def readers(db, smtp_server) -> str:
    add_subscribers(db, [(f"reader{i:04d}@example.org", f"Reader {i}") for i in range(N)])
    smtp_server.handler.slow_data = SLOW
    return create_sample_issue(db)


def start(child_env: dict[str, str], tmp_path: Path, name: str, **env: str) -> subprocess.Popen:
    """One sender on its own "machine" (its own journal folder)."""
    folder = tmp_path / name
    folder.mkdir()
    settings = {
        **child_env,
        "DISPATCH_JOURNAL_DIR": str(folder),
        "DISPATCH_SMTP_CONCURRENCY": str(CONCURRENCY),
        **env,
    }
    return dispatch(settings, "send", "2026-W48", wait=False)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    proc.wait(timeout=timeout)
    return proc.returncode, output(proc)


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def ledger(db) -> dict[str, tuple[str, str]]:
    return {
        e: (s, r or "") for e, s, r in db.execute("SELECT email, state, last_reply FROM deliveries")
    }


def senders(db) -> list[tuple[int, str, int]]:
    return [
        (pid, state, sent)
        for pid, state, sent in db.execute(
            "SELECT pid, state, sent FROM send_senders ORDER BY started_at"
        )
    ]


def copies(smtp_server) -> Counter:
    return Counter(m.rcpt for m in smtp_server.messages)


def test_senders_started_together_share_the_list_and_mail_everyone_once(
    db, smtp_server, child_env, readers, tmp_path
):
    procs = [start(child_env, tmp_path, f"host{n}") for n in range(3)]
    results = [finish(proc) for proc in procs]
    assert [code for code, _ in results] == [ExitStatus.OK] * 3, results

    got = copies(smtp_server)
    assert len(got) == N and set(got.values()) == {1}  # everyone, once
    assert Counter(state for state, _ in ledger(db).values()) == {"sent": N}
    assert db.execute("SELECT status FROM issues").fetchone()[0] == "sent"
    shares = senders(db)
    assert sorted(proc.pid for proc in procs) == sorted(pid for pid, _, _ in shares)
    assert {state for _, state, _ in shares} == {"finished"}
    assert sum(sent for _, _, sent in shares) == N
    # A fair share: the list split by what each could send, none left idle while others
    # worked (each carries at least half of an equal share, start-up skew allowed for).
    assert min(sent for _, _, sent in shares) >= N / 3 / 2, shares
    status = dispatch(child_env, "status", "2026-W48")
    assert status.wait(timeout=60) == ExitStatus.OK
    shown = output(status)
    for proc in procs:  # who carried what
        assert f"(pid {proc.pid}) finished" in shown, shown
    for n in range(3):  # every journal settled and removed
        assert not list((tmp_path / f"host{n}").rglob("*.log"))


def test_a_sender_killed_midway_is_taken_over_and_nobody_is_mailed_twice(
    db, smtp_server, child_env, readers, tmp_path
):
    procs = [start(child_env, tmp_path, f"host{n}") for n in range(3)]
    victim = procs[1]
    wait_for(lambda: len(smtp_server.messages) >= N // 3, "the senders never got going")
    wait_for(lambda: any(pid == victim.pid for pid, _, _ in senders(db)), "never joined")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    killed_at = time.monotonic()
    in_doubt_at_kill = {
        email
        for (email,) in db.execute(
            "SELECT d.email FROM deliveries d JOIN send_senders s ON s.id = d.sender"
            " WHERE s.pid = ? AND d.state = 'sending'",
            (victim.pid,),
        )
    }
    assert len(in_doubt_at_kill) <= CONCURRENCY  # only what it had going out

    others = [finish(proc) for proc in (procs[0], procs[2])]
    assert time.monotonic() - killed_at < 60  # taken over at once: its lock died with it
    states = ledger(db)
    uncertain = {email for email, (state, _) in states.items() if state == "uncertain"}
    assert uncertain == in_doubt_at_kill
    for code, out in others:  # in doubt is a partial send: listed, resolved only on purpose
        assert code == (ExitStatus.PARTIAL if uncertain else ExitStatus.OK), out
    for email, (_state, reply) in states.items():
        if email in uncertain:
            assert reply == journal.TAKEN_OVER
        else:
            assert states[email][0] == "sent", email
    got = copies(smtp_server)
    for n in range(N):
        email = f"reader{n:04d}@example.org"
        assert got[email] == 1 or (email in uncertain and got[email] == 0), email
    assert {pid: state for pid, state, _ in senders(db)}[victim.pid] == "taken_over"

    # The killed sender's machine runs the send again: its journal, which no other machine
    # could read, is applied and removed; the rows in doubt stay in doubt (each outcome went to
    # the database before the journal, so the journal knew no more), and are resolved on purpose.
    machine = {**child_env, "DISPATCH_JOURNAL_DIR": str(tmp_path / "host1")}
    assert list((tmp_path / "host1").rglob("*.log"))
    code, out = finish(dispatch(machine, "send", "2026-W48", wait=False))
    assert code == (ExitStatus.PARTIAL if uncertain else ExitStatus.OK), out
    assert not list((tmp_path / "host1").rglob("*.log"))
    assert {e for e, (s, _) in ledger(db).items() if s == "uncertain"} == uncertain
    code, out = finish(dispatch(machine, "send", "2026-W48", "--skip-uncertain", wait=False))
    assert code == ExitStatus.OK, out
    assert db.execute("SELECT status FROM issues").fetchone()[0] == "sent"
    assert copies(smtp_server) == got  # nobody mailed by the reruns


def test_a_sender_frozen_past_its_lease_is_taken_over_and_sends_nothing_twice(
    db, smtp_server, child_env, readers, tmp_path
):
    """SIGSTOP: the process lives (its connection and lock too) but renews nothing, like a
    machine that hangs. After its lease the other takes over; woken, it finds its rows gone
    and stops without sending any of them."""
    lease = {"DISPATCH_SEND_LEASE": "3"}
    frozen = start(child_env, tmp_path, "hostA", **lease)
    wait_for(lambda: len(smtp_server.messages) >= 20, "the first sender never got going")
    other = start(child_env, tmp_path, "hostB", **lease)
    wait_for(lambda: len(smtp_server.messages) >= 60, "the second sender never joined")
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        code, out = finish(other, timeout=90)
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    doubted = {e for e, (s, _) in ledger(db).items() if s == "uncertain"}  # by the takeover
    assert code == (ExitStatus.PARTIAL if doubted else ExitStatus.OK), out
    assert len(doubted) <= CONCURRENCY
    woken, woken_out = finish(frozen)
    # Woken, it finished the messages it had going out and its journal recorded their replies:
    # the rows doubted at the takeover get their true outcome.
    states = ledger(db)
    uncertain = {email for email, (state, _) in states.items() if state == "uncertain"}
    assert uncertain <= doubted
    assert woken == ExitStatus.ERROR and "taken over by another sender" in woken_out, woken_out
    got = copies(smtp_server)
    for n in range(N):
        email = f"reader{n:04d}@example.org"
        if email in uncertain:  # it may have gone out when the frozen one woke
            assert got[email] in (0, 1), email
        else:
            assert got[email] == 1 and states[email][0] == "sent", email
    assert {pid: state for pid, state, _ in senders(db)}[frozen.pid] == "taken_over"


# -- the rules, in one process: senders driven directly (each with its own connections) -------


def fixed_ledger(db, n: int = 20) -> str:
    from dispatch.store import ledger as ledger_store

    add_subscribers(db, [(f"r{i}@example.org", f"R {i}") for i in range(n)])
    issue = create_sample_issue(db)
    ledger_store.fix_deliveries(db, issue, {}, "non_donor")
    return issue


def open_rows_held(db) -> int:
    return db.execute(
        "SELECT COUNT(*) FROM deliveries WHERE sender IS NOT NULL"
        " AND state IN ('pending', 'sending')"
    ).fetchone()[0]


def test_a_sender_taken_over_claims_and_marks_nothing_more(db, tmp_path):
    """Paused past its lease and taken over, a sender that wakes must not go on: its claims
    and marks are fenced on its own registration, so it cannot leave rows in its name that no
    one would settle once it dies."""
    from dispatch.store import senders as shared

    issue = fixed_ledger(db)
    paused = shared.Sender(db, issue, "relay:25", str(tmp_path / "a"))
    other = shared.Sender(db, issue, "relay:25", str(tmp_path / "b"))
    paused.start()
    other.start()
    marker = shared.Marker(db, paused)
    try:
        rows, _ = paused.claim(5)
        assert marker.mark(rows[0].id)  # going out when it froze
        db.execute("UPDATE send_senders SET lease_until = 0 WHERE id = ?", (paused.id,))
        assert shared.take_over(db, issue) == 1  # its in-flight row; its 4 others are free
        assert paused.claim(5) == ([], 0)  # woken: nothing more for it
        assert not paused.still_running()
        assert not marker.mark(rows[1].id)
        assert not marker.result(rows[0].id, "sent", "250 ok")  # taken over: in doubt now
        assert open_rows_held(db) == 0
        got, _ = other.claim(100)
        assert len(got) == 19  # everything but the one in doubt
    finally:
        marker.close()
        paused.stop()
        other.stop()


def test_a_mark_cannot_slip_between_the_steps_of_a_take_over(db, tmp_path, monkeypatch):
    """take_over marks the dead sender's row, then settles its rows: a mark by that sender
    arriving in between waits for the first step and then refuses (FOR SHARE on its row)."""
    from dispatch.store import senders as shared
    from dispatch.store.postgres import PgConnection

    issue = fixed_ledger(db)
    slow = shared.Sender(db, issue, "relay:25", str(tmp_path / "a"))
    slow.start()
    marker = shared.Marker(db, slow)
    try:
        rows, _ = slow.claim(5)
        db.execute("UPDATE send_senders SET lease_until = 0 WHERE id = ?", (slow.id,))
        marks: list[bool] = []
        original = PgConnection.execute

        def execute(self, sql, params=()):
            cursor = original(self, sql, params)
            if "SET state = 'taken_over'" in sql:  # between the steps, the sender's thread
                import threading

                thread = threading.Thread(target=lambda: marks.append(marker.mark(rows[0].id)))
                thread.start()
                thread.join(0.5)  # it waits for this transaction...
                assert thread.is_alive()
            return cursor

        monkeypatch.setattr(PgConnection, "execute", execute)
        shared.take_over(db, issue)
        monkeypatch.setattr(PgConnection, "execute", original)
        deadline = time.monotonic() + 10
        while not marks and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marks == [False]  # ... then refuses
        assert open_rows_held(db) == 0  # nothing left in a dead sender's name
    finally:
        marker.close()
        slow.stop()


def test_a_dead_senders_journal_does_not_touch_a_row_another_sender_holds(db, tmp_path):
    """A row a dead sender's journal says was going out, freed since and now in another live
    sender's hands (the dead one wrote a retry to the database, then died before its journal
    line), is the live sender's: recovery leaves it alone."""
    from dispatch.store import senders as shared

    issue = fixed_ledger(db, 2)
    book = journal.Journal(db)
    row_id = db.execute("SELECT MIN(id) FROM deliveries").fetchone()[0]
    book.started(row_id)  # the dead sender's last word: going out
    for file in book._files:  # it dies (the OS drops its journal locks)
        os.close(file._lock)
    live = shared.Sender(db, issue, "relay:25", str(tmp_path / "b"))
    live.start()
    marker = shared.Marker(db, live)
    try:
        rows, _ = live.claim(1)
        assert [r.id for r in rows] == [row_id]
        assert marker.mark(row_id)
        assert journal.recover(db) == 0
        assert db.execute("SELECT state FROM deliveries WHERE id = ?", (row_id,)).fetchone()[0] == (
            "sending"
        )
        assert marker.result(row_id, "sent", "250 ok")
    finally:
        marker.close()
        live.stop()


def test_claimed_rows_of_a_sender_that_began_before_the_server_restarted_are_in_doubt(db, tmp_path):
    """Marks and outcomes are written without waiting for the server's disk: a server crash
    may lose some, so a dead sender's claimed rows from before the restart are not freed."""
    from dispatch.store import senders as shared

    issue = fixed_ledger(db, 4)
    old = shared.Sender(db, issue, "relay:25", str(tmp_path / "a"))
    old.start()
    try:
        rows, _ = old.claim(2)
        # as if the server had started after this sender joined
        db.execute("UPDATE send_senders SET began = 0, lease_until = 0 WHERE id = ?", (old.id,))
        assert shared.take_over(db, issue) == 2
        states = dict(db.execute("SELECT id, state FROM deliveries").fetchall())
        assert [states[r.id] for r in rows] == ["uncertain", "uncertain"]
        assert Counter(states.values()) == {"uncertain": 2, "pending": 2}
    finally:
        old.stop()
