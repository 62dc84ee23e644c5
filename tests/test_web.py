"""The web service's personal links, archive, headers and logs, through Flask's test client
(and, for the logs, the real servers on loopback)."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dispatch.store import clicks as web_store
from dispatch.store import subscribers as subs
from dispatch.web.security import RateLimiter, redact
from tests.plugins.web import PAYMENT_LINK, SECRET_KEY, seed_sent_issue, web_env

PEOPLE = [("ana@example.org", "Ana Ruiz"), ("ben+news@example.org", "Ben O'Neil")]


@pytest.fixture
def sent(db, make_settings):
    return seed_sent_issue(db, make_settings(**web_env()), PEOPLE)


@pytest.fixture
def client(make_web_app):
    return make_web_app().test_client()


def status_of(db, email: str) -> str | None:
    sub = subs.get_subscriber(db, email)
    return sub.status.value if sub else None


# -- unsubscribe -----------------------------------------------------------------------------


def test_get_shows_a_button_and_unsubscribes_no_one(client, db, sent):
    token = sent.readers["ana@example.org"].unsub_token
    for _ in range(3):  # a link scanner fetching the URL, repeatedly
        response = client.get(f"/u/{token}")
        assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<form method="post"' in html and ">Unsubscribe</button>" in html
    assert "an***@example.org" in html and "ana@example.org" not in html
    assert response.headers["Cache-Control"] == "no-store"
    assert status_of(db, "ana@example.org") == "active"
    assert client.head(f"/u/{token}").status_code == 200
    assert status_of(db, "ana@example.org") == "active"


def test_one_click_post_unsubscribes_without_cookie_or_csrf_and_is_idempotent(client, db, sent):
    token = sent.readers["ana@example.org"].unsub_token
    response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert status_of(db, "ana@example.org") == "unsubscribed"
    assert status_of(db, "ben+news@example.org") == "active"
    again = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert status_of(db, "ana@example.org") == "unsubscribed"


def test_one_click_post_as_multipart_form_data(client, db, sent):
    token = sent.readers["ana@example.org"].unsub_token
    response = client.post(
        f"/u/{token}", data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data"
    )
    assert response.status_code == 200
    assert status_of(db, "ana@example.org") == "unsubscribed"


@pytest.mark.parametrize(
    "alter",
    [
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t[:-1] + ("B" if t[-1] != "B" else "C"),
        lambda t: t.upper() if t.upper() != t else t.lower(),
        lambda t: "x" * 32,
        lambda t: t + "%00",
        lambda t: "A" * 300,
    ],
)
def test_forged_or_altered_unsubscribe_token_is_refused_and_changes_nothing(
    client, db, sent, alter
):
    token = alter(sent.readers["ana@example.org"].unsub_token)
    assert client.get(f"/u/{token}").status_code == 404
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert client.post(f"/u/{token}/resubscribe").status_code == 404
    assert status_of(db, "ana@example.org") == "active"
    assert status_of(db, "ben+news@example.org") == "active"


def test_button_then_resubscribe_with_the_same_token(client, db, sent):
    token = sent.readers["ben+news@example.org"].unsub_token
    page = client.post(
        f"/u/{token}", data={"action": "unsubscribe", "List-Unsubscribe": "One-Click"}
    )
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "You are unsubscribed" in html and f'action="/u/{token}/resubscribe"' in html
    assert status_of(db, "ben+news@example.org") == "unsubscribed"
    back = client.post(f"/u/{token}/resubscribe")
    assert back.status_code == 200 and "subscribed again" in back.get_data(as_text=True)
    assert status_of(db, "ben+news@example.org") == "active"


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_resubscribe_never_reactivates_bounced_or_complained(client, db, sent, status):
    from dispatch.models import SubscriberStatus

    subs.set_status(db, "ana@example.org", SubscriberStatus(status))
    token = sent.readers["ana@example.org"].unsub_token
    assert client.post(f"/u/{token}/resubscribe").status_code == 200
    assert status_of(db, "ana@example.org") == status
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert status_of(db, "ana@example.org") == status
    assert "could not be delivered" in client.get(f"/u/{token}").get_data(as_text=True)


def test_forgotten_subscriber_token_is_unknown(client, db, sent):
    subs.forget(db, "ana@example.org")
    token = sent.readers["ana@example.org"].unsub_token
    assert client.get(f"/u/{token}").status_code == 404
    assert client.post(f"/u/{token}/resubscribe").status_code == 404
    assert status_of(db, "ana@example.org") is None


# -- donation redirect ---------------------------------------------------------------------


def test_click_is_counted_and_redirects_exactly_to_the_payment_link(client, db, sent):
    reader = sent.readers["ben+news@example.org"]
    response = client.get(f"/d/{reader.token}")
    assert response.status_code == 303
    assert response.headers["Location"] == (
        f"{PAYMENT_LINK}?client_reference_id={reader.token}"
        "&prefilled_email=ben%2Bnews%40example.org"
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert web_store.click_count(db, reader.token) == 1
    client.get(f"/d/{reader.token}")
    assert web_store.click_count(db, reader.token) == 2


@pytest.mark.parametrize(
    "query",
    [
        "?next=https://evil.example/",
        "?url=//evil.example&redirect=https%3A%2F%2Fevil.example",
        "?client_reference_id=someone-else&prefilled_email=eve%40evil.example",
        "?return_to=javascript:alert(1)",
    ],
)
def test_redirect_ignores_the_query_string(client, sent, query):
    reader = sent.readers["ana@example.org"]
    response = client.get(f"/d/{reader.token}{query}")
    assert response.status_code == 303
    assert response.headers["Location"] == (
        f"{PAYMENT_LINK}?client_reference_id={reader.token}&prefilled_email=ana%40example.org"
    )


def test_unknown_donation_token_is_404_and_counts_nothing(client, db, sent):
    for token in ["0" * 32, sent.readers["ana@example.org"].token + "0", "..", "a" * 250]:
        response = client.get(f"/d/{token}")
        assert response.status_code == 404
        assert "Location" not in response.headers
        assert "not valid" in response.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM clicks").fetchone()[0] == 0


def test_head_request_counts_no_click(client, db, sent):
    token = sent.readers["ana@example.org"].token
    assert client.head(f"/d/{token}").status_code == 204
    assert web_store.click_count(db, token) == 0


def test_prefill_can_be_switched_off(make_web_app, sent):
    client = make_web_app(DISPATCH_PREFILL_EMAIL="false").test_client()
    token = sent.readers["ana@example.org"].token
    location = client.get(f"/d/{token}").headers["Location"]
    assert location == f"{PAYMENT_LINK}?client_reference_id={token}"


def test_forgotten_reader_is_redirected_without_their_address(client, db, sent):
    token = sent.readers["ana@example.org"].token
    subs.forget(db, "ana@example.org")
    response = client.get(f"/d/{token}")
    assert response.headers["Location"] == f"{PAYMENT_LINK}?client_reference_id={token}"
    assert web_store.click_count(db, token) == 1


def test_payment_link_stored_by_donations_setup_is_used(make_web_app, db, sent):
    from dispatch.store import donations

    donations.save_payment_link(
        db,
        link_id="plink_123",
        url="https://buy.stripe.com/test_setup",
        kind="custom",
        livemode=False,
    )
    client = make_web_app(DISPATCH_PAYMENT_LINK="").test_client()
    token = sent.readers["ana@example.org"].token
    location = client.get(f"/d/{token}").headers["Location"]
    assert location.startswith(f"https://buy.stripe.com/test_setup?client_reference_id={token}&")


def test_no_payment_link_at_all_is_a_503_page(make_web_app, sent, caplog):
    client = make_web_app(DISPATCH_PAYMENT_LINK="").test_client()
    response = client.get(f"/d/{sent.readers['ana@example.org'].token}")
    assert response.status_code == 503
    assert "DISPATCH_PAYMENT_LINK" in caplog.text


# -- archive ---------------------------------------------------------------------------------


def test_archive_lists_sent_digests_newest_first_and_no_drafts(client, db, make_settings, sent):
    from dispatch.store import issues

    seed_sent_issue(db, make_settings(**web_env()), [], issue_id="2026-W48")
    issues.create_issue(db, "2026-W49", subject="Draft, not public")
    html = client.get("/archive/").get_data(as_text=True)
    assert html.index("2026-W48") < html.index("2026-W47")
    assert "Draft, not public" not in html
    assert client.get("/archive/2026-W49").status_code == 404
    assert client.get("/archive/2026-W99").status_code == 404


def test_archived_issue_carries_nothing_personal(client, sent):
    response = client.get(f"/archive/{sent.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Council passes a budget" in html and "Dear reader," in html
    assert f'href="{PAYMENT_LINK}"' in html
    assert "%%DISPATCH_" not in html
    for reader in sent.readers.values():
        for secret in (
            reader.email,
            reader.token,
            reader.unsub_token,
            reader.name,
            reader.name.split()[0],
        ):
            assert secret not in html
    assert "client_reference_id" not in html and "prefilled_email" not in html
    assert "/u/" not in html and "/d/" not in html


# -- headers, limits, logs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/subscribe", "/archive/", "/u/nope", "/d/nope", "/confirm/nope", "/healthz"]
)
def test_every_response_has_the_security_headers(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    for part in (
        "default-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src https: data:",
        "frame-ancestors 'none'",
    ):
        assert part in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_app_refuses_to_start_without_a_secret_key(make_settings):
    from dispatch.errors import ConfigError
    from dispatch.web import create_app

    with pytest.raises(ConfigError, match="DISPATCH_SECRET_KEY"):
        create_app(make_settings())


def test_rate_limiter_sliding_window():
    limiter = RateLimiter(limit=2, window=3600)
    assert limiter.allow("1.2.3.4") and limiter.allow("1.2.3.4")
    assert not limiter.allow("1.2.3.4")
    assert limiter.allow("5.6.7.8")


def test_redaction_removes_tokens_and_queries():
    line = '"GET /u/AbC_123-x HTTP/1.1" 200 /d/tok?e=a%40b /confirm/zz /archive/2026-W47'
    assert redact(line) == (
        '"GET /u/[token] HTTP/1.1" 200 /d/[token]?[query] /confirm/[token] /archive/2026-W47'
    )
    assert redact("Is it set? Yes.") == "Is it set? Yes."


def test_redaction_removes_the_manage_link_of_a_monthly_gift():
    # /m/<subscription>.<signature> opens the donor's Stripe portal and never expires.
    line = '"POST /m/sub_1Abc.Zx9yQ2_sig HTTP/1.1" 303'
    assert redact(line) == '"POST /m/[token] HTTP/1.1" 303'


def test_unexpected_errors_are_logged_without_the_token(make_web_app, sent, caplog, monkeypatch):
    from dispatch.jobs import unsubscribe as jobs

    def broken(db, token):
        raise RuntimeError("a bug")

    monkeypatch.setattr(jobs, "subscriber_for_token", broken)  # stands in for any bug
    app = make_web_app()
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    token = sent.readers["ana@example.org"].unsub_token
    assert app.test_client().get(f"/u/{token}?e=ana@example.org").status_code == 500
    assert "Exception on /u/[token]" in caplog.text
    assert token not in caplog.text and "ana@example.org" not in caplog.text


def test_dev_server_request_log_has_no_tokens_or_addresses(live_web, db, sent, caplog):
    from dispatch.web.security import install_log_redaction

    install_log_redaction("werkzeug")
    reader = sent.readers["ana@example.org"]
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        urllib.request.urlopen(f"{live_web.url}/u/{reader.unsub_token}").read()
        try:
            urllib.request.urlopen(f"{live_web.url}/d/{reader.token}?x=ana%40example.org")
        except urllib.error.HTTPError:
            pass  # the redirect goes to Stripe, which a test cannot reach
        except urllib.error.URLError:
            pass
    logged = caplog.text
    assert "/u/[token]" in logged and "/d/[token]" in logged
    for secret in (reader.unsub_token, reader.token, "ana", "127.0.0.1"):
        assert secret not in logged


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_documented_gunicorn_command_serves_the_app_with_token_free_access_log(
    tmp_path: Path, db, db_url, make_settings, sent
):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        from tests.conftest import skip_or_fail

        skip_or_fail("gunicorn is not installed in the venv")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISPATCH_", "STRIPE_"))}
    env.update(web_env(public_url=f"http://127.0.0.1:{port}"))
    env["DISPATCH_DB"] = db_url
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    log_file = tmp_path / "gunicorn.log"
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(gunicorn),
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{port}",
                "-c",
                "python:dispatch.web.gunicorn_conf",
                "dispatch.web:wsgi_app()",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read()
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
            reader = sent.readers["ana@example.org"]
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/u/{reader.unsub_token}")
            assert page.status == 200
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/u/{reader.unsub_token}",
                data=b"List-Unsubscribe=One-Click",
                method="POST",
            )
            assert urllib.request.urlopen(request).status == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert status_of(db, "ana@example.org") == "unsubscribed"
    logged = log_file.read_text()
    assert re.search(r'"POST /u/\[token\] HTTP/1\.1" 200', logged), logged
    assert reader.unsub_token not in logged and "127.0.0.1 " not in logged.split("Listening")[-1]


# -- the command -------------------------------------------------------------------------


def test_dispatch_serve_serves_and_logs_without_tokens(tmp_path: Path, db, db_url, sent):
    dispatch = Path(sys.executable).with_name("dispatch")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISPATCH_", "STRIPE_"))}
    env.update(web_env(public_url=f"http://127.0.0.1:{port}"), DISPATCH_DB=db_url)
    log_file = tmp_path / "serve.log"
    token = sent.readers["ana@example.org"].unsub_token
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [str(dispatch), "--no-dotenv", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read()
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.05)
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/u/{token}").status == 200
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    logged = log_file.read_text()
    assert f"http://127.0.0.1:{port}/" in logged and "GET /u/[token]" in logged, logged
    assert token not in logged
    assert status_of(db, "ana@example.org") == "active"


def test_serve_help_shows_the_production_command(run_cli):
    result = run_cli("serve", "--help")
    assert result.exit_code == 0
    assert "gunicorn -w 4" in result.output and "dispatch.web:wsgi_app()" in result.output


def test_serve_without_secret_key_names_the_setting(run_cli):
    result = run_cli("serve", "--port", "0")
    assert result.exit_code == 1
    assert "DISPATCH_SECRET_KEY" in result.output


def test_serve_refuses_a_port_in_use(run_cli):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), env={"DISPATCH_SECRET_KEY": SECRET_KEY})
    assert result.exit_code == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in result.output
