"""Does the signup form's response time tell who subscribes? (Issue 9.4.)

Serves the real app with werkzeug on loopback, a database with --active subscribers, and an
aiosmtpd sink for the emails the signups send in the background. Then posts the form over real
HTTP (CSRF token and session cookie as a browser does), interleaving addresses that are already
subscribed with new ones in random order, and prints the response-time distribution of each
group. Before the fix, an active address answered in about 3 ms and a new one in about 13 ms,
with no overlap; now both only check the address's syntax and queue the rest.

Usage: .venv/bin/python bench/signup_timing.py [--each 200] [--active 1000]
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import platform
import random
import re
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from werkzeug.serving import make_server

from dispatch.config import load_settings
from dispatch.store import connect, open_db
from dispatch.subscribers.csvfile import CsvRow
from dispatch.web import create_app
from dispatch.web.security import RateLimiter


class Sink:
    """Accepts every message and forgets it."""

    count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        Sink.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_signup(port: int, email: str) -> float:
    """GET the form (cookie + CSRF token), then time the POST alone, in milliseconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/subscribe")
    form = conn.getresponse()
    cookie = form.getheader("Set-Cookie", "").split(";", 1)[0]
    html = form.read().decode()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the form"
    body = f"csrf_token={match.group(1)}&email={email}&name=&website="
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    start = time.perf_counter()
    conn.request("POST", "/subscribe", body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - start) * 1000
    conn.close()
    assert response.status == 200, response.status
    return elapsed


def describe(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=100)
    return (
        f"{name:<8} n={len(times):<4} min {min(times):6.2f}  median {statistics.median(times):6.2f}"
        f"  p90 {q[89]:6.2f}  p99 {q[98]:6.2f}  max {max(times):6.2f}  (ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--each", type=int, default=200, help="signups per group")
    parser.add_argument("--active", type=int, default=1000, help="subscribers in the database")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request log on the terminal
    smtp_port = free_port()
    smtp = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.sqlite3"
        connect(db_path).close()  # a new database file, then migrated
        db = open_db(db_path)
        active = [f"reader{i}@example.org" for i in range(args.active)]
        from dispatch.store import subscribers as subs

        subs.import_subscribers(
            db, [CsvRow(line=i, email=e, name="") for i, e in enumerate(active)], "bench"
        )
        db.close()
        port = free_port()
        settings = load_settings(
            environ={
                "DISPATCH_DB": str(db_path),
                "DISPATCH_SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnop",
                "DISPATCH_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "DISPATCH_FROM": "Bench <news@example.org>",
                "DISPATCH_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
                "DISPATCH_SIGNUP_MAILS_PER_HOUR": str(10 * args.each),
            },
            use_dotenv=False,
        )
        app = create_app(settings)
        app.extensions["dispatch"].limiter = RateLimiter(10**9, 1.0)  # one client posts it all
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            post_signup(port, "warmup@example.org")
            jobs = [("active", e) for e in random.sample(active, args.each)]
            jobs += [("new", f"new{i}@example.org") for i in range(args.each)]
            random.shuffle(jobs)
            times: dict[str, list[float]] = {"active": [], "new": []}
            for group, email in jobs:
                times[group].append(post_signup(port, email))
            app.extensions["dispatch"].outbox.join(timeout=300)
        finally:
            server.shutdown()
            app.extensions["dispatch"].close()
            smtp.stop()
    print(
        f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {args.active} subscribers; emails sent: {Sink.count}"
    )
    for group in ("active", "new"):
        print(describe(group, times[group]))
    gap = statistics.median(times["new"]) - statistics.median(times["active"])
    print(f"median(new) - median(active) = {gap:+.2f} ms")
    # How well one response time tells the groups apart: the chance that a random new-address
    # response is slower than a random active one (0.5: not at all; before the fix: 1.0).
    wins = sum((n > a) + 0.5 * (n == a) for n in times["new"] for a in times["active"])
    print(f"P(new slower than active) = {wins / (len(times['new']) * len(times['active'])):.3f}")


if __name__ == "__main__":
    main()
