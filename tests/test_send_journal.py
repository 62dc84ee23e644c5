"""The send journal (store.journal) on its own: what a killed send leaves, and what the next
run makes of it."""

from __future__ import annotations

import os
import threading
from collections import Counter

from dispatch.store import journal, ledger
from tests.plugins.smtp import add_subscribers, create_sample_issue


def fixed(db, n: int) -> list[int]:
    add_subscribers(db, [(f"r{i}@example.org", "") for i in range(n)])
    create_sample_issue(db)
    ledger.fix_deliveries(db, "2026-W48", {}, "non_donor")
    return [r[0] for r in db.execute("SELECT id FROM deliveries ORDER BY id")]


def died(book: journal.Journal) -> None:
    """What the OS does to a killed sender's journal: its file locks go; the files stay as
    they were (the mappings are not flushed or cleared)."""
    for file in book._files:
        os.close(file._lock)


def states(db) -> dict[int, tuple[str, str, int]]:
    return {
        r[0]: (r[1], r[2] or "", r[3])
        for r in db.execute("SELECT id, state, last_reply, attempts FROM deliveries")
    }


def test_recover_settles_what_a_killed_send_left(db):
    ids = fixed(db, 6)
    book = journal.Journal(db)
    book.started(ids[0])
    book.finished(ids[0], "sent", "250 2.0.0 queued")  # sent, not yet committed
    book.started(ids[1])  # going out when the process died
    book.finished(ids[2], "failed", "550 5.1.1 no such user")  # refused at RCPT
    book.started(ids[3])
    book.finished(ids[3], "pending", "connection lost")
    book.started(ids[4])
    book.finished(ids[4], "uncertain", "in doubt: reply lost")
    # ids[5]: never touched. No close(): a kill leaves the mapping as it was.
    died(book)
    assert journal.in_flight(db) == {ids[1]}

    assert journal.recover(db) == 1
    got = states(db)
    assert got[ids[0]][:2] == ("sent", "250 2.0.0 queued")
    assert got[ids[1]][:2] == ("uncertain", journal.IN_DOUBT)
    assert got[ids[2]][:2] == ("failed", "550 5.1.1 no such user")
    assert got[ids[3]][0] == "pending"
    assert got[ids[4]][0] == "uncertain"
    assert got[ids[5]] == ("pending", "", 0)
    assert not journal.journal_dir(db).exists()
    assert journal.recover(db) == 0  # nothing left to do


def test_a_retry_on_another_thread_is_read_in_order(db):
    ids = fixed(db, 1)
    book = journal.Journal(db)

    def first_attempt() -> None:
        book.started(ids[0])
        book.finished(ids[0], "pending", "451 later")

    thread = threading.Thread(target=first_attempt)
    thread.start()
    thread.join()
    book.started(ids[0])  # the retry, on this thread, died in flight
    died(book)
    assert journal.recover(db) == 1
    assert states(db)[ids[0]][0] == "uncertain"


def test_results_already_committed_are_not_applied_twice(db):
    ids = fixed(db, 2)
    book = journal.Journal(db)
    book.started(ids[0])
    book.finished(ids[0], "sent", "250 ok")
    ledger.commit_batch(db, [ledger.Outcome(ids[0], "sent", "250 ok")])
    died(book)
    assert journal.recover(db) == 0
    assert states(db)[ids[0]] == ("sent", "250 ok", 1)


def test_a_thread_moves_to_its_other_file_only_once_that_one_is_committed(db, monkeypatch):
    monkeypatch.setattr(journal, "RESET_AT", 150)
    ids = fixed(db, 40)
    book = journal.Journal(db)
    seen: list[str] = []
    marks: dict[int, int] = {}
    for delivery_id in ids[:-1]:
        book.started(delivery_id)
        index, seq = book.finished(delivery_id, "sent", "250 ok")
        marks[index] = seq
        seen.append("a" if book._files[0].current is book._files[0].halves[0] else "b")
        if delivery_id == ids[20]:  # the database catches up with everything so far
            ledger.commit_batch(db, [ledger.Outcome(i, "sent", "250 ok") for i in ids[:21]])
            book.committed(marks)
    # a -> b when a filled (b held nothing); b stays past full until the commit covers a;
    # then a, then b once more (the commit covered b too); after that a holds uncommitted
    # results, so b just keeps growing.
    switches = "".join(x for n, x in enumerate(seen) if n == 0 or seen[n - 1] != x)
    assert switches == "abab", seen
    assert seen[21] == "a" and seen[20] == "b"
    book.started(ids[-1])  # dies in flight
    died(book)
    assert journal.recover(db) == 1  # nothing uncommitted was lost by clearing
    assert Counter(s for s, _, _ in states(db).values()) == {"sent": 39, "uncertain": 1}


def test_uncommitted_results_are_never_cleared(db, monkeypatch):
    monkeypatch.setattr(journal, "RESET_AT", 100)
    ids = fixed(db, 30)
    book = journal.Journal(db)
    for delivery_id in ids:
        book.started(delivery_id)
        book.finished(delivery_id, "sent", "250 ok")
    # Nothing committed: every record must survive.
    died(book)
    assert journal.recover(db) == 0
    assert Counter(s for s, _, _ in states(db).values()) == {"sent": 30}


def test_a_torn_last_record_is_ignored(db):
    ids = fixed(db, 2)
    book = journal.Journal(db)
    book.started(ids[0])
    book.finished(ids[0], "sent", "250 ok")
    half = book._files[0].current
    torn = f"S 99 {ids[1]}".encode()  # a kill in the middle of a memory copy: no newline
    half.mm[half.pos : half.pos + len(torn)] = torn
    died(book)
    assert journal.recover(db) == 0
    assert states(db)[ids[0]][0] == "sent" and states(db)[ids[1]][0] == "pending"


def test_a_hard_bounce_in_the_journal_bounces_its_reader_on_recovery(db):
    ids = fixed(db, 2)
    book = journal.Journal(db)
    book.finished(ids[0], "bounced", "550 5.1.1 user unknown")  # not committed: killed here
    died(book)
    journal.recover(db)
    got = states(db)
    assert got[ids[0]][:2] == ("failed", "550 5.1.1 user unknown")
    status = dict(db.execute("SELECT email, status FROM subscribers").fetchall())
    assert status == {"r0@example.org": "bounced", "r1@example.org": "active"}


def test_a_live_senders_journal_is_left_alone_until_it_dies(db):
    """Several senders of one PostgreSQL database may share a machine's journal folder: a
    starting one must not settle rows another still has going out."""
    ids = fixed(db, 2)
    live = journal.Journal(db)
    live.started(ids[0])  # going out right now, in a sender that is alive
    assert journal.in_flight(db) == set()
    assert journal.recover(db) == 0
    assert states(db)[ids[0]][0] == "pending"
    assert journal.journal_dir(db).is_dir()  # its files are still there
    died(live)
    assert journal.in_flight(db) == {ids[0]}
    assert journal.recover(db) == 1
    assert states(db)[ids[0]][0] == "uncertain"
