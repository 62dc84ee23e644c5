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

With --senders N,... --db postgresql (issue 15): N real `python -m dispatch send ISSUE`
processes (each with its own DISPATCH_JOURNAL_DIR, as separate machines) share one send on a
PostgreSQL database (a throwaway cluster, or a fresh database on a postgresql:// server), all
through the one throttling relay (a thread of this process, which only waits on them). The
ledger is fixed once before they start. Printed per run: the aggregate accepted rate / R over
the steady part (from the 10th to the 90th percentile of the relay's acceptances) and over
the whole send, the relay's per-second acceptances, throttling replies (the relay's count and
each sender's), each sender's share (send_senders.sent), lost and duplicate messages, and the
rate saved in meta for the next send vs R. "warm" is a second issue on a fresh database where
the rate the cold run saved is already in meta.

Usage:
  .venv/bin/python bench/throttle.py                         # R = 5 14 40 100 200, all styles
  .venv/bin/python bench/throttle.py --rates 14,40 --styles 454-rcpt --seconds 10
  .venv/bin/python bench/throttle.py --db postgresql --senders 1,2,3 --rates 40,200 --seconds 25
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
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
        self.times: list[float] = []  # when each message was accepted (time.monotonic)
        self.refused: list[tuple[float, str]] = []  # (when, recipient) of each throttled one
        self.log: list[tuple[float, str]] = []  # (when, recipient) of each accepted one
        self.throttled = 0

    def reset(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.times.clear()
            self.refused.clear()
            self.log.clear()
            self.throttled = 0

    def _admit(self, rcpt: str = "") -> bool:
        """Take a place in the current second, or say no (counted, with the recipient when
        known: 421 to MAIL comes before any)."""
        with self.lock:
            now = time.monotonic()
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            if len(self.window) < self.rate:
                self.window.append(now)
                return True
            self.throttled += 1
            self.refused.append((now, rcpt.lower()))
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
        if self.style == "454-rcpt" and not self._admit(address):
            return "454 4.7.0 Throttling failure: Maximum sending rate exceeded."
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.style == "451-data" and not self._admit(",".join(envelope.rcpt_tos)):
            return "451 4.7.1 Rate limit exceeded, try again later"
        with self.lock:
            now = time.monotonic()
            for rcpt in envelope.rcpt_tos:
                self.accepted[rcpt.lower()] += 1
                self.log.append((now, rcpt.lower()))
            self.times.append(now)
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


# -- several senders sharing one send on PostgreSQL (issue 15) ----------------------------


def sender_env(db_url: str, port: int, journal: Path) -> dict[str, str]:
    """The environment of one `dispatch send` process: bench/send_setup.py's settings."""
    settings = setup.env_for(db_url, port, journal_dir=journal)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    return {**inherited, **settings}


def steady_rate(times: list[float]) -> tuple[float, float]:
    """(rate between the 10th and 90th percentile acceptances, rate first to last acceptance)."""
    n = len(times)
    if n < 10:
        return 0.0, 0.0
    lo, hi = n // 10, n - n // 10 - 1
    steady = (hi - lo) / max(times[hi] - times[lo], 1e-6)
    whole = (n - 1) / max(times[-1] - times[0], 1e-6)
    return steady, whole


def per_second(times: list[float]) -> list[int]:
    if not times:
        return []
    counts: Counter[int] = Counter(int(t - times[0]) for t in times)
    return [counts[k] for k in range(max(counts) + 1)]


def shared_send(
    folder: Path,
    databases: setup.Databases,
    relay: ThrottlingRelay,
    port: int,
    senders: int,
    messages: int,
    learnt: float,
) -> dict[str, Any]:
    """A fresh database, the ledger fixed once (``learnt`` in meta first when warm), then
    ``senders`` `dispatch send` processes at once through ``relay``; the figures."""
    folder.mkdir(parents=True)
    prepared = setup.prepare(folder, messages, messages, 4, databases.new())
    db_url, issue = prepared.db, prepared.issue_id
    relay_key = f"127.0.0.1:{port}"
    with setup.open_target(db_url, folder) as db:
        if learnt:
            ledger.save_relay_rate(db, relay_key, learnt)
        setup.fix_ledger(db, setup.settings_for(db_url, port), issue)
    setup._close_pools(db_url)
    time.sleep(1.1)  # the relay's window empties, as it would by next week
    relay.reset()
    started = time.monotonic()
    procs = []
    for k in range(senders):
        journal = folder / f"sender-{k + 1}"
        journal.mkdir()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "dispatch", "send", issue, "--json"],
                env=sender_env(db_url, port, journal),
                cwd=journal,  # no .env of the working tree
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [proc.communicate() for proc in procs]
    seconds = time.monotonic() - started
    reports: dict[int, dict[str, Any]] = {}  # by pid (send_senders.pid)
    failed = 0
    for k, (proc, (out, err)) in enumerate(zip(procs, outputs, strict=True)):
        try:
            reports[proc.pid] = json.loads(out)
        except ValueError:
            failed += 1
            tail = "\n".join(f"   | {line}" for line in err.strip().splitlines()[-15:])
            print(f"   sender {k + 1} exited {proc.returncode} without a summary:\n{tail}")
    with relay.lock:
        times = sorted(relay.times)
        counts = Counter(relay.accepted)
        throttled = relay.throttled
        log, refused = list(relay.log), list(relay.refused)
    with setup.open_target(db_url, folder) as db:
        expected = [
            email.lower()
            for state in ledger.ALL_STATES
            for email, _ in ledger.rows_in_state(db, issue, state)
        ]
        states = {k: v for k, v in ledger.state_counts(db, issue).items() if v}
        shares = [
            (int(row["pid"]), int(row["sent"]), float(row["learnt"]), str(row["state"]))
            for row in db.execute(
                "SELECT pid, sent, learnt, state FROM send_senders WHERE issue_id = ?"
                " ORDER BY started_at",
                (issue,),
            )
        ]
        saved = ledger.relay_rate(db, relay_key)
        owner = {  # recipient -> the sender that sent it (deliveries.sender stays on sent rows)
            str(row["email"]).lower(): row["sender"]
            for row in db.execute(
                "SELECT email, sender FROM deliveries WHERE issue_id = ?", (issue,)
            )
        }
        pid_of = {
            int(row["id"]): int(row["pid"])
            for row in db.execute("SELECT id, pid FROM send_senders WHERE issue_id = ?", (issue,))
        }
    setup._close_pools(db_url)
    first = times[0] if times else 0.0
    series: dict[int, list[int]] = {}
    for label, events in (("accepted", log), ("throttled", refused)):
        for pid in pid_of.values():
            series.setdefault(pid, [])
        for when, rcpt in events:
            pid = pid_of.get(owner.get(rcpt.split(",")[0]) or 0, 0)
            second = max(0, int(when - first))
            row = series.setdefault(pid if label == "accepted" else -pid - 1, [])
            row.extend([0] * (second + 1 - len(row)))
            row[second] += 1
    steady, whole = steady_rate(times)
    return {
        "messages": len(expected),
        "seconds": seconds,
        "steady": steady,
        "whole": whole,
        "overall": len(expected) / seconds,
        "throttled": throttled,
        "per_second": per_second(times),
        "states": states,
        "shares": shares,
        "reports": reports,
        "saved": saved,
        "series": series,
        "failed": failed,
        "lost": sum(1 for e in expected if counts[e] == 0),
        "duplicates": sum(n - 1 for n in counts.values() if n > 1),
    }


def run_shared(
    folder: Path,
    databases: setup.Databases,
    rate: float,
    style: str,
    counts: list[int],
    seconds: float,
) -> list[dict[str, Any]]:
    relay = ThrottlingRelay(rate, style)
    controller = start_controller(relay, "127.0.0.1")
    rows = []
    messages = max(60, int(rate * seconds))
    try:
        for senders in counts:
            learnt = 0.0
            for label in ("cold", "warm"):
                run = folder / f"r{rate:g}-{style}-n{senders}-{label}"
                before = learnt
                r = shared_send(run, databases, relay, controller.port, senders, messages, learnt)
                learnt = r["saved"]
                r.update(rate=rate, style=style, run=label, senders=senders, before=before)
                rows.append(r)
                print_shared(r)
    finally:
        controller.stop()
    return rows


def print_shared(r: dict[str, Any]) -> None:
    rate = r["rate"]
    if r["failed"]:
        print(
            f"R={rate:g}/s {r['style']} N={r['senders']} {r['run']}: no figure, "
            f"{r['failed']} sender(s) failed (above); ledger {r['states']}",
            flush=True,
        )
        return
    start = f"{r['before']:.1f} in meta" if r["before"] else "nothing learnt"
    print(
        f"R={rate:g}/s {r['style']} N={r['senders']} {r['run']} ({start}): "
        f"{r['messages']} msgs in {r['seconds']:.1f} s (launch to last exit); "
        f"steady {r['steady']:.1f}/s = {r['steady'] / rate:.2f} R, first-last acceptance "
        f"{r['whole'] / rate:.2f} R, launch-exit {r['overall'] / rate:.2f} R; relay throttled "
        f"{r['throttled']}; lost {r['lost']}, duplicates {r['duplicates']}; ledger {r['states']}; "
        f"saved in meta {r['saved']:.1f} ({r['saved'] / rate:.2f} R)",
        flush=True,
    )
    series = r["series"]
    for k, (pid, sent, learnt, state) in enumerate(r["shares"]):
        report = r["reports"].get(pid, {})
        share = sent / max(r["messages"], 1)
        print(
            f"   sender {k + 1} (pid {pid}, {state}): sent {sent} ({share:.0%}), learnt "
            f"{learnt:.1f}, throttled {report.get('throttled', '?')}, "
            f"{report.get('seconds', 0):.1f} s"
        )
        if len(r["shares"]) > 1:
            print(f"      accepted/s:  {' '.join(map(str, series.get(pid, [])))}")
            if series.get(-pid - 1):
                print(f"      throttled/s: {' '.join(map(str, series[-pid - 1]))}")
    print(f"   accepted per second: {' '.join(map(str, r['per_second']))}", flush=True)


def main_shared(args: argparse.Namespace, counts: list[int]) -> None:
    databases = setup.Databases(args.db)
    print(f"{setup.machine()}; {databases.describe()}; {time.strftime('%Y-%m-%d %H:%M UTC')}")
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="dispatch-throttle-") as tmp:
            for rate in (float(r) for r in args.rates.split(",")):
                for style in args.styles.split(","):
                    rows.extend(run_shared(Path(tmp), databases, rate, style, counts, args.seconds))
    finally:
        databases.close()
    failed = sum(1 for r in rows if r["failed"])
    rows = [r for r in rows if not r["failed"]]
    worst = min((r["steady"] / r["rate"] for r in rows), default=0.0)
    lost = sum(r["lost"] for r in rows)
    dupes = sum(r["duplicates"] for r in rows)
    print(
        f"worst steady/R {worst:.2f} (target >= 0.80); lost {lost}; duplicates {dupes}; "
        f"runs with a failed sender {failed}"
    )
    sys.exit(0 if worst >= 0.8 and not lost and not dupes and not failed else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="5,14,40,100,200")
    parser.add_argument(
        "--styles", default=None, help="default: all three (454-rcpt with --senders)"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="a send lasts about this")
    parser.add_argument(
        "--senders",
        default=None,
        help="comma-separated counts of `dispatch send` processes sharing one send, e.g. 1,2,3 "
        "(needs --db)",
    )
    parser.add_argument(
        "--db", default=None, help="with --senders: 'postgresql' (a throwaway cluster) or a URL"
    )
    args = parser.parse_args()
    if args.senders is not None:
        try:
            counts = [int(x) for x in args.senders.split(",") if x.strip()]
        except ValueError:
            parser.error("--senders takes whole numbers, e.g. 1,2,3")
        if not counts or min(counts) < 1:
            parser.error("--senders takes counts of 1 or more, e.g. 1,2,3")
        if args.db is None:
            parser.error("--senders needs --db postgresql (or a postgresql:// URL)")
        args.styles = args.styles or "454-rcpt"
        main_shared(args, counts)
        return
    if args.db is not None:
        parser.error("--db goes with --senders (the single-sender mode uses SQLite files)")
    args.styles = args.styles or ",".join(STYLES)
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
