"""Bounce-test helpers: five readers mailed one issue, DSN samples (tests/fixtures/dsn), and
soft bounces made to measure. The `mailing` fixture is the real store with that ledger."""

from __future__ import annotations

import mailbox
import socket
from pathlib import Path
from typing import NamedTuple

import pytest

from dispatch.store import Database, ledger
from dispatch.store import issues as issue_store
from dispatch.store import subscribers as subscriber_store
from tests.conftest import skip_or_fail
from tests.plugins._tls import self_signed

FIXTURES = Path(__file__).parent.parent / "fixtures" / "dsn"
PEOPLE = ["ana", "ben", "cleo", "dev", "eve"]  # subscriber and delivery ids 1..5 in this order


class Reader(NamedTuple):
    """One import row: unpacks as (email, name, tags), and has the fields an import reads."""

    email: str
    name: str
    tags: tuple[str, ...] = ()
    first_name: str = ""
    language: str = ""
    status: None = None
    consent_at: str = ""
    consent_ip: str = ""
    consent_source: str = ""


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def send_issue(db: Database, issue_id: str) -> None:
    """An issue whose ledger is fixed and whose rows the relay accepted."""
    issue_store.create_issue(db, issue_id, subject=f"Issue {issue_id}")
    ledger.fix_deliveries(db, issue_id, {}, "non_donor")
    # The send engine's own path to 'sent' needs an SMTP run; here the state is the premise.
    db.execute("UPDATE deliveries SET state = 'sent' WHERE issue_id = ?", (issue_id,))


@pytest.fixture
def mailing(db: Database) -> Database:
    subscriber_store.import_subscribers(
        db, [Reader(f"{p}@example.test", p.title()) for p in PEOPLE], "test"
    )
    send_issue(db, "2026-W48")
    return db


def status_of(db: Database, person: str) -> str:
    sub = subscriber_store.get_subscriber(db, f"{person}@example.test")
    assert sub is not None
    return sub.status.value


def soft_bounce_for(issue: str, delivery_id: int, dsn_id: str) -> bytes:
    raw = fixture("rfc3464-soft-4.2.2.eml")
    raw = raw.replace(
        b"<2026-W48.3.8e2d4a6c1b90@outlet.test>",
        f"<{issue}.{delivery_id}.8e2d4a6c1b90@outlet.test>".encode(),
    )
    return raw.replace(
        b"<202612020730.B2Q7Uq0a3Jf9@relay.example.test>", f"<{dsn_id}@relay.example.test>".encode()
    )


def delivery_id(db: Database, issue: str, person: str) -> int:
    return db.execute(
        "SELECT d.id FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
        " WHERE d.issue_id = ? AND s.email = ?",
        (issue, f"{person}@example.test"),
    ).fetchone()[0]


# -- a real IMAP server ------------------------------------------------------------------------

DOVECOT = Path("/usr/sbin/dovecot")
DOVECOT_CONF = """\
base_dir = {tmp}/run
state_dir = {tmp}/state
log_path = {tmp}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{tmp}/cert.pem
ssl_key = <{tmp}/key.pem
auth_mechanisms = plain
passdb {{
  driver = static
  args = password=s3cret-imap
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={tmp}/home/%u
}}
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
"""


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch):
    """A real IMAP server (Debian's dovecot-imapd) on a free loopback port with its own config;
    yields (port, the bounce user's Maildir)."""
    import os
    import shutil
    import subprocess
    import tempfile
    import time

    if not DOVECOT.exists():
        skip_or_fail("Dovecot is not installed (apt-get install dovecot-imapd)")
    if os.geteuid() != 0:
        skip_or_fail("Dovecot's test instance needs root to start")
    # Not under tmp_path: pytest's base folder is 0700, and Dovecot reads mail as 'nobody'.
    tmp = Path(tempfile.mkdtemp(prefix="dispatch-imap-"))
    tmp.chmod(0o755)
    for sub in ("run", "state", "home"):
        (tmp / sub).mkdir(parents=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed(tmp, "127.0.0.1")[0]))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = tmp / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(tmp=tmp, port=port))
    maildir = tmp / "home" / "bounces@outlet.test" / "Maildir"
    maildir.parent.mkdir()
    mailbox.Maildir(maildir, create=True)
    proc = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_file = tmp / "dovecot.log"
                    log = log_file.read_text() if log_file.exists() else ""
                    out = proc.stdout.read().decode() if proc.poll() is not None else ""
                    pytest.fail(f"dovecot did not start: {out}{log}")
                time.sleep(0.1)

        def hand_over() -> None:  # mail is read by the unprivileged mail user
            for path in [maildir.parent, *maildir.parent.rglob("*")]:
                shutil.chown(path, "nobody", "nogroup")

        yield port, maildir, hand_over
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
