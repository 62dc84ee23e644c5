"""The web service on several hosts (issue 15): two independent server processes on two loopback
ports against one database stand in for two machines behind a load balancer. gunicorn (the
documented production command) when it is in the venv, else `dispatch serve`.

On SQLite the two processes share one file; on the PostgreSQL pass (DISPATCH_TEST_DB=postgresql)
they share one PostgreSQL database, each from its own folder, which is the real case. The same
Stripe event delivered to both hosts at the same moment counts once; a crowd of readers
unsubscribing and clicking across both hosts loses nothing."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import stripe

from dispatch.reports import build_report
from dispatch.store import clicks
from dispatch.store import subscribers as subs
from dispatch.store.retention import issue_figures
from tests.plugins.web import WEBHOOK_SECRET, seed_sent_issue, web_env
from tests.test_web_webhook import event

SRC = Path(__file__).resolve().parents[1] / "src"
READERS = 200
ROUNDS = 20
COPIES_PER_HOST = 2  # each round, every host gets the event this many times at once
STARTUP_SECONDS = 30.0


@dataclass
class Host:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(port: int) -> list[str]:
    """The documented production command (two workers of four threads each: requests of one
    host overlap too), or the development server when gunicorn is not installed."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if gunicorn.exists():
        return [
            str(gunicorn),
            "-w",
            "2",
            "--threads",
            "4",
            "-b",
            f"127.0.0.1:{port}",
            "-c",
            "python:dispatch.web.gunicorn_conf",
            "dispatch.web:wsgi_app()",
        ]
    dispatch = Path(sys.executable).with_name("dispatch")
    return [str(dispatch), "--no-dotenv", "serve", "--port", str(port)]


def _start(name: str, folder: Path, db_url: str) -> Host:
    folder.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISPATCH_", "STRIPE_"))}
    env.update(web_env(public_url=f"http://127.0.0.1:{port}"))
    env["DISPATCH_DB"] = db_url
    env["PYTHONPATH"] = str(SRC)
    log = folder / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _command(port), cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Host(name, port, proc, log)


def _wait_until_up(host: Host) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if host.proc.poll() is not None:
            break
        try:
            if host.request("GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"host {host.name} did not start:\n{host.log.read_text()[-3000:]}")


def _stop(host: Host) -> None:
    if host.proc.poll() is None:
        host.proc.send_signal(signal.SIGTERM)
        try:
            host.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            host.proc.kill()
            host.proc.wait(timeout=10)


@pytest.fixture
def people() -> list[tuple[str, str]]:
    return [(f"reader{n:03d}@example.org", f"Reader {n}") for n in range(READERS)]


@pytest.fixture
def sent(db: Any, make_settings: Callable[..., Any], people: list[tuple[str, str]]) -> Any:
    return seed_sent_issue(db, make_settings(**web_env()), people)


@pytest.fixture
def hosts(tmp_path: Path, db_url: str, sent: Any) -> Iterator[list[Host]]:
    """Two servers, each from its own folder (its own machine), against the one database."""
    started: list[Host] = []
    try:
        for name in ("host-a", "host-b"):
            started.append(_start(name, tmp_path / name, db_url))
        for host in started:
            _wait_until_up(host)
        yield started
    finally:
        for host in started:
            _stop(host)


def _logs(hosts: list[Host]) -> str:
    return "\n".join(f"--- {h.name}\n{h.log.read_text()[-4000:]}" for h in hosts)


# -- the same Stripe event at both hosts at once --------------------------------------------


def _checkout(n: int, token: str) -> bytes:
    session = {
        "id": f"cs_test_hosts_{n}",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 2500,
        "currency": "eur",
        "client_reference_id": token,
        "payment_intent": f"pi_test_hosts_{n}",
        "mode": "payment",
        "livemode": False,
        "created": int(time.time()) - 60,
        "customer_details": {"email": f"reader{n:03d}@example.org"},
    }
    return event("checkout.session.completed", session, f"evt_test_cs_{n}")


def _renewal(n: int, token: str) -> bytes:
    """A monthly gift's renewal (invoice.paid), its subscription tied to the reader by the
    token the donation page puts in the subscription's metadata."""
    now = int(time.time())
    invoice = {
        "id": f"in_test_hosts_{n}",
        "object": "invoice",
        "livemode": False,
        "status": "paid",
        "billing_reason": "subscription_cycle",
        "amount_paid": 700,
        "amount_due": 700,
        "currency": "eur",
        "attempt_count": 1,
        "created": now - 120,
        "status_transitions": {"paid_at": now - 60},
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": f"sub_test_hosts_{n}",
                "metadata": {"dispatch_token": token},
            },
        },
    }
    return event("invoice.paid", invoice, f"evt_test_in_{n}")


def _deliver_at_once(hosts: list[Host], payload: bytes) -> list[tuple[int, dict[str, Any]]]:
    """POST one signed event COPIES_PER_HOST times to every host, all released by one barrier
    after the connections are open, as Stripe's retry and a second endpoint might."""
    header = stripe.WebhookSignature.generate_signature_header(payload.decode(), WEBHOOK_SECRET)
    headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
    targets = [h for h in hosts for _ in range(COPIES_PER_HOST)]
    barrier = threading.Barrier(len(targets))
    answers: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def deliver(host: Host) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=30)
        try:
            conn.connect()
            barrier.wait(timeout=30)
            conn.request("POST", "/stripe/webhook", body=payload, headers=headers)
            response = conn.getresponse()
            body = response.read()
            answer = json.loads(body) if response.status == 200 else {"body": body.decode()}
            with lock:
                answers.append((response.status, answer))
        finally:
            conn.close()

    threads = [threading.Thread(target=deliver, args=(h,)) for h in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_one_event_delivered_to_two_hosts_at_once_counts_once(db, sent, hosts, people):
    tokens = [sent.readers[email].token for email, _ in people]
    outcomes: Counter[str] = Counter()
    for n in range(ROUNDS):
        for payload in (_checkout(n, tokens[n]), _renewal(n, tokens[ROUNDS + n])):
            answers = _deliver_at_once(hosts, payload)
            assert len(answers) == len(hosts) * COPIES_PER_HOST, _logs(hosts)
            assert all(status == 200 for status, _ in answers), (answers, _logs(hosts))
            kinds = Counter(answer["outcome"] for _, answer in answers)
            # Exactly one delivery recorded the event; the others found it already there.
            assert kinds["new"] == 1, kinds
            assert set(kinds) <= {"new", "duplicate", "unchanged"}, kinds
            outcomes.update(kinds)

    one_time = db.execute(
        "SELECT session_id, COUNT(*) AS n FROM donations GROUP BY session_id"
    ).fetchall()
    assert len(one_time) == ROUNDS and all(row["n"] == 1 for row in one_time)
    report = build_report(db, sent.id)
    assert report["totals"] == {"donations": ROUNDS, "amounts": {"eur": ROUNDS * 2500}}
    [issue] = report["issues"]
    assert (issue["donations"], issue["donors"]) == (ROUNDS, ROUNDS)

    renewals = db.execute(
        "SELECT id, COUNT(*) AS n FROM subscription_invoices GROUP BY id"
    ).fetchall()
    assert len(renewals) == ROUNDS and all(row["n"] == 1 for row in renewals)
    origins = db.execute("SELECT COUNT(*) FROM subscription_origins").fetchone()[0]
    assert origins == ROUNDS
    figures = issue_figures(db, sent.id)
    assert (figures["renewals"], figures["renewals_amounts"]) == (ROUNDS, {"eur": ROUNDS * 700})
    handled = db.execute("SELECT COUNT(*) FROM stripe_events").fetchone()[0]
    assert handled == 2 * ROUNDS
    assert outcomes["new"] == 2 * ROUNDS


# -- many readers across both hosts ---------------------------------------------------------


def test_unsubscribes_and_clicks_across_two_hosts_are_never_lost(db, sent, hosts, people, tmp_path):
    one_click = {"Content-Type": "application/x-www-form-urlencoded"}

    def reader(n: int) -> list[tuple[str, int]]:
        who = sent.readers[people[n][0]]
        here, there = hosts[n % 2], hosts[(n + 1) % 2]
        answers = [("click", here.request("GET", f"/d/{who.token}")[0])]
        status, _ = there.request(
            "POST", f"/u/{who.unsub_token}", b"List-Unsubscribe=One-Click", one_click
        )
        answers.append(("unsubscribe", status))
        answers.append(("click", there.request("GET", f"/d/{who.token}")[0]))
        return answers

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(reader, range(READERS)))

    statuses = Counter(answer for answers in results for answer in answers)
    assert set(statuses) <= {("click", 303), ("unsubscribe", 200), ("unsubscribe", 202)}, (
        statuses,
        _logs(hosts),
    )
    # A 202 was kept in a host's spool and is applied in the background moments later.
    deadline = time.monotonic() + 15
    while True:
        left = [
            email
            for email, _ in people
            if (sub := subs.get_subscriber(db, email)) is None or sub.status != "unsubscribed"
        ]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert left == [], (len(left), statuses, _logs(hosts))
    counted = {email: clicks.click_count(db, r.token) for email, r in sent.readers.items()}
    assert set(counted.values()) == {2}, Counter(counted.values())
    total = db.execute("SELECT COUNT(*) FROM clicks").fetchone()[0]
    assert total == 2 * READERS
    assert not list(tmp_path.rglob("*.unsubscribe-spool*")), "an unsubscribe stayed spooled"
