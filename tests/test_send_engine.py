"""The send engine (mailer.DeliveryRun) needs nothing of the store but its Ledger interface:
run over an in-memory ledger against the real loopback SMTP server, it mails every row once,
retries a temporary refusal, records each outcome and settles the journal."""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.mailer import DeliveryRun, RetryPolicy, SenderPool, parse_smtp_url
from dispatch.store.ledger import Claimed, Outcome


class ListLedger:
    """A Ledger in memory: rows by id, outcomes and journal lines kept for the asserts."""

    reserve_ahead = 3

    def __init__(self, emails: Sequence[str]) -> None:
        self.rows = [
            Claimed(i, i, email, "", f"t{i}", f"u{i}", "non_donor", 0)
            for i, email in enumerate(emails, start=1)
        ]
        self.state = {row.id: "pending" for row in self.rows}
        self.calls: list[str] = []
        self.reserved: list[int] = []
        self.journal: list[tuple[str, int]] = []
        self.committed: dict[int, int] = {}
        self._seq = 0

    def begin(self) -> None:
        self.calls.append("begin")

    def claim(self, after: int, limit: int) -> tuple[list[Claimed], int]:
        rows = [r for r in self.rows if r.id > after and self.state[r.id] == "pending"][:limit]
        for row in rows:
            self.state[row.id] = "sending"
        return rows, rows[-1].id if rows else after

    def reserve(self, high: int) -> None:
        self.reserved.append(high)

    def record(self, outcomes: Sequence[Outcome], journaled: dict[int, int]) -> None:
        for outcome in outcomes:
            self.state[outcome.delivery_id] = outcome.state
        for index, seq in journaled.items():
            self.committed[index] = max(seq, self.committed.get(index, 0))

    def more_to_come(self) -> bool:
        return False

    def close(self) -> None:
        self.calls.append("close")

    def started(self, row_id: int) -> None:
        self.journal.append(("S", row_id))

    def finished(self, row_id: int, state: str, reply: str) -> tuple[int, int]:
        self._seq += 1
        self.journal.append((state, row_id))
        return 0, self._seq


def test_the_engine_runs_over_any_ledger(smtp_server) -> None:
    emails = [f"reader{n}@example.org" for n in range(7)]
    smtp_server.script_rcpt("reader3@example.org", "451 4.3.0 try later", "250")
    ledger = ListLedger(emails)
    pool = SenderPool(parse_smtp_url(smtp_server.url), concurrency=2, timeout=5)
    run = DeliveryRun(
        ledger,
        pool,
        sender="news@outlet.test",
        policy=RetryPolicy(base=0.01, maximum=0.05, give_up_after=20),
        compose=lambda row: f"Subject: hello\r\nTo: {row.email}\r\n\r\nHi.\r\n".encode(),
    )
    stats = run.run()
    assert (stats.sent, stats.failed, stats.uncertain, stats.retried) == (7, 0, 0, 1)
    assert set(ledger.state.values()) == {"sent"}
    assert sorted(m.rcpt for m in smtp_server.messages) == sorted(emails)  # each once
    assert ledger.calls == ["begin", "close"]
    assert ledger.reserved and ledger.reserved[0] == ledger.rows[-1].id + 3
    assert ledger.committed == {0: ledger._seq}  # every journaled outcome was committed
    assert [kind for kind, _ in ledger.journal].count("S") == 7  # before each copy's data
    assert ("pending", 4) in ledger.journal  # reader3's refused RCPT, retried
