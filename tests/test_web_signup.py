"""Double opt-in through Flask's test client, with confirmation emails going to the aiosmtpd
fixture: CSRF, honeypot, rate limit, the same answer for every address (given before the
address is looked up), limits per address and for the whole service, scanner-safe confirm
pages, expiry and single use, and which statuses a confirmation may overturn."""

from __future__ import annotations

import re
import threading

import pytest

from dispatch.models import SubscriberStatus
from dispatch.store import subscribers as subs
from dispatch.web.security import RateLimiter
from tests.plugins.web import import_rows

CONFIRM_LINK = re.compile(r"http://localhost/confirm/([A-Za-z0-9_-]+)")


@pytest.fixture
def app(make_web_app, smtp_server):
    return make_web_app(DISPATCH_SMTP_URL=smtp_server.url)


@pytest.fixture
def client(app):
    return app.test_client()


def csrf(client) -> str:
    html = client.get("/subscribe").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def subscribe(client, email: str, name: str = "", **extra: str):
    data = {"csrf_token": csrf(client), "email": email, "name": name, "website": ""}
    data.update(extra)
    # Buffered: the response is closed at once, as a server closes it after sending the page
    # (that is when the signup's work is queued).
    return client.post("/subscribe", data=data, buffered=True)


def mails_to(app, smtp_server, address: str) -> list:
    app.extensions["dispatch"].outbox.join(timeout=30)
    return smtp_server.to(address)


def confirm_token(message) -> str:
    text = message.parsed().get_body(("plain",)).get_content()
    return CONFIRM_LINK.search(text).group(1)


def status_of(db, email: str) -> str | None:
    sub = subs.get_subscriber(db, email)
    return sub.status.value if sub else None


def test_new_address_is_pending_until_the_confirm_button_is_pressed(app, client, db, smtp_server):
    response = subscribe(client, "Nia@Example.org", "Nia Okafor")
    assert response.status_code == 200 and "Check your inbox" in response.get_data(as_text=True)
    [mail] = mails_to(app, smtp_server, "nia@example.org")
    assert status_of(db, "nia@example.org") == "pending"
    message = mail.parsed()
    assert message["Subject"] == "Please confirm your subscription to The Riverside Ledger"
    assert "Nia Okafor" not in mail.data.decode("utf-8", "replace")  # the form's text is not echoed
    assert message["List-Unsubscribe"] is None and message["List-Id"] is None  # not list mail
    token = confirm_token(mail)
    html_part = message.get_body(("html",)).get_content()
    assert f"http://localhost/confirm/{token}" in html_part

    for _ in range(2):  # a mail scanner opening the link
        page = client.get(f"/confirm/{token}")
        assert page.status_code == 200 and "Confirm my subscription" in page.get_data(as_text=True)
    assert status_of(db, "nia@example.org") == "pending"

    done = client.post(f"/confirm/{token}")
    assert done.status_code == 200 and "You are subscribed" in done.get_data(as_text=True)
    assert status_of(db, "nia@example.org") == "active"
    assert subs.get_subscriber(db, "nia@example.org").name == "Nia Okafor"
    # Single use.
    assert client.post(f"/confirm/{token}").status_code == 404
    assert client.get(f"/confirm/{token}").status_code == 404


def test_every_address_is_answered_before_it_is_looked_up(app, client, db, smtp_server):
    """The page (and so its timing) cannot depend on who subscribes: it is produced while the
    outbox, where every lookup and email happens, is still busy with something else."""
    subs.import_subscribers(db, import_rows([("old@example.org", "Old")]), "test")
    gate = threading.Event()
    outbox = app.extensions["dispatch"].outbox
    outbox.submit(lambda: gate.wait(30))  # the outbox thread is busy until the gate opens
    try:
        fresh = subscribe(client, "fresh@example.org")
        known = subscribe(client, "old@example.org")
        assert fresh.status_code == known.status_code == 200
        assert fresh.get_data(as_text=True) == known.get_data(as_text=True)
        # Nothing about either address has been looked at or written yet.
        assert status_of(db, "fresh@example.org") is None
        assert db.execute("SELECT COUNT(*) FROM confirmations").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM signup_mail").fetchone()[0] == 0
        assert smtp_server.messages == []
    finally:
        gate.set()
    [confirmation] = mails_to(app, smtp_server, "fresh@example.org")
    assert "confirm" in confirmation.parsed()["Subject"]
    assert status_of(db, "fresh@example.org") == "pending"
    # The active reader learns it from their inbox, not from the page.
    [note] = mails_to(app, smtp_server, "old@example.org")
    assert note.parsed()["Subject"] == "You are already subscribed to The Riverside Ledger"
    assert "/confirm/" not in note.data.decode("utf-8", "replace")
    assert status_of(db, "old@example.org") == "active"


def test_already_subscribed_notes_are_limited_like_confirmations(app, client, db, smtp_server):
    subs.import_subscribers(db, import_rows([("old@example.org", "Old")]), "test")
    for _ in range(3):
        subscribe(client, "old@example.org")
    assert len(mails_to(app, smtp_server, "old@example.org")) == 1


def test_signup_emails_have_an_hourly_cap_for_the_whole_service(
    make_web_app, smtp_server, db, caplog
):
    """100 signups from 100 client addresses must not mail 100 people: the cap is counted in
    the database, so a second worker process (a second app on the same file) shares it."""
    env = {"DISPATCH_SMTP_URL": smtp_server.url, "DISPATCH_SIGNUP_MAILS_PER_HOUR": "3"}
    workers = [make_web_app(**env), make_web_app(**env)]
    for n in range(6):
        app = workers[n % 2]
        client = app.test_client()
        response = client.post(
            "/subscribe",
            data={"csrf_token": csrf(client), "email": f"victim{n}@example.org"},
            environ_overrides={"REMOTE_ADDR": f"198.51.100.{n + 1}"},
            buffered=True,
        )
        assert response.status_code == 200
        app.extensions["dispatch"].outbox.join(timeout=30)
    assert len(smtp_server.messages) == 3
    assert "DISPATCH_SIGNUP_MAILS_PER_HOUR" in caplog.text
    assert "victim" not in caplog.text  # no addresses in the log
    assert db.execute("SELECT COUNT(*) FROM confirmations").fetchone()[0] == 3


def test_per_address_limit_is_shared_by_worker_processes(make_web_app, smtp_server):
    first, second = (make_web_app(DISPATCH_SMTP_URL=smtp_server.url) for _ in range(2))
    for app in (first, second, first):
        subscribe(app.test_client(), "twice@example.org")
        app.extensions["dispatch"].outbox.join(timeout=30)
    assert len(smtp_server.to("twice@example.org")) == 1


def test_signup_email_cap_must_be_positive(make_web_app, smtp_server):
    app = make_web_app(DISPATCH_SMTP_URL=smtp_server.url, DISPATCH_SIGNUP_MAILS_PER_HOUR="0")
    response = subscribe(app.test_client(), "x@example.org")
    assert response.status_code == 503


def test_missing_or_wrong_csrf_token_is_refused(app, client, db, smtp_server):
    no_token = client.post("/subscribe", data={"email": "eve@example.org"})
    assert no_token.status_code == 400
    csrf(client)  # the session now has a token, but the form carries another
    wrong = client.post("/subscribe", data={"email": "eve@example.org", "csrf_token": "x" * 43})
    assert wrong.status_code == 400
    # A token from another browser's session is no good either.
    other = app.test_client()
    stolen = csrf(other)
    fresh = app.test_client()
    assert (
        fresh.post(
            "/subscribe", data={"email": "eve@example.org", "csrf_token": stolen}
        ).status_code
        == 400
    )
    assert status_of(db, "eve@example.org") is None
    assert mails_to(app, smtp_server, "eve@example.org") == []


def test_honeypot_gets_the_usual_page_and_nothing_happens(app, client, db, smtp_server):
    response = subscribe(client, "bot@example.org", website="http://spam.example")
    assert response.status_code == 200 and "Check your inbox" in response.get_data(as_text=True)
    assert status_of(db, "bot@example.org") is None
    assert mails_to(app, smtp_server, "bot@example.org") == []


def test_rate_limit_per_client_address(app, client, db):
    app.extensions["dispatch"].limiter = RateLimiter(limit=2, window=3600)
    assert subscribe(client, "a1@example.org").status_code == 200
    assert subscribe(client, "a2@example.org").status_code == 200
    limited = subscribe(client, "a3@example.org")
    assert limited.status_code == 429
    assert "Too many attempts" in limited.get_data(as_text=True)
    assert status_of(db, "a3@example.org") is None
    other = app.test_client()
    response = other.post(
        "/subscribe",
        data={"csrf_token": csrf(other), "email": "a4@example.org"},
        environ_overrides={"REMOTE_ADDR": "198.51.100.7"},
        buffered=True,
    )
    assert response.status_code == 200


def test_invalid_address_is_said_on_the_form(client, db):
    response = subscribe(client, "not an address", "Zed")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "does not look valid" in html and 'value="not an address"' in html


def test_repeated_signups_are_throttled_per_address(app, client, smtp_server):
    for _ in range(3):
        subscribe(client, "twice@example.org")
    assert len(mails_to(app, smtp_server, "twice@example.org")) == 1


@pytest.mark.parametrize("status", ["unsubscribed", "bounced"])
def test_a_fresh_confirmation_reactivates_an_unsubscribed_or_bounced_address(
    app, client, db, smtp_server, status
):
    subs.import_subscribers(db, import_rows([("back@example.org", "Back")]), "test")
    subs.set_status(db, "back@example.org", SubscriberStatus(status))
    subscribe(client, "back@example.org")
    assert status_of(db, "back@example.org") == status  # not before the click
    [mail] = mails_to(app, smtp_server, "back@example.org")
    assert client.post(f"/confirm/{confirm_token(mail)}").status_code == 200
    assert status_of(db, "back@example.org") == "active"


def test_complained_address_is_never_mailed_or_reactivated(app, client, db, smtp_server):
    subs.import_subscribers(db, import_rows([("angry@example.org", "")]), "test")
    subs.set_status(db, "angry@example.org", SubscriberStatus.COMPLAINED)
    response = subscribe(client, "angry@example.org")
    assert "Check your inbox" in response.get_data(as_text=True)
    assert mails_to(app, smtp_server, "angry@example.org") == []
    assert status_of(db, "angry@example.org") == "complained"


def test_forgotten_address_is_stored_again_only_when_confirmed(app, client, db, smtp_server):
    subs.import_subscribers(db, import_rows([("gone@example.org", "Gone")]), "test")
    subs.forget(db, "gone@example.org")
    subscribe(client, "gone@example.org")
    assert status_of(db, "gone@example.org") is None
    assert subs.is_suppressed(db, "gone@example.org")
    [mail] = mails_to(app, smtp_server, "gone@example.org")
    client.post(f"/confirm/{confirm_token(mail)}")
    assert status_of(db, "gone@example.org") == "active"
    assert not subs.is_suppressed(db, "gone@example.org")


def test_expired_link_is_refused(app, client, db, smtp_server):
    subscribe(client, "late@example.org")
    [mail] = mails_to(app, smtp_server, "late@example.org")
    db.execute("UPDATE confirmations SET expires_at = '2000-01-01T00:00:00+00:00'")
    token = confirm_token(mail)
    assert client.get(f"/confirm/{token}").status_code == 404
    assert client.post(f"/confirm/{token}").status_code == 404
    assert status_of(db, "late@example.org") == "pending"


def test_forged_confirmation_token_is_refused(client, db):
    for token in ["A" * 43, "nope", "x" * 250]:
        assert client.get(f"/confirm/{token}").status_code == 404
        assert client.post(f"/confirm/{token}").status_code == 404


def test_only_a_hash_of_the_token_is_stored(app, client, db, smtp_server):
    subscribe(client, "hash@example.org")
    [mail] = mails_to(app, smtp_server, "hash@example.org")
    token = confirm_token(mail)
    stored = db.execute("SELECT token_hash FROM confirmations").fetchone()["token_hash"]
    assert token not in stored and len(stored) == 64


def test_relay_down_still_shows_the_same_page_and_logs_without_the_address(
    app, client, smtp_server, caplog
):
    smtp_server.set_down(True)
    response = subscribe(client, "nomail@example.org")
    assert response.status_code == 200 and "Check your inbox" in response.get_data(as_text=True)
    app.extensions["dispatch"].outbox.join(timeout=60)
    assert "confirmation email was not accepted" in caplog.text
    assert "nomail@example.org" not in caplog.text


def test_unconfirmed_signups_are_not_kept(app, client, db, smtp_server):
    subscribe(client, "typo@example.org")
    mails_to(app, smtp_server, "typo@example.org")
    assert status_of(db, "typo@example.org") == "pending"
    db.execute("UPDATE confirmations SET expires_at = '2000-01-01T00:00:00+00:00'")
    db.execute("UPDATE subscribers SET created_at = '2000-01-01T00:00:00+00:00'")
    subscribe(client, "someone-else@example.org")  # any signup purges what expired
    mails_to(app, smtp_server, "someone-else@example.org")
    assert status_of(db, "typo@example.org") is None
    assert (
        db.execute(
            "SELECT COUNT(*) FROM confirmations WHERE email = 'typo@example.org'"
        ).fetchone()[0]
        == 0
    )


def test_forwarded_for_is_ignored_unless_proxies_are_configured(app, client):
    app.extensions["dispatch"].limiter = RateLimiter(limit=1, window=3600)
    token = csrf(client)
    first = client.post(
        "/subscribe",
        data={"csrf_token": token, "email": "p1@example.org"},
        headers={"X-Forwarded-For": "203.0.113.1"},
        buffered=True,
    )
    spoofed = client.post(
        "/subscribe",
        data={"csrf_token": token, "email": "p2@example.org"},
        headers={"X-Forwarded-For": "203.0.113.2"},
        buffered=True,
    )
    assert (first.status_code, spoofed.status_code) == (200, 429)


def test_behind_a_proxy_the_limit_is_per_forwarded_client(make_web_app, smtp_server):
    app = make_web_app(DISPATCH_SMTP_URL=smtp_server.url, DISPATCH_WEB_PROXIES="1")
    app.extensions["dispatch"].limiter = RateLimiter(limit=1, window=3600)
    client = app.test_client()
    token = csrf(client)

    def post(email: str, client_ip: str) -> int:
        return client.post(
            "/subscribe",
            data={"csrf_token": token, "email": email},
            headers={"X-Forwarded-For": client_ip},
            buffered=True,
        ).status_code

    assert post("q1@example.org", "203.0.113.1") == 200
    assert post("q2@example.org", "203.0.113.2") == 200
    assert post("q3@example.org", "203.0.113.1") == 429
