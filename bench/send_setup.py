"""Helpers of bench/send.py: the issue and subscriber database (a SQLite file, or a fresh
PostgreSQL database per run), Postfix's sink and source, and the per-message costs measured
in-process (the naive pipeline, DKIM signing)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from build import write_feed  # bench/build.py: a feed of realistic articles

from dispatch.config import Settings
from dispatch.jobs.build import build_issue
from dispatch.jobs.messages import issue_messages as _factory
from dispatch.models import Persona
from dispatch.render.issue import render_and_store
from dispatch.render.message import MessageFactory, Recipient
from dispatch.render.templates import Links
from dispatch.store import Database, PostgresURL, donations, ledger, open_db, to_db_time, utcnow
from dispatch.store.target import redact_url

FROM = "The Riverside Ledger <news@outlet.test>"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
NAMES = ["Ana", "Ben Okafor", "Cleo Marsh", "Dev Patel", "Zoë Müller", "", "O'Brien, Pat"]


def is_postgres(db: str | Path) -> bool:
    return str(db).lower().startswith(("postgresql:", "postgres:"))


def open_target(db: str | Path, workdir: Path | None = None) -> Database:
    """The bench database: a SQLite file (made if missing) or a PostgreSQL URL. ``workdir`` is
    where a PostgreSQL send keeps its per-machine files (journal, spool): a sender's own folder."""
    if is_postgres(db):
        return open_db(PostgresURL.parse(str(db), workdir=workdir))
    return open_db(Path(db), create=True)


def env_for(
    db_path: str | Path,
    port: int = 9,
    dkim_key: Path | None = None,
    journal_dir: Path | None = None,
) -> dict[str, str]:
    """The bench's settings as environment variables (for a child `dispatch send` too)."""
    journal = {} if journal_dir is None else {"DISPATCH_JOURNAL_DIR": str(journal_dir)}
    dkim = (
        {}
        if dkim_key is None
        else {
            "DISPATCH_DKIM_DOMAIN": "outlet.test",
            "DISPATCH_DKIM_SELECTOR": "bench",
            "DISPATCH_DKIM_KEY_FILE": str(dkim_key),
        }
    )
    return {
        **dkim,
        **journal,
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


def settings_for(
    db_path: str | Path,
    port: int = 9,
    dkim_key: Path | None = None,
    journal_dir: Path | None = None,
) -> Settings:
    return Settings.from_mapping(env_for(db_path, port, dkim_key, journal_dir))


@dataclass(frozen=True)
class Prepared:
    db: str  # DISPATCH_DB: the SQLite file or the PostgreSQL URL (may hold a password)
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
    """``count`` subscribers, the first ``active`` active, the rest unsubscribed: on SQLite in
    one executemany (streamed from a generator), on PostgreSQL in one set-based INSERT ...
    SELECT over generate_series (no row crosses the wire: a million take seconds)."""
    now = to_db_time(utcnow())
    if db.engine == "postgresql":
        names = ", ".join("(?, ?)" for _ in NAMES)
        with db.transaction() as conn:
            conn.execute(
                "INSERT INTO subscribers (email, name, tags, status, unsub_token, source,"
                " created_at, updated_at)"
                " SELECT 'reader' || i || '@example.test', n.name, '[]',"
                " CASE WHEN i < ? THEN 'active' ELSE 'unsubscribed' END,"
                " replace(gen_random_uuid()::text, '-', ''), 'bench', ?, ?"
                f" FROM generate_series(0, ? - 1) AS i JOIN (VALUES {names}) AS n(k, name)"
                f" ON n.k = i % {len(NAMES)} ORDER BY i",
                (
                    active,
                    now,
                    now,
                    count,
                    *[v for k, name in enumerate(NAMES) for v in (k, name)],
                ),
            )
        return
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


def prepare(
    folder: Path, subscribers: int, active: int, articles: int, db_url: str | None = None
) -> Prepared:
    """The issue and its readers in ``db_url`` (a fresh PostgreSQL database), else in a new
    SQLite file in ``folder``."""
    target = db_url or str(folder / f"bench-{subscribers}.sqlite3")
    settings = settings_for(target)
    with open_target(target, folder) as db:
        issue_id = build_bench_issue(db, settings, folder, articles)
        add_subscribers(db, subscribers, active)
        factory = _factory(db, settings, _issue(db, issue_id))
        size = len(factory.build("non_donor", sample_recipient()))
    return Prepared(target, issue_id, size, sample_message_size(folder))


def fix_ledger(db: Database, settings: Settings, issue_id: str) -> int:
    """What `dispatch send` does before its first message, done once ahead of the senders:
    render the digest as its send starts, then fix one ledger row per active reader."""
    render_and_store(db, settings, issue_id)
    personas = donations.donor_personas(
        db, utcnow(), settings.donor_recent_days, settings.donor_lapsed_days
    )
    fixed = ledger.fix_deliveries(db, issue_id, personas, Persona.NON_DONOR.value)
    if fixed is None:
        raise RuntimeError(f"issue {issue_id} was not a draft: its ledger was fixed before")
    return fixed


def ledger_counts(db: str, issue_id: str) -> tuple[dict[str, int], str]:
    """The ledger's rows by state and the issue's status, as the senders left them."""
    with open_target(db) as conn:
        counts = ledger.state_counts(conn, issue_id)
        status = _issue(conn, issue_id).status
    _close_pools(db)
    return counts, str(status)


def _close_pools(db: str) -> None:
    if is_postgres(db):
        from dispatch.store.postgres import close_pools

        close_pools()


# -- where each run's database comes from -------------------------------------------------


class Databases:
    """A fresh database per run: a SQLite file in the run's folder (``spec`` None), a new
    database on the server of a ``postgresql://`` URL (made with CREATE DATABASE, dropped at
    the end), or, for ``spec`` "postgresql", on a throwaway cluster started like the tests'
    (tests/plugins/postgres.py: initdb and pg_ctl as `nobody` when root, fsync off)."""

    def __init__(self, spec: str | None) -> None:
        self.spec = spec
        self.cluster: Any = None
        self.made: list[str] = []
        if spec is None:
            return
        if spec.lower() in ("postgresql", "postgres"):
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.plugins.postgres import start_cluster

            started = start_cluster()
            if isinstance(started, str):
                raise SystemExit(f"No throwaway PostgreSQL cluster: {started}")
            self.cluster = started
        elif not is_postgres(spec):
            raise SystemExit("--db takes a postgresql:// URL, or 'postgresql' for a throwaway one")

    @property
    def engine(self) -> str:
        return "sqlite" if self.spec is None else "postgresql"

    def describe(self) -> str:
        if self.spec is None:
            return "SQLite (a new file per run)"
        if self.cluster is not None:
            return f"PostgreSQL, throwaway cluster ({self.cluster.bin.parent.name}, fsync off)"
        return f"PostgreSQL at {redact_url(self.spec)} (a new database per run)"

    def new(self) -> str | None:
        """DISPATCH_DB for a new, empty database (None: SQLite, a file in the run's folder)."""
        if self.spec is None:
            return None
        if self.cluster is not None:
            name = self.cluster.new_database()
            self.made.append(name)
            return str(self.cluster.url(name))
        name = f"dispatch_bench_{os.getpid()}_{len(self.made) + 1}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return urlsplit(self.spec)._replace(path=f"/{name}").geturl()

    def close(self) -> None:
        if self.spec is None:
            return
        from dispatch.store.postgres import close_pools

        close_pools()
        if self.cluster is not None:
            from tests.plugins.postgres import stop_cluster

            stop_cluster(self.cluster)
            return
        for name in self.made:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        assert self.spec is not None
        with psycopg.connect(self.spec, autocommit=True) as conn:
            conn.execute(sql.encode())


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


def naive_rate(db_path: str, issue_id: str, count: int) -> float:
    """What Dispatch avoids: per recipient, render with Jinja, inline with premailer, build an
    EmailMessage and serialise it. Messages per second over ``count`` recipients."""
    from dispatch.render.settings import renderer_from

    settings = settings_for(db_path)
    with open_target(db_path) as db:
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


def one_message(db_path: str, issue_id: str) -> bytes:
    settings = settings_for(db_path)
    with open_target(db_path) as db:
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
