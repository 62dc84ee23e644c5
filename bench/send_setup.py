"""Helpers of bench/send.py: the issue and subscriber database, Postfix's sink and source, and the
per-message costs measured in-process (the naive pipeline, DKIM signing)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from importlib import resources
from pathlib import Path

from build import write_feed  # bench/build.py: a feed of realistic articles

from dispatch.config import Settings
from dispatch.jobs.build import build_issue
from dispatch.jobs.messages import issue_messages as _factory
from dispatch.render.message import MessageFactory, Recipient
from dispatch.render.templates import Links
from dispatch.store import Database, open_db, to_db_time, utcnow

FROM = "The Riverside Ledger <news@outlet.test>"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
NAMES = ["Ana", "Ben Okafor", "Cleo Marsh", "Dev Patel", "Zoë Müller", "", "O'Brien, Pat"]


def settings_for(db_path: Path, port: int = 9, dkim_key: Path | None = None) -> Settings:
    dkim = (
        {}
        if dkim_key is None
        else {
            "DISPATCH_DKIM_DOMAIN": "outlet.test",
            "DISPATCH_DKIM_SELECTOR": "bench",
            "DISPATCH_DKIM_KEY_FILE": str(dkim_key),
        }
    )
    return Settings.from_mapping(
        {
            **dkim,
            "DISPATCH_DB": str(db_path),
            "DISPATCH_FROM": FROM,
            "DISPATCH_OUTLET_NAME": "The Riverside Ledger",
            "DISPATCH_PAYMENT_LINK": "https://donate.stripe.com/test_bench0000",
            "DISPATCH_PUBLIC_URL": "https://outlet.test",
            "DISPATCH_SECRET_KEY": "bench-secret-key-not-for-production-0000",
            "DISPATCH_SMTP_URL": f"smtp://127.0.0.1:{port}",
            "DISPATCH_SMTP_CONCURRENCY": "4",
            "DISPATCH_SMTP_TIMEOUT": "60",
        }
    )


@dataclass(frozen=True)
class Prepared:
    db_path: Path
    issue_id: str
    message_size: int
    sample_size: int  # the bundled sample issue's message, for reference


def build_bench_issue(db: Database, settings: Settings, folder: Path, articles: int) -> str:
    """A digest of ``articles`` synthetic articles (bench/build.py's feed), rendered and stored."""
    feed = write_feed(folder, articles, NOW)
    result = build_issue(db, settings, sources=[str(feed)], now=NOW)
    assert result.issue is not None
    return result.issue.id


def sample_message_size(folder: Path) -> int:
    """The size of one personal copy of the bundled sample issue (the demo's four articles)."""
    site = Path(str(resources.files("dispatch") / "sample" / "site"))
    settings = settings_for(folder / "sample.sqlite3")
    with open_db(settings.db_path, create=True) as db:
        result = build_issue(
            db, settings, sources=[str(site)], now=datetime(2026, 11, 21, 9, tzinfo=UTC)
        )
        assert result.issue is not None
        factory = _factory(db, settings, result.issue)
        return len(factory.build("non_donor", sample_recipient()))


def sample_recipient(n: int = 1) -> Recipient:
    return Recipient(
        email=f"reader{n}@example.test",
        name=NAMES[n % len(NAMES)],
        token=secrets.token_hex(16),
        unsub_token=secrets.token_urlsafe(24),
        key=str(n),
    )


def add_subscribers(db: Database, count: int, active: int) -> None:
    """``count`` subscribers in one executemany (streamed from a generator); the first
    ``active`` are active, the rest unsubscribed."""
    now = to_db_time(utcnow())
    rows = (
        (
            f"reader{i}@example.test",
            NAMES[i % len(NAMES)],
            "[]",
            "active" if i < active else "unsubscribed",
            secrets.token_hex(16),
            "bench",
            now,
            now,
        )
        for i in range(count)
    )
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO subscribers (email, name, tags, status, unsub_token, source,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def prepare(folder: Path, subscribers: int, active: int, articles: int) -> Prepared:
    db_path = folder / f"bench-{subscribers}.sqlite3"
    settings = settings_for(db_path)
    with open_db(db_path, create=True) as db:
        issue_id = build_bench_issue(db, settings, folder, articles)
        add_subscribers(db, subscribers, active)
        factory = _factory(db, settings, _issue(db, issue_id))
        size = len(factory.build("non_donor", sample_recipient()))
    return Prepared(db_path, issue_id, size, sample_message_size(folder))


def _issue(db: Database, issue_id: str):  # noqa: ANN202 - the store's Issue
    from dispatch.store import issues as issue_store

    return issue_store.get_issue(db, issue_id)


# -- Postfix's sink and source ----------------------------------------------------------


def have_postfix_tools() -> bool:
    return Path(SINK).exists() and Path(SOURCE).exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Sink:
    """``smtp-sink`` on a free loopback port: accepts and discards everything."""

    def __init__(self) -> None:
        self.port = free_port()
        # As root it must drop privileges (-u); backlog 1000.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [SINK, *user, f"127.0.0.1:{self.port}", "1000"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.recv(100)
                    return
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"smtp-sink exited: {err}") from None
                time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start listening")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def smtp_source_rate(port: int, messages: int, size: int, sessions: int = 4) -> float:
    """Messages per second of Postfix's C load generator, same size, same sink."""
    start = time.perf_counter()
    subprocess.run(
        [
            SOURCE,
            "-s",
            str(sessions),
            "-m",
            str(messages),
            "-l",
            str(size),
            "-f",
            "news@outlet.test",
            "-t",
            "reader@example.test",
            f"127.0.0.1:{port}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return messages / (time.perf_counter() - start)


# -- in-process per-message costs ---------------------------------------------------------


def naive_rate(db_path: Path, issue_id: str, count: int) -> float:
    """What Dispatch avoids: per recipient, render with Jinja, inline with premailer, build an
    EmailMessage and serialise it. Messages per second over ``count`` recipients."""
    from dispatch.render.settings import renderer_from

    settings = settings_for(db_path)
    with open_db(db_path, create=True) as db:
        issue = _issue(db, issue_id)
        renderer = renderer_from(settings)
        start = time.perf_counter()
        for n in range(count):
            r = sample_recipient(n)
            links = Links(
                donate=f"https://donate.stripe.com/x?client_reference_id={r.token}",
                unsubscribe=f"https://outlet.test/u/{r.unsub_token}",
            )
            [variant] = renderer.render_issue(
                issue,
                personas=["non_donor"],
                links=links,
                greeting=f"Dear {r.name}," if r.name else "Hello,",
            )
            msg = EmailMessage(policy=SMTP)
            msg["From"] = FROM
            msg["To"] = f"{r.name} <{r.email}>" if r.name else r.email
            msg["Subject"] = variant.subject
            msg["Message-ID"] = f"<{issue_id}.{n}.0@outlet.test>"
            msg.set_content(variant.text)
            msg.add_alternative(variant.html, subtype="html")
            msg.as_bytes()
        return count / (time.perf_counter() - start)


def dkim_costs(message: bytes, ours: int = 300, theirs: int = 20) -> dict[str, float]:
    """Milliseconds per message: our OpenSSL signer (RSA-2048 and Ed25519) and dkimpy's sign."""
    import dkim

    from dispatch.mailer.dkim import DkimSigner, generate_key

    pem = generate_key("rsa", 2048)
    result = {}
    for label, key in (("rsa", pem), ("ed25519", generate_key("ed25519"))):
        signer = DkimSigner("outlet.test", "bench", key)
        start = time.perf_counter()
        for _ in range(ours):
            signer.sign(message)
        result[f"dispatch_{label}_ms"] = (time.perf_counter() - start) / ours * 1000
    start = time.perf_counter()
    for _ in range(theirs):
        dkim.sign(message, b"bench", b"outlet.test", pem, canonicalize=(b"relaxed", b"relaxed"))
    result["dkimpy_rsa_ms"] = (time.perf_counter() - start) / theirs * 1000
    return result


def one_message(db_path: Path, issue_id: str) -> bytes:
    settings = settings_for(db_path)
    with open_db(db_path, create=True) as db:
        factory: MessageFactory = _factory(db, settings, _issue(db, issue_id))
        return factory.build("non_donor", sample_recipient())


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def to_json(data: object) -> str:
    return json.dumps(data, default=str)
