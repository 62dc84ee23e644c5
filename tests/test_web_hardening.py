"""Issue 9, web side: writes that meet another writer's lock on the real SQLite file (a second
connection holding BEGIN IMMEDIATE, as an import does), signed but malformed webhook bodies,
redirects that never follow the Host header, and HSTS."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest

from dispatch.store import clicks as web_store
from dispatch.store import donations
from dispatch.store import subscribers as subs
from dispatch.store import unsubscribe_spool as web_spool
from dispatch.store.locking import WritePatience
from tests.plugins.web import WEBHOOK_SECRET, seed_sent_issue, web_env
from tests.test_web_webhook import LINK_ID, event, session_object, signed

#: Short waits so a test holding the lock through every attempt ends quickly.
QUICK = WritePatience(busy_ms=50, pauses=(0.01, 0.01), retry_after=7)


@pytest.fixture
def sent(db, make_settings):
    donations.save_payment_link(
        db,
        link_id=LINK_ID,
        url="https://buy.stripe.com/test_dispatch123",
        kind="custom",
        livemode=False,
    )
    return seed_sent_issue(db, make_settings(**web_env()), [("ana@example.org", "Ana")])


@pytest.fixture
def app(make_web_app, sent):
    app = make_web_app()
    app.extensions["dispatch"].patience = QUICK
    assert app.test_client().get("/archive/").status_code == 200  # the store is migrated
    return app


class WriteLock:
    """Another process's write transaction on the same database (what an import holds): on
    PostgreSQL, a transaction holding the store's write lock."""

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql:"):
            import psycopg

            from dispatch.store.postgres_db import WRITE_LOCK

            self.conn = psycopg.connect(url, autocommit=True)
            self.conn.execute("BEGIN")
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        else:
            self.conn = sqlite3.connect(
                url, isolation_level=None, timeout=0, check_same_thread=False
            )
            self.conn.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.conn.execute("COMMIT")
            self.held = False

    def close(self) -> None:
        self.release()
        self.conn.close()


@pytest.fixture
def write_lock(db_url):
    locks: list[WriteLock] = []

    def hold() -> WriteLock:
        locks.append(WriteLock(db_url))
        return locks[-1]

    yield hold
    for lock in locks:
        lock.close()


class ReleaseOnRetry(logging.Handler):
    """Lets the lock go when the web service says it is retrying: the first attempt surely met
    the lock, and a retry is what gets the write through."""

    def __init__(self, lock: WriteLock) -> None:
        super().__init__(logging.INFO)
        self.write_lock = lock
        self.retries = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.retries += 1
            self.write_lock.release()


@pytest.fixture
def release_on_retry():
    logger = logging.getLogger("dispatch.web")
    handlers: list[ReleaseOnRetry] = []
    old_level = logger.level

    def install(lock: WriteLock) -> ReleaseOnRetry:
        handlers.append(ReleaseOnRetry(lock))
        logger.addHandler(handlers[-1])
        logger.setLevel(logging.INFO)
        return handlers[-1]

    yield install
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(old_level)


def status_of(db, email: str) -> str | None:
    sub = subs.get_subscriber(db, email)
    return sub.status.value if sub else None


# -- 9.3: a write that meets a lock waits and retries -----------------------------------------


def test_one_click_unsubscribe_during_an_import_is_retried_and_recorded(
    app, db, sent, write_lock, release_on_retry
):
    token = sent.readers["ana@example.org"].unsub_token
    watcher = release_on_retry(write_lock())
    response = app.test_client().post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert watcher.retries >= 1  # the first attempt met the lock
    assert status_of(db, "ana@example.org") == "unsubscribed"


def test_donation_click_during_an_import_is_retried_and_counted(
    app, db, sent, write_lock, release_on_retry
):
    token = sent.readers["ana@example.org"].token
    watcher = release_on_retry(write_lock())
    response = app.test_client().get(f"/d/{token}")
    assert response.status_code == 303
    assert watcher.retries >= 1
    assert web_store.click_count(db, token) == 1


def test_a_lock_held_through_every_retry_keeps_the_unsubscribe_and_applies_it_after(
    app, db, sent, write_lock, caplog
):
    token = sent.readers["ana@example.org"].unsub_token
    client = app.test_client()
    lock = write_lock()
    one_click = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 202 and one_click.mimetype == "text/plain"
    assert "recorded" in one_click.get_data(as_text=True)
    button = client.post(f"/u/{token}")
    assert button.status_code == 202 and "Unsubscribe recorded" in button.get_data(as_text=True)
    assert "stayed locked" in caplog.text
    assert web_spool.spool_path(db.path).exists()  # on disk before the reader was answered
    forged = client.post(f"/u/{token[:-2]}xx", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 404
    assert status_of(db, "ana@example.org") == "active"  # the import still holds the lock
    lock.release()
    app.extensions["dispatch"].outbox.join(timeout=60)  # the spool is applied in the background
    assert status_of(db, "ana@example.org") == "unsubscribed"
    assert not web_spool.has_spooled(db.path)
    assert token not in caplog.text


def test_other_writes_held_through_every_retry_are_an_honest_503(app, db, sent, write_lock):
    lock = write_lock()
    click = app.test_client().get(f"/d/{sent.readers['ana@example.org'].token}")
    assert click.status_code == 503 and click.headers["Retry-After"] == "7"
    assert "try again" in click.get_data(as_text=True)
    lock.release()
    assert web_store.click_count(db, sent.readers["ana@example.org"].token) == 0


def test_unsubscribe_that_cannot_even_be_kept_is_a_503(app, db, sent, write_lock):
    web_spool.spool_path(db.path).mkdir()  # the spool cannot be written
    token = sent.readers["ana@example.org"].unsub_token
    write_lock()
    response = app.test_client().post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "7"


def test_a_spool_left_behind_is_applied_after_the_next_write(app, db, sent):
    """E.g. the worker that kept it was killed before applying it: any worker's next
    successful write catches up."""
    web_spool.spool_unsubscribe(db.path, sent.readers["ana@example.org"].unsub_token)
    assert app.test_client().get(f"/d/{sent.readers['ana@example.org'].token}").status_code == 303
    app.extensions["dispatch"].outbox.join(timeout=60)
    assert status_of(db, "ana@example.org") == "unsubscribed"
    assert not web_spool.has_spooled(db.path)


def test_webhook_during_a_held_lock_is_503_then_recorded_once_on_stripes_retry(
    app, db, sent, write_lock
):
    payload = event(
        "checkout.session.completed", session_object(sent.readers["ana@example.org"].token)
    )
    client = app.test_client()
    lock = write_lock()
    busy = client.post("/stripe/webhook", data=payload, headers=signed(payload))
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    lock.release()
    retried = client.post("/stripe/webhook", data=payload, headers=signed(payload))
    assert retried.status_code == 200 and retried.get_json()["outcome"] == "new"
    again = client.post("/stripe/webhook", data=payload, headers=signed(payload))
    assert again.get_json()["outcome"] == "duplicate"
    assert len(donations.list_donations(db)) == 1


def test_a_lock_released_by_another_thread_a_moment_later(app, db, sent, write_lock):
    """The plain case from the issue: the import commits a moment later; with the default
    patience the unsubscribe simply goes through."""
    import threading

    app.extensions["dispatch"].patience = WritePatience()
    token = sent.readers["ana@example.org"].unsub_token
    lock = write_lock()
    releaser = threading.Timer(0.3, lock.release)
    releaser.start()
    try:
        response = app.test_client().post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    finally:
        releaser.join()
    assert response.status_code == 200
    assert status_of(db, "ana@example.org") == "unsubscribed"


# -- 9.9: signed but malformed webhook bodies ---------------------------------------------------

MALFORMED = {
    "a list": [1, 2],
    "a number": 7,
    "object is a string": {
        "id": "evt_m1",
        "type": "checkout.session.completed",
        "data": {"object": "cs_test"},
    },
    "object is a list": {"id": "evt_m2", "type": "refund.created", "data": {"object": [1]}},
    "data is a list": {"id": "evt_m3", "type": "checkout.session.completed", "data": []},
    "id is an object": {
        "id": {"x": 1},
        "type": "checkout.session.completed",
        "data": {"object": {}},
    },
    "refund with wrong types": {
        "id": "evt_m4",
        "type": "refund.created",
        "data": {
            "object": {"id": 5, "amount": "lots", "currency": 3, "payment_intent": [], "status": {}}
        },
    },
    "refunds not a list": {
        "id": "evt_m5",
        "type": "charge.refunded",
        "data": {"object": {"refunds": "all"}},
    },
}


@pytest.mark.parametrize("body", list(MALFORMED))
def test_signed_but_malformed_body_is_a_clear_400_logged_without_secrets(
    app, db, sent, caplog, body
):
    payload = json.dumps(MALFORMED[body]).encode()
    headers = signed(payload)
    caplog.set_level(logging.INFO, logger="dispatch.web")
    response = app.test_client().post("/stripe/webhook", data=payload, headers=headers)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid signature or payload"}
    assert "Stripe webhook refused" in caplog.text
    assert WEBHOOK_SECRET not in caplog.text
    assert headers["Stripe-Signature"].split("v1=")[1] not in caplog.text
    assert donations.list_donations(db) == []
    assert not donations.stripe_event_seen(db, "evt_m4")


# -- 9.10: redirects and HSTS -------------------------------------------------------------------


def test_archive_without_slash_redirects_to_a_path_never_to_the_host_header(make_web_app):
    client = make_web_app(public_url="https://news.example.org").test_client()
    response = client.get("/archive", headers={"Host": "evil.example"})
    assert 300 <= response.status_code < 400
    assert response.headers["Location"] == "/archive/"
    with_query = client.get("/archive?page=2", headers={"Host": "evil.example"})
    assert with_query.headers["Location"] == "/archive/?page=2"


def test_donation_redirect_to_stripe_is_left_absolute(app, sent):
    response = app.test_client().get(
        f"/d/{sent.readers['ana@example.org'].token}", headers={"Host": "evil.example"}
    )
    assert response.headers["Location"].startswith("https://buy.stripe.com/")


def test_hsts_only_when_the_public_url_is_https(make_web_app):
    secure = make_web_app(public_url="https://news.example.org").test_client()
    for path in ("/", "/archive/", "/subscribe", "/healthz", "/u/nope"):
        assert secure.get(path).headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = make_web_app(public_url="http://localhost").test_client()
    assert "Strict-Transport-Security" not in plain.get("/").headers


def test_patience_gives_up_well_inside_gunicorns_timeout():
    from dispatch.web import gunicorn_conf

    patience = WritePatience()
    attempts = len(patience.pauses) + 1
    worst = attempts * patience.busy_ms / 1000 + sum(patience.pauses) * 1.5
    assert worst < gunicorn_conf.timeout / 3  # computed, not timed


# -- production command and shutdown ------------------------------------------------------------


def test_readme_and_docs_production_command_sets_the_proxy_count():
    from dispatch.web import GUNICORN_COMMAND

    root = Path(__file__).resolve().parents[1]
    for doc in ("README.md", "docs/web.md"):
        text = (root / doc).read_text(encoding="utf-8")
        [line] = [ln.strip() for ln in text.splitlines() if "gunicorn -w 4" in ln]
        assert line.startswith("DISPATCH_WEB_PROXIES=1 gunicorn"), doc
        assert line == GUNICORN_COMMAND, doc


def test_a_stopping_gunicorn_worker_finishes_queued_signups(make_web_app):
    """gunicorn calls worker_exit(server, worker) with worker.wsgi the loaded app; a plain
    object stands in for gunicorn's worker here (its hook is all that is tested)."""
    import threading
    from types import SimpleNamespace

    from dispatch.web import gunicorn_conf

    app = make_web_app()
    done = threading.Event()
    app.extensions["dispatch"].outbox.submit(lambda: done.wait(0.2) or done.set())
    gunicorn_conf.worker_exit(None, SimpleNamespace(wsgi=app))
    assert done.is_set()
    gunicorn_conf.worker_exit(None, SimpleNamespace())  # no app loaded: nothing to do


def test_spool_lines_not_applied_go_back_and_a_dead_workers_claim_is_adopted(tmp_path):
    db_path = tmp_path / "dispatch.sqlite3"
    for token in ("tok1", "tok2", "tok3"):
        web_spool.spool_unsubscribe(db_path, token)
    applied: list[str] = []

    def flaky(token: str) -> None:
        if token == "tok2":
            raise sqlite3.OperationalError("database is locked")
        applied.append(token)

    with pytest.raises(sqlite3.OperationalError):
        web_spool.apply_spooled_unsubscribes(db_path, flaky)
    assert applied == ["tok1"]
    assert web_spool.spool_path(db_path).read_text().split() == ["tok2", "tok3"]
    # A worker died holding a claim: once stale, the next apply takes it over.
    spool = web_spool.spool_path(db_path)
    dead = spool.with_name(spool.name + ".claimed-999-dead")
    dead.write_text("tok4\n")
    old = dead.stat().st_mtime - web_spool.STALE_CLAIM_SECONDS - 1
    os.utime(dead, (old, old))
    assert web_spool.apply_spooled_unsubscribes(db_path, applied.append) == 3
    assert sorted(applied) == ["tok1", "tok2", "tok3", "tok4"]
    assert not web_spool.has_spooled(db_path) and not dead.exists()


def test_webhook_events_are_recorded_exactly_once_under_load_while_an_import_writes(
    live_web, db, db_path, sent
):
    """Eight Stripe senders at once, every event delivered twice, against the real threaded
    server, while another connection keeps taking the write lock in short bursts (a batched
    import). A 503 is retried, as Stripe does; each event and session is recorded once."""
    import threading
    import urllib.error
    import urllib.request

    token = sent.readers["ana@example.org"].token
    stop = threading.Event()

    def importer() -> None:
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=30)
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            stop.wait(0.05)
            conn.execute("COMMIT")
            stop.wait(0.01)
        conn.close()

    def deliver(payload: bytes) -> int:
        for _ in range(20):
            request = urllib.request.Request(
                f"{live_web.url}/stripe/webhook", data=payload, headers=signed(payload)
            )
            try:
                return urllib.request.urlopen(request, timeout=30).status
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    return exc.code
        return 503

    statuses: list[int] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        for n in range(10):
            payload = event(
                "checkout.session.completed",
                session_object(token, sid=f"cs_test_{worker}_{n}"),
                event_id=f"evt_load_{worker}_{n}",
            )
            for _ in range(2):  # every event is delivered twice
                status = deliver(payload)
                with lock:
                    statuses.append(status)

    writer = threading.Thread(target=importer)
    writer.start()
    senders = [threading.Thread(target=sender, args=(w,)) for w in range(8)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(timeout=120)
    stop.set()
    writer.join(timeout=30)
    assert statuses == [200] * 160
    assert len(donations.list_donations(db)) == 80
    events = db.execute("SELECT COUNT(*) FROM stripe_events WHERE id LIKE 'evt_load_%'")
    assert events.fetchone()[0] == 80
