"""How fast does Dispatch send, and does its memory stay flat? (issue 6's targets)

One run on this machine, all to the same Postfix `smtp-sink` on loopback:
  1. Postfix's own C load generator `smtp-source`, N messages of the digest's size, 4 sessions;
  2. Dispatch's real send (`dispatch.jobs.send.send_issue`: ledger fixed, rows claimed and
     committed, messages assembled per recipient, 4 SMTP connections) of N personal messages,
     in a child process so its peak RSS is its own; optionally again with DKIM signing;
  3. the naive pipeline (Jinja render + premailer + EmailMessage per recipient) on a few
     hundred recipients, in-process, for comparison;
  4. DKIM per-message cost: Dispatch's OpenSSL signer vs dkimpy's pure-Python RSA;
  5. with --memory-runs: peak RSS of the send for growing lists (e.g. 10k, 100k, 1M). These use
     the real send loop and ledger with a null relay in place of SMTP (messages are assembled,
     then dropped) unless --memory-smtp, so a 1M run takes minutes, not half an hour.

Usage:
  .venv/bin/python bench/send.py                       # 20,000 messages, ~50 KB each
  .venv/bin/python bench/send.py --messages 5000 --dkim
  .venv/bin/python bench/send.py --skip-send --memory-runs 10000,100000,1000000

Targets (issue 6): Dispatch >= 0.5 x smtp-source's rate; peak RSS < 200 MB and flat.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import send_setup as setup

# -- the child: one send in its own process ------------------------------------------------


def child(argv: list[str]) -> None:
    """``send.py _child DB ISSUE PORT MODE``: run the real send, print JSON with peak RSS."""
    db_path, issue_id, port, mode = Path(argv[0]), argv[1], int(argv[2]), argv[3]
    from dispatch.jobs import send as send_job
    from dispatch.store import open_db

    if "null" in mode:
        _use_null_relay(send_job)
    dkim_key = None
    if "dkim" in mode:  # the engine signs, as configured by the DKIM settings
        from dispatch.mailer.dkim import generate_key

        dkim_key = db_path.parent / "dkim.pem"
        dkim_key.write_bytes(generate_key("rsa", 2048))
    settings = setup.settings_for(db_path, port, dkim_key)
    rss_before = _peak_rss_mb()
    with open_db(db_path, create=True) as db:
        start = time.perf_counter()
        summary = send_job.send_issue(db, settings, issue_id)
        seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "sent": summary.sent_now,
                "failed": summary.failed_now,
                "seconds": seconds,
                "status": summary.issue_status,
                "rss_before_mb": rss_before,
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
    )


def _peak_rss_mb() -> float:
    """This process's own peak RSS. (getrusage's ru_maxrss is no good here: on Linux a child
    inherits its parent's high-water mark across fork and exec.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _use_null_relay(send_job) -> None:  # noqa: ANN001 - the module
    """Replace the SMTP exchange by 'accepted' (bench only): the loop, the ledger and the
    per-recipient assembly in the worker threads stay the real ones."""
    from dispatch.mailer import DeliveryStatus, Outcome, SenderPool
    from dispatch.mailer import settings as mailer_settings
    from dispatch.mailer.pool import JobResult

    class NullRelayPool(SenderPool):
        def _work(self) -> None:
            while not self.stopping.is_set():
                job = self.jobs.get()
                if job is None or self.stopping.is_set():
                    if job is not None:
                        self.jobs.put(job)
                    break
                job.payload()  # assemble the message, then drop it
                self.results.put(JobResult(job, DeliveryStatus(Outcome.SENT, 250, "2.0.0 Ok")))

    mailer_settings.SenderPool = NullRelayPool  # the pool send_issue builds
    send_job.check_relay = lambda *a, **k: None


def run_child(db_path: Path, issue_id: str, port: int, mode: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "_child", str(db_path), issue_id, str(port), mode],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the send failed ({mode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the parent ------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20000, help="messages per send")
    parser.add_argument(
        "--subscribers",
        type=int,
        default=None,
        help="subscribers in the database (default: --messages; the rest "
        "beyond --messages are unsubscribed)",
    )
    parser.add_argument(
        "--articles",
        type=int,
        default=22,
        help="articles in the digest (22 makes a ~50 KB message)",
    )
    parser.add_argument("--naive", type=int, default=200, help="recipients for the naive pipeline")
    parser.add_argument("--dkim", action="store_true", help="also send with DKIM signing")
    parser.add_argument(
        "--skip-send",
        action="store_true",
        help="skip smtp-source and the 20k send (memory runs only)",
    )
    parser.add_argument(
        "--memory-runs",
        default="",
        help="comma-separated list sizes for peak-RSS runs, e.g. 10000,100000",
    )
    parser.add_argument(
        "--memory-smtp",
        action="store_true",
        help="memory runs send to smtp-sink instead of the null relay",
    )
    args = parser.parse_args()
    subscribers = args.subscribers or args.messages
    if subscribers < args.messages:
        parser.error("--subscribers must be at least --messages")
    if not setup.have_postfix_tools() and (not args.skip_send or args.memory_smtp):
        raise SystemExit("Postfix's smtp-sink/smtp-source are missing: apt-get install postfix")

    print(f"machine:            {setup.machine()}, Python {sys.version.split()[0]}")
    print(f"date:               {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
        folder = Path(tmp)
        if not args.skip_send:
            main_run(folder, args, subscribers)
        for size in [int(x) for x in args.memory_runs.split(",") if x.strip()]:
            memory_run(folder, size, args)


def main_run(folder: Path, args: argparse.Namespace, subscribers: int) -> None:
    started = time.perf_counter()
    prepared = setup.prepare(folder, subscribers, args.messages, args.articles)
    print(
        f"database:           {subscribers} subscribers, {args.messages} active "
        f"(built in {time.perf_counter() - started:.1f} s)"
    )
    print(f"messages:           {args.messages} personal copies, 4 connections")
    print(
        f"size:               {prepared.message_size / 1024:.1f} KB per message "
        f"({args.articles} articles; the bundled 4-article sample is "
        f"{prepared.sample_size / 1024:.1f} KB)"
    )
    sink = setup.Sink()
    try:
        source = setup.smtp_source_rate(sink.port, args.messages, prepared.message_size)
        result = run_child(prepared.db_path, prepared.issue_id, sink.port, "smtp")
        assert result["sent"] == args.messages and result["status"] == "sent", result
        dispatch_rate = result["sent"] / result["seconds"]
        print(f"smtp-source rate:   {source:,.0f} msg/s")
        print(
            f"Dispatch rate:      {dispatch_rate:,.0f} msg/s "
            f"({result['seconds']:.1f} s, ledger committed as it went)"
        )
        print(f"ratio:              {dispatch_rate / source:.2f} of smtp-source (target >= 0.50)")
        print(
            f"peak RSS of send:   {result['peak_rss_mb']:.0f} MB "
            f"({result['rss_before_mb']:.0f} MB after imports; target < 200 MB)"
        )
        if args.dkim:
            (folder / "dkim").mkdir()
            signed = setup.prepare(folder / "dkim", subscribers, args.messages, args.articles)
            with_dkim = run_child(signed.db_path, signed.issue_id, sink.port, "smtp+dkim")
            rate = with_dkim["sent"] / with_dkim["seconds"]
            print(
                f"Dispatch + DKIM:    {rate:,.0f} msg/s (RSA-2048 on every message; "
                f"{rate / source:.2f} of smtp-source)"
            )
    finally:
        sink.stop()
    naive = setup.naive_rate(prepared.db_path, prepared.issue_id, args.naive)
    print(
        f"naive pipeline:     {naive:,.0f} msg/s (Jinja + premailer + EmailMessage per "
        f"recipient, {args.naive} messages, no SMTP) = {dispatch_rate / naive:.0f}x slower "
        "than Dispatch's send"
    )
    costs = setup.dkim_costs(setup.one_message(prepared.db_path, prepared.issue_id))
    print(
        f"DKIM per message:   Dispatch RSA-2048 {costs['dispatch_rsa_ms']:.2f} ms, "
        f"Ed25519 {costs['dispatch_ed25519_ms']:.2f} ms; dkimpy RSA-2048 "
        f"{costs['dkimpy_rsa_ms']:.1f} ms; one send slot at Dispatch's rate is "
        f"{4000 / dispatch_rate:.1f} ms per connection"
    )


def memory_run(folder: Path, size: int, args: argparse.Namespace) -> None:
    run_folder = folder / f"mem-{size}"
    run_folder.mkdir()
    started = time.perf_counter()
    prepared = setup.prepare(run_folder, size, size, args.articles)
    built = time.perf_counter() - started
    if args.memory_smtp:
        sink = setup.Sink()
        try:
            result = run_child(prepared.db_path, prepared.issue_id, sink.port, "smtp")
        finally:
            sink.stop()
        how = "smtp-sink"
    else:
        result = run_child(prepared.db_path, prepared.issue_id, 9, "null")
        how = "null relay"
    assert result["sent"] == size, result
    print(
        f"memory run {size:>9,}: peak RSS {result['peak_rss_mb']:6.1f} MB "
        f"(after imports {result['rss_before_mb']:.0f} MB), "
        f"{result['sent'] / result['seconds']:,.0f} msg/s via {how}, "
        f"database built in {built:.0f} s"
    )


if __name__ == "__main__":
    main()
