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

With --senders 1,2,4, step 2 runs once per N on a fresh database: the ledger is fixed once (in
a process of its own, timed apart), then N sender processes start at once, each running the
real send of the same issue on the same database, each with its own DISPATCH_JOURNAL_DIR (as
separate machines would). With --db the database is PostgreSQL: a postgresql:// URL (a new
database is made on that server per run and dropped at the end) or "postgresql" for a
throwaway cluster (tests/plugins/postgres.py's, fsync off); its readers are seeded with one
INSERT ... SELECT generate_series.

Usage:
  .venv/bin/python bench/send.py                       # 20,000 messages, ~50 KB each
  .venv/bin/python bench/send.py --messages 5000 --dkim
  .venv/bin/python bench/send.py --skip-send --memory-runs 10000,100000,1000000
  .venv/bin/python bench/send.py --db postgresql --messages 10000 --senders 1,2,4
  .venv/bin/python bench/send.py --db postgresql --skip-send --memory-runs 1000000

Targets (issue 6): Dispatch >= 0.5 x smtp-source's rate; peak RSS < 200 MB and flat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import send_setup as setup

# -- the child: one send in its own process ------------------------------------------------


def child(argv: list[str]) -> None:
    """``send.py _child ISSUE PORT MODE FOLDER``, the database in $BENCH_DB (a URL may hold a
    password, which argv would show to ps). MODE joins with "+": "fix" fixes the ledger first
    (timed), "send" runs the real send, "null" swaps SMTP for the null relay, "dkim" signs.
    FOLDER is this process's own: its send journal and per-machine files go there. Prints one
    JSON line with what it did and its peak RSS."""
    issue_id, port, mode, folder = argv[0], int(argv[1]), set(argv[2].split("+")), Path(argv[3])
    db_value = os.environ["BENCH_DB"]
    from dispatch.jobs import send as send_job

    if "null" in mode:
        _use_null_relay(send_job)
    dkim_key = None
    if "dkim" in mode:  # the engine signs, as configured by the DKIM settings
        from dispatch.mailer.dkim import generate_key

        dkim_key = folder / "dkim.pem"
        dkim_key.write_bytes(generate_key("rsa", 2048))
    settings = setup.settings_for(db_value, port, dkim_key, journal_dir=folder)
    rss_before = _peak_rss_mb()
    result: dict[str, object] = {"rss_before_mb": rss_before, "pid": os.getpid()}
    with setup.open_target(db_value, folder) as db:
        db.journal_dir = settings.journal_dir  # as the CLI does
        if "fix" in mode:
            start = time.perf_counter()
            result["fixed"] = setup.fix_ledger(db, settings, issue_id)
            result["fix_seconds"] = time.perf_counter() - start
        if "send" in mode:
            result["start"] = time.time()
            start = time.perf_counter()
            summary = send_job.send_issue(db, settings, issue_id)
            result["seconds"] = time.perf_counter() - start
            result["end"] = time.time()
            result.update(
                sent=summary.sent_now, failed=summary.failed_now, status=summary.issue_status
            )
    if setup.is_postgres(db_value):
        from dispatch.store.postgres import close_pools

        close_pools()
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


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


def start_child(db: str, issue_id: str, port: int, mode: str, folder: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, __file__, "_child", issue_id, str(port), mode, str(folder)],
        env={**os.environ, "BENCH_DB": db},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_child(proc: subprocess.Popen) -> tuple[dict | None, str]:
    """(its JSON line, or None when it failed) and the tail of its stderr."""
    out, err = proc.communicate()
    tail = err.strip()[-3000:]
    if proc.returncode != 0 or not out.strip():
        return None, tail or f"exit status {proc.returncode}, no output"
    return json.loads(out.strip().splitlines()[-1]), tail


def run_child(db: str, issue_id: str, port: int, mode: str, folder: Path) -> dict:
    result, err = finish_child(start_child(db, issue_id, port, mode, folder))
    if result is None:
        raise SystemExit(f"the send failed ({mode}):\n{err}")
    return result


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
    parser.add_argument(
        "--db",
        default=None,
        help="PostgreSQL: a postgresql:// URL (a new database per run is made on that server), "
        "or 'postgresql' for a throwaway cluster; default SQLite files",
    )
    parser.add_argument(
        "--senders",
        default="1",
        help="comma-separated counts of sender processes sharing one send, e.g. 1,2,4",
    )
    args = parser.parse_args()
    try:
        args.sender_counts = [int(x) for x in args.senders.split(",") if x.strip()]
    except ValueError:
        parser.error("--senders takes whole numbers, e.g. 1,2,4")
    if not args.sender_counts or min(args.sender_counts) < 1:
        parser.error("--senders takes counts of 1 or more, e.g. 1,2,4")
    subscribers = args.subscribers or args.messages
    if subscribers < args.messages:
        parser.error("--subscribers must be at least --messages")
    if not setup.have_postfix_tools() and (not args.skip_send or args.memory_smtp):
        raise SystemExit("Postfix's smtp-sink/smtp-source are missing: apt-get install postfix")

    print(f"machine:            {setup.machine()}, Python {sys.version.split()[0]}")
    print(f"date:               {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    databases = setup.Databases(args.db)
    print(f"database engine:    {databases.describe()}")
    failed = False
    try:
        with tempfile.TemporaryDirectory(prefix="dispatch-bench-") as tmp:
            folder = Path(tmp)
            if not args.skip_send:
                failed = not main_run(folder, args, subscribers, databases)
            for size in [int(x) for x in args.memory_runs.split(",") if x.strip()]:
                memory_run(folder, size, args, databases)
    finally:
        databases.close()
    if failed:
        raise SystemExit("a sender failed: see above")


def main_run(
    folder: Path, args: argparse.Namespace, subscribers: int, databases: setup.Databases
) -> bool:
    """smtp-source, then the senders for each N, DKIM, the naive pipeline; False if a sender
    failed."""
    started = time.perf_counter()
    first = folder / "senders-1"
    first.mkdir()
    prepared = setup.prepare(first, subscribers, args.messages, args.articles, databases.new())
    print(
        f"database:           {subscribers} subscribers, {args.messages} active "
        f"(built in {time.perf_counter() - started:.1f} s)"
    )
    print(f"messages:           {args.messages} personal copies, 4 connections per sender")
    print(
        f"size:               {prepared.message_size / 1024:.1f} KB per message "
        f"({args.articles} articles; the bundled 4-article sample is "
        f"{prepared.sample_size / 1024:.1f} KB)"
    )
    sink = setup.Sink()
    ok = True
    dispatch_rate = 0.0
    try:
        source = setup.smtp_source_rate(sink.port, args.messages, prepared.message_size)
        print(f"smtp-source rate:   {source:,.0f} msg/s")
        for n, senders in enumerate(args.sender_counts):
            if n:
                run = folder / f"senders-{senders}-{n}"
                run.mkdir()
                prepared_n = setup.prepare(
                    run, subscribers, args.messages, args.articles, databases.new()
                )
            else:
                run, prepared_n = first, prepared
            rate = senders_run(run, prepared_n, sink.port, senders, args.messages, source)
            if rate is None:
                ok = False
            elif n == 0:
                dispatch_rate = rate
        if args.dkim:
            (folder / "dkim").mkdir()
            signed = setup.prepare(
                folder / "dkim", subscribers, args.messages, args.articles, databases.new()
            )
            with_dkim = run_child(
                signed.db, signed.issue_id, sink.port, "send+dkim", folder / "dkim" / "sender"
            )
            rate = with_dkim["sent"] / with_dkim["seconds"]
            print(
                f"Dispatch + DKIM:    {rate:,.0f} msg/s (RSA-2048 on every message; "
                f"{rate / source:.2f} of smtp-source)"
            )
    finally:
        sink.stop()
    naive = setup.naive_rate(prepared.db, prepared.issue_id, args.naive)
    slower = f" = {dispatch_rate / naive:.0f}x slower than Dispatch's send" if dispatch_rate else ""
    print(
        f"naive pipeline:     {naive:,.0f} msg/s (Jinja + premailer + EmailMessage per "
        f"recipient, {args.naive} messages, no SMTP){slower}"
    )
    costs = setup.dkim_costs(setup.one_message(prepared.db, prepared.issue_id))
    slot = (
        f"; one send slot at Dispatch's rate is {4000 / dispatch_rate:.1f} ms per connection"
        if dispatch_rate
        else ""
    )
    print(
        f"DKIM per message:   Dispatch RSA-2048 {costs['dispatch_rsa_ms']:.2f} ms, "
        f"Ed25519 {costs['dispatch_ed25519_ms']:.2f} ms; dkimpy RSA-2048 "
        f"{costs['dkimpy_rsa_ms']:.1f} ms{slot}"
    )
    return ok


def senders_run(
    folder: Path, prepared: setup.Prepared, port: int, senders: int, messages: int, source: float
) -> float | None:
    """Fix the ledger once, then ``senders`` processes send the same issue at once. Prints the
    figures and returns the total rate, or prints what went wrong and returns None."""
    db, issue = prepared.db, prepared.issue_id
    fixed = run_child(db, issue, port, "fix", folder / "fix")
    print(
        f"-- {senders} sender(s): ledger of {fixed['fixed']:,} rows fixed in "
        f"{fixed['fix_seconds']:.2f} s (once, before the senders start)"
    )
    launched = time.time()
    procs = [
        start_child(db, issue, port, "send+smtp", folder / f"sender-{k}") for k in range(senders)
    ]
    results = [finish_child(proc) for proc in procs]
    finished = time.time()
    counts, status = setup.ledger_counts(db, issue)
    failures = [(k, err) for k, (result, err) in enumerate(results) if result is None]
    for k, err in failures:
        print(f"   sender {k + 1} FAILED; the end of its stderr:")
        print("\n".join(f"   | {line}" for line in err.splitlines()[-15:]))
    done = [result for result, _ in results if result is not None]
    shares = sum(int(result["sent"]) for result in done)
    if failures or shares != messages or counts["sent"] != messages or status != "sent":
        print(
            f"   no figure: {len(failures)} of {senders} sender(s) failed; the senders "
            f"reported {shares:,} sent; the ledger has {counts['sent']:,} of {messages:,} sent "
            f"(all states: {_nonzero(counts)}), the issue is {status!r}"
        )
        return None
    wall = max(float(r["end"]) for r in done) - min(float(r["start"]) for r in done)
    rate = messages / wall
    print(
        f"   Dispatch rate:   {rate:,.0f} msg/s ({messages:,} accepted by the sink in "
        f"{wall:.1f} s, first send's start to last send's end; {finished - launched:.1f} s "
        "with the processes' start-up)"
    )
    print(f"   ratio:           {rate / source:.2f} of smtp-source (target >= 0.50)")
    for k, r in enumerate(done):
        print(
            f"   sender {k + 1}:        sent {int(r['sent']):,} ({int(r['sent']) / messages:.0%}) "
            f"in {float(r['seconds']):.1f} s, peak RSS {float(r['peak_rss_mb']):.0f} MB "
            f"({float(r['rss_before_mb']):.0f} MB after imports)"
        )
    idle = [k + 1 for k, r in enumerate(done) if not int(r["sent"])]
    if senders > 1 and idle:
        print(
            f"   NOTE: sender(s) {', '.join(map(str, idle))} sent nothing (without the shared "
            "send, a sender waits for the send lock until the others are done): the senders "
            "did not share this send"
        )
    return rate


def _nonzero(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {n:,}" for state, n in counts.items() if n) or "none"


def memory_run(
    folder: Path, size: int, args: argparse.Namespace, databases: setup.Databases
) -> None:
    run_folder = folder / f"mem-{size}"
    run_folder.mkdir()
    started = time.perf_counter()
    prepared = setup.prepare(run_folder, size, size, args.articles, databases.new())
    built = time.perf_counter() - started
    if args.memory_smtp:
        sink = setup.Sink()
        try:
            result = run_child(
                prepared.db, prepared.issue_id, sink.port, "fix+send+smtp", run_folder / "sender"
            )
        finally:
            sink.stop()
        how = "smtp-sink"
    else:
        result = run_child(
            prepared.db, prepared.issue_id, 9, "fix+send+null", run_folder / "sender"
        )
        how = "null relay"
    assert result["sent"] == size, result
    print(
        f"memory run {size:>9,}: peak RSS {result['peak_rss_mb']:6.1f} MB "
        f"(after imports {result['rss_before_mb']:.0f} MB), "
        f"{result['sent'] / result['seconds']:,.0f} msg/s via {how}, "
        f"ledger fixed in {result['fix_seconds']:.1f} s, database built in {built:.0f} s"
    )


if __name__ == "__main__":
    main()
