"""Does a send use the relay's quota? (issue 12: at least 0.8 x R, nothing lost, nothing twice)

A real SMTP server (aiosmtpd) on loopback accepts at most R messages in any sliding second, as
Amazon SES does, and throttles beyond that in one of three styles:

  454-rcpt   "454 4.7.0 Throttling failure: Maximum sending rate exceeded." to RCPT (SES);
  421-mail   "421 4.7.0 Rate limit exceeded, closing connection" to MAIL, then it hangs up;
  451-data   "451 4.7.1 Rate limit exceeded, try again later" to the end of DATA (the whole
             message went, and was refused).

Dispatch is not told R. For each R and style, the real ``send_issue`` (ledger, journal, pool,
4 connections, real clock) sends ``R x --seconds`` messages twice: "cold" (nothing learnt
about the relay) and "warm" (a second issue on the same database, starting from the rate the
first send learnt, as next week's send would). Printed per run: messages, seconds, achieved
rate / R over the whole send (ledger fixed to last reply), throttling replies, the rate learnt,
and lost / duplicate counts checked against what the server stored.

Usage:
  .venv/bin/python bench/throttle.py                         # R = 5 14 40 100 200, all styles
  .venv/bin/python bench/throttle.py --rates 14,40 --styles 454-rcpt --seconds 10
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

import send_setup as setup

from dispatch.devsmtp import start_controller
from dispatch.jobs.send import send_issue
from dispatch.store import issues as issue_store
from dispatch.store import ledger, open_db

STYLES = ("454-rcpt", "421-mail", "451-data")


class ThrottlingRelay:
    """aiosmtpd handler: at most ``rate`` accepted messages in any sliding second."""

    def __init__(self, rate: float, style: str) -> None:
        self.rate = rate
        self.style = style
        self.lock = threading.Lock()
        self.window: deque[float] = deque()
        self.accepted: Counter[str] = Counter()
        self.throttled = 0

    def reset(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.throttled = 0

    def _admit(self) -> bool:
        """Take a place in the current second, or say no (counted)."""
        with self.lock:
            now = time.monotonic()
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            if len(self.window) < self.rate:
                self.window.append(now)
                return True
            self.throttled += 1
            return False

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.style == "421-mail" and not self._admit():
            import asyncio

            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.7.0 Rate limit exceeded, closing connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.style == "454-rcpt" and not self._admit():
            return "454 4.7.0 Throttling failure: Maximum sending rate exceeded."
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.style == "451-data" and not self._admit():
            return "451 4.7.1 Rate limit exceeded, try again later"
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.accepted[rcpt.lower()] += 1
        return "250 2.0.0 OK queued"


def make_template(folder: Path) -> Path:
    """A database with a rendered issue (4 articles) and no subscribers yet."""
    path = folder / "template.sqlite3"
    settings = setup.settings_for(path)
    with open_db(path, create=True) as db:
        setup.build_bench_issue(db, settings, folder, 4)
    return path


def one_send(db_path: Path, port: int, issue_id: str, relay: ThrottlingRelay) -> dict:
    settings = setup.settings_for(db_path, port)
    relay.reset()
    with open_db(db_path, create=True) as db:
        started = time.monotonic()
        summary = send_issue(db, settings, issue_id)
        seconds = time.monotonic() - started
        expected = [email.lower() for email, _ in ledger_emails(db, issue_id)]
    counts = relay.accepted
    lost = sum(1 for e in expected if counts[e] == 0)
    dupes = sum(n - 1 for n in counts.values() if n > 1)
    return {
        "messages": len(expected),
        "seconds": seconds,
        "achieved": len(expected) / seconds,
        "throttled": summary.throttled,
        "learnt": summary.learnt_rate,
        "lost": lost,
        "duplicates": dupes,
        "sent": summary.counts.get("sent", 0),
    }


def ledger_emails(db: Any, issue_id: str) -> list[tuple[str, str]]:
    return list(ledger.rows_in_state(db, issue_id, "sent")) + list(
        ledger.rows_in_state(db, issue_id, "pending")
    )


def run_case(template: Path, folder: Path, rate: float, style: str, seconds: float) -> list[dict]:
    relay = ThrottlingRelay(rate, style)
    controller = start_controller(relay, "127.0.0.1")
    rows = []
    relay_key = f"127.0.0.1:{controller.port}"
    learnt = 0.0
    try:
        messages = max(60, int(rate * seconds))
        for label in ("cold", "warm"):
            db_path = folder / f"r{rate:g}-{style}-{label}.sqlite3"
            shutil.copy(template, db_path)
            with open_db(db_path, create=True) as db:
                setup.add_subscribers(db, messages, messages)
                issue = issue_store.list_issues(db)[0].id
                if label == "warm" and learnt:
                    # Next week's send: the same relay, and what the last send learnt of it.
                    ledger.save_relay_rate(db, relay_key, learnt)
            if label == "warm":
                time.sleep(1.1)  # the relay's window empties, as it would by next week
            result = one_send(db_path, controller.port, issue, relay)
            learnt = result["learnt"]
            result.update(rate=rate, style=style, run=label)
            rows.append(result)
            print(
                f"R={rate:>5g}/s {style:9} {label:4}  {result['messages']:>5} msgs "
                f"{result['seconds']:6.1f} s  {result['achieved']:6.1f}/s  "
                f"achieved/R {result['achieved'] / rate:4.2f}  throttled {result['throttled']:>5}"
                f"  learnt {result['learnt']:6.1f}  lost {result['lost']}  "
                f"duplicates {result['duplicates']}",
                flush=True,
            )
    finally:
        controller.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="5,14,40,100,200")
    parser.add_argument("--styles", default=",".join(STYLES))
    parser.add_argument("--seconds", type=float, default=15.0, help="a send lasts about this")
    args = parser.parse_args()
    print(setup.machine())
    rows = []
    with tempfile.TemporaryDirectory(prefix="dispatch-throttle-") as tmp:
        folder = Path(tmp)
        template = make_template(folder)
        for rate in (float(r) for r in args.rates.split(",")):
            for style in args.styles.split(","):
                rows.extend(run_case(template, folder, rate, style, args.seconds))
    worst = min(r["achieved"] / r["rate"] for r in rows)
    lost = sum(r["lost"] for r in rows)
    dupes = sum(r["duplicates"] for r in rows)
    print(f"worst achieved/R {worst:.2f} (target >= 0.80); lost {lost}; duplicates {dupes}")
    sys.exit(0 if worst >= 0.8 and not lost and not dupes else 1)


if __name__ == "__main__":
    main()
