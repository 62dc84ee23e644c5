"""`python -m dispatch` as a real child process (a kill -9 lands on a real process; several
senders are several processes), with an environment pointing at the test's database and SMTP
server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CHILD_CONCURRENCY = 3


def dispatch(env: dict[str, str], *args: str, wait: bool = True) -> subprocess.Popen[str]:
    """Run ``dispatch ARGS`` (no .env); waited for unless ``wait=False``; output on stdout."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch", "--no-dotenv", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if wait:
        proc.wait(timeout=120)
    return proc


def output(proc: subprocess.Popen[str]) -> str:
    return proc.stdout.read() if proc.stdout else ""


@pytest.fixture
def child_env(db_url: str, smtp_server: object) -> dict[str, str]:
    """The environment of a child `dispatch`: the test's database and SMTP server only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISPATCH_", "STRIPE_"))}
    env.update(
        {
            "DISPATCH_DB": db_url,
            "DISPATCH_FROM": "Test Outlet <news@outlet.test>",
            "DISPATCH_SMTP_URL": smtp_server.url,  # type: ignore[attr-defined]
            "DISPATCH_PAYMENT_LINK": "https://buy.stripe.com/test_demo123",
            "DISPATCH_SMTP_CONCURRENCY": str(CHILD_CONCURRENCY),
            "DISPATCH_SMTP_TIMEOUT": "10",
        }
    )
    return env
