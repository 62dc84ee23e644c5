"""How long `dispatch doctor` takes when nothing it asks ever answers.

A DNS server, an SMTP relay, the Stripe API and the public URL are all loopback sockets that take
the connection (or the datagram) and never say a word. The command must still end within 30 s;
this prints how long it took.

    .venv/bin/python bench/doctor_deadline.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DISPATCH = [sys.executable, "-m", "dispatch", "--no-dotenv", "doctor", "--json"]


def blackholes() -> tuple[list[socket.socket], dict[str, int]]:
    """One UDP socket nobody reads and three TCP listeners nobody accepts on."""
    socks, ports = [], {}
    for name, kind in (
        ("dns", socket.SOCK_DGRAM),
        ("smtp", socket.SOCK_STREAM),
        ("stripe", socket.SOCK_STREAM),
        ("web", socket.SOCK_STREAM),
    ):
        sock = socket.socket(socket.AF_INET, kind)
        sock.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
        socks.append(sock)
        ports[name] = sock.getsockname()[1]
    return socks, ports


def run(env: dict[str, str], cwd: Path) -> tuple[float, int]:
    started = time.monotonic()
    done = subprocess.run(DISPATCH, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    return time.monotonic() - started, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "dispatch.sqlite3"
        from dispatch.store import open_db

        open_db(db, create=True).close()
        socks, ports = blackholes()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("DISPATCH_", "STRIPE_"))}
        base.update(DISPATCH_DB=str(db), DISPATCH_FROM="News <news@example.org>")
        silent = dict(
            base,
            DISPATCH_DNS_SERVERS=f"127.0.0.1:{ports['dns']}",
            DISPATCH_SMTP_URL=f"smtp://127.0.0.1:{ports['smtp']}",
            STRIPE_SECRET_KEY="sk_test_bench",
            STRIPE_API_BASE=f"http://127.0.0.1:{ports['stripe']}",
            DISPATCH_PAYMENT_LINK="https://donate.stripe.com/bench",
            DISPATCH_PUBLIC_URL=f"http://127.0.0.1:{ports['web']}",
        )
        times = [run(silent, folder) for _ in range(args.runs)]
        walls = [t for t, _ in times]
        print(
            f"nothing answers: {statistics.median(walls):.1f} s median, "
            f"{max(walls):.1f} s worst of {args.runs} (limit 30 s; exit {times[0][1]})"
        )
        for sock in socks:
            sock.close()


if __name__ == "__main__":
    main()
