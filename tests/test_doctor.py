"""`dispatch doctor` end to end, against real parts on loopback: a DNS server (dnslib) reached
through DISPATCH_DNS_SERVERS, an aiosmtpd relay with and without AUTH, the Stripe stand-in, and
an HTTP server for the public URL. Nothing is mocked."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dispatch.mailer import dkim
from tests.plugins._tls import self_signed, server_context

DOMAIN = "outlet.test"
FROM = f"The Outlet <news@{DOMAIN}>"
SPF = "v=spf1 ip4:192.0.2.0/24 ~all"
DMARC = "v=DMARC1; p=quarantine; rua=mailto:dmarc@outlet.test"


@pytest.fixture(autouse=True)
def _outlet_database(db: Any) -> None:
    """The outlet's database exists (doctor reports a missing one as a failure)."""


def checks(result: Any) -> dict[str, dict[str, str]]:
    data = json.loads(result.output)
    assert set(data) == {"ok", "checks"}
    return {c["name"]: c for c in data["checks"]}


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        code = 200 if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    """A loopback HTTP server with a /healthz page, like `dispatch serve` (over http only:
    a certificate a test could make would not be trusted)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def relay_tls(tmp_path: Path) -> ssl.SSLContext:
    """A server TLS context with a self-made certificate for localhost (not trusted)."""
    return server_context(*self_signed(tmp_path))


@pytest.fixture
def dkim_key(tmp_path: Path) -> tuple[Path, str]:
    """A signing key on disk and the TXT record that matches it."""
    pem = dkim.generate_key("rsa")
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    return path, dkim.DkimSigner(DOMAIN, "sel1", pem).dns_record()


@pytest.fixture
def auth_relay() -> Iterator[Any]:
    """An aiosmtpd relay that wants a login (news / s3cret), over plain SMTP on loopback."""
    from aiosmtpd.smtp import AuthResult

    from dispatch.devsmtp import start_controller
    from tests.plugins.smtp import FaultySmtpHandler

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        ok = auth_data.login == b"news" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    handler = FaultySmtpHandler()
    controller = start_controller(handler, authenticator=authenticator, auth_require_tls=False)
    controller.handler_state = handler
    yield controller
    controller.stop()


def good_env(dns_server: Any, dkim_key: tuple[Path, str], **extra: str) -> dict[str, str]:
    key_file, record = dkim_key
    dns_server.add(DOMAIN, SPF, "google-site-verification=abc")
    dns_server.add(f"sel1._domainkey.{DOMAIN}", record)
    dns_server.add(f"_dmarc.{DOMAIN}", DMARC)
    env = {
        "DISPATCH_FROM": FROM,
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "DISPATCH_DKIM_DOMAIN": DOMAIN,
        "DISPATCH_DKIM_SELECTOR": "sel1",
        "DISPATCH_DKIM_KEY_FILE": str(key_file),
    }
    env.update(extra)
    return env


def test_everything_in_place_passes_and_sends_nothing(
    run_cli, dns_server, dkim_key, auth_relay, stripe_stub, stripe_env, web_server
):
    link = stripe_stub.add_payment_link()
    env = good_env(
        dns_server,
        dkim_key,
        DISPATCH_SMTP_URL=f"smtp://news:s3cret@127.0.0.1:{auth_relay.port}",
        DISPATCH_PAYMENT_LINK=link["url"],
        DISPATCH_PUBLIC_URL=web_server,
        **stripe_env,
    )
    result = run_cli("doctor", "--json", env=env)
    assert result.exit_code == 0, result.output
    found = checks(result)
    assert json.loads(result.output)["ok"] is True
    for name in (
        "settings",
        "relay",
        "spf",
        "dkim",
        "dmarc",
        "payment_link",
        "templates",
        "list_size",
    ):
        assert found[name]["status"] == "ok", found[name]
    assert "logged in" in found["relay"]["detail"]
    assert "s3cret" not in result.output
    assert SPF in found["spf"]["detail"]
    assert "quarantine" in found["dmarc"]["detail"]
    # Over http the public URL answers but is not https: a warning, and no one-click
    # unsubscribe, which only warns below 5,000 readers.
    assert found["public_url"]["status"] == "warn" and "http" in found["public_url"]["detail"]
    assert found["unsubscribe"]["status"] == "warn"
    assert auth_relay.handler_state.received == []  # no message went out


def test_people_read_one_line_per_check_and_exit_0(run_cli, dns_server, dkim_key, smtp_server):
    env = good_env(dns_server, dkim_key, DISPATCH_SMTP_URL=smtp_server.url)
    result = run_cli("doctor", env=env)
    assert result.exit_code == 0, result.output
    assert "ok    relay" in result.output
    assert "warn  unsubscribe" in result.output and "fix: " in result.output


def test_dns_that_never_answers_is_reported_and_the_command_still_ends(
    run_cli, silent_dns, smtp_server
):
    env = {
        "DISPATCH_FROM": FROM,
        "DISPATCH_DNS_SERVERS": silent_dns,
        "DISPATCH_SMTP_URL": smtp_server.url,
    }
    result = run_cli("doctor", "--json", env=env)
    found = checks(result)
    for name in ("spf", "dmarc"):
        assert found[name]["status"] == "warn"
        assert "DNS could not be reached" in found[name]["detail"]
    assert found["relay"]["status"] == "ok"  # the other checks went on
    assert result.exit_code == 0


def test_missing_records_warn_below_5000_readers(run_cli, dns_server, smtp_server):
    env = {
        "DISPATCH_FROM": FROM,
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "DISPATCH_SMTP_URL": smtp_server.url,
    }
    found = checks(run_cli("doctor", "--json", env=env))
    for name in ("spf", "dkim", "dmarc", "unsubscribe"):
        assert found[name]["status"] == "warn", found[name]
    assert "no SPF record" in found["spf"]["detail"]
    assert "no DMARC record" in found["dmarc"]["detail"]


def test_missing_records_fail_from_5000_readers(run_cli, db, dns_server, smtp_server):
    from dispatch.store.subscribers import import_subscribers
    from dispatch.subscribers import CsvRow

    rows = [CsvRow(line=i, email=f"r{i}@example.com", name="") for i in range(5000)]
    import_subscribers(db, rows, "test")
    env = {
        "DISPATCH_FROM": FROM,
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "DISPATCH_SMTP_URL": smtp_server.url,
    }
    result = run_cli("doctor", "--json", env=env)
    assert result.exit_code == 1
    found = checks(result)
    for name in ("spf", "dkim", "dmarc", "unsubscribe"):
        assert found[name]["status"] == "fail", found[name]
        assert "5,000" in found[name]["detail"]
    assert "5,000 active readers" in found["list_size"]["detail"]


def test_dkim_record_of_another_key_fails(run_cli, dns_server, smtp_server, tmp_path):
    other = dkim.DkimSigner(DOMAIN, "sel1", dkim.generate_key("ed25519")).dns_record()
    own = tmp_path / "own.pem"
    own.write_bytes(dkim.generate_key("ed25519"))
    dns_server.add(f"sel1._domainkey.{DOMAIN}", other)
    env = {
        "DISPATCH_FROM": FROM,
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "DISPATCH_SMTP_URL": smtp_server.url,
        "DISPATCH_DKIM_DOMAIN": DOMAIN,
        "DISPATCH_DKIM_SELECTOR": "sel1",
        "DISPATCH_DKIM_KEY_FILE": str(own),
    }
    result = run_cli("doctor", "--json", env=env)
    found = checks(result)
    assert found["dkim"]["status"] == "fail"
    assert "not the key in DISPATCH_DKIM_KEY_FILE" in found["dkim"]["detail"]
    assert result.exit_code == 1


def test_rsa_key_split_over_several_dns_strings_matches(run_cli, dns_server, smtp_server, tmp_path):
    pem = dkim.generate_key("rsa")
    path = tmp_path / "rsa.pem"
    path.write_bytes(pem)
    dns_server.add(f"s2._domainkey.{DOMAIN}", dkim.DkimSigner(DOMAIN, "s2", pem).dns_record())
    env = {
        "DISPATCH_FROM": FROM,
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "DISPATCH_SMTP_URL": smtp_server.url,
        "DISPATCH_DKIM_DOMAIN": DOMAIN,
        "DISPATCH_DKIM_SELECTOR": "s2",
        "DISPATCH_DKIM_KEY_FILE": str(path),
    }
    assert checks(run_cli("doctor", "--json", env=env))["dkim"]["status"] == "ok"


def test_relay_selector_is_checked_when_the_relay_signs(run_cli, dns_server, smtp_server):
    dns_server.add(f"ses1._domainkey.{DOMAIN}", "v=DKIM1; k=rsa; p=MIIBIjANBgkq")
    env = {
        "DISPATCH_FROM": FROM,
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "DISPATCH_SMTP_URL": smtp_server.url,
        "DISPATCH_RELAY_DKIM_SELECTOR": "ses1",
    }
    assert checks(run_cli("doctor", "--json", env=env))["dkim"]["status"] == "ok"


def test_dmarc_falls_back_to_the_parent_domain(run_cli, dns_server, smtp_server):
    dns_server.add(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject; sp=none")
    env = {
        "DISPATCH_FROM": f"News <news@mail.{DOMAIN}>",
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "DISPATCH_SMTP_URL": smtp_server.url,
    }
    found = checks(run_cli("doctor", "--json", env=env))
    assert found["dmarc"]["status"] == "ok"
    assert f"inherited from {DOMAIN}" in found["dmarc"]["detail"]
    assert "policy none" in found["dmarc"]["detail"]  # sp= governs subdomains
    assert f"_dmarc.mail.{DOMAIN}" in dns_server.queries


def test_refused_login_fails(run_cli, auth_relay, dns_server):
    env = {
        "DISPATCH_SMTP_URL": f"smtp://news:wrong@127.0.0.1:{auth_relay.port}",
        "DISPATCH_DNS_SERVERS": dns_server.address,
    }
    result = run_cli("doctor", env=env)
    assert result.exit_code == 1
    assert "fail  relay" in result.output and "refused the login" in result.output
    assert "wrong" not in result.output
    assert "Error: " in result.output and "relay" in result.output.split("Error: ")[1]


def test_unreachable_relay_fails(run_cli, dns_server):
    from dispatch.devsmtp import free_port

    env = {
        "DISPATCH_SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
        "DISPATCH_DNS_SERVERS": dns_server.address,
    }
    result = run_cli("doctor", "--json", env=env)
    found = checks(result)
    assert found["relay"]["status"] == "fail"
    assert "Cannot reach the relay" in found["relay"]["detail"]
    assert result.exit_code == 1


def test_malformed_settings_fail_their_checks_and_json_still_prints(
    run_cli, smtp_server, dns_server
):
    env = {
        "DISPATCH_SMTP_URL": smtp_server.url,
        "DISPATCH_DNS_SERVERS": "not-an-ip",
        "DISPATCH_SMTP_CONCURRENCY": "many",
        "DISPATCH_PAYMENT_LINK": "buy.stripe.com/x",
        "DISPATCH_FROM": FROM,
    }
    result = run_cli("doctor", "--json", env=env)
    assert result.exit_code == 1
    found = checks(result)
    assert found["settings"]["status"] == "fail"
    assert "DISPATCH_SMTP_CONCURRENCY" in found["settings"]["detail"]
    for name in ("spf", "dkim", "dmarc"):
        assert found[name]["status"] == "fail" and "DISPATCH_DNS_SERVERS" in found[name]["detail"]
    assert found["payment_link"]["status"] == "fail"
    assert "https" in found["payment_link"]["detail"]
    assert found["relay"]["status"] == "ok"


def test_payment_link_unknown_to_stripe_fails(run_cli, stripe_stub, stripe_env, dns_server):
    stripe_stub.add_payment_link()
    env = {
        "DISPATCH_PAYMENT_LINK": "https://donate.stripe.test/not_ours",
        "DISPATCH_DNS_SERVERS": dns_server.address,
        **stripe_env,
    }
    found = checks(run_cli("doctor", "--json", env=env))
    assert found["payment_link"]["status"] == "fail"
    assert "not a Payment Link of this Stripe account" in found["payment_link"]["detail"]


def test_unreachable_stripe_only_warns(run_cli, dns_server):
    from dispatch.devsmtp import free_port

    env = {
        "DISPATCH_PAYMENT_LINK": "https://donate.stripe.test/x",
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "STRIPE_SECRET_KEY": "sk_test_abc123",
        "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
        "STRIPE_MAX_NETWORK_RETRIES": "0",
    }
    found = checks(run_cli("doctor", "--json", env=env))
    assert found["payment_link"]["status"] == "warn"
    assert "could not be checked against Stripe" in found["payment_link"]["detail"]


def test_broken_template_fails(run_cli, tmp_path, dns_server):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.html").write_text("{% for a in issue.articles %}<p>{{ a.title }}</p>")
    env = {"DISPATCH_TEMPLATES": str(folder), "DISPATCH_DNS_SERVERS": dns_server.address}
    result = run_cli("doctor", "--json", env=env)
    found = checks(result)
    assert found["templates"]["status"] == "fail"
    assert "digest.html" in found["templates"]["detail"]
    assert result.exit_code == 1


def test_public_url_that_does_not_answer_warns(run_cli, dns_server):
    from dispatch.devsmtp import free_port

    env = {
        "DISPATCH_PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "DISPATCH_DNS_SERVERS": dns_server.address,
    }
    found = checks(run_cli("doctor", "--json", env=env))
    assert found["public_url"]["status"] == "warn"
    assert "does not answer" in found["public_url"]["detail"]


def test_starttls_and_login_are_both_tried(run_cli, dns_server, relay_tls):
    from aiosmtpd.smtp import AuthResult

    from dispatch.devsmtp import start_controller
    from tests.plugins.smtp import FaultySmtpHandler

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    handler = FaultySmtpHandler()
    controller = start_controller(
        handler,
        tls_context=relay_tls,
        require_starttls=True,
        authenticator=authenticator,
    )
    try:
        base = f"smtp://news:s3cret@127.0.0.1:{controller.port}"
        env = {"DISPATCH_DNS_SERVERS": dns_server.address}
        found = checks(
            run_cli("doctor", "--json", env={**env, "DISPATCH_SMTP_URL": base + "?verify=false"})
        )
        assert found["relay"]["status"] == "ok"
        assert "STARTTLS, logged in" in found["relay"]["detail"]
        # The self-made certificate is not trusted unless told: the check fails and says why.
        found = checks(run_cli("doctor", "--json", env={**env, "DISPATCH_SMTP_URL": base}))
        assert found["relay"]["status"] == "fail"
        assert "TLS with the relay" in found["relay"]["detail"]
        assert handler.received == []
    finally:
        controller.stop()


def test_a_digest_without_an_unsubscribe_link_warns(run_cli, tmp_path, dns_server):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "digest.txt").write_text("{% for a in issue.articles %}{{ a.title }}\n{% endfor %}")
    env = {"DISPATCH_TEMPLATES": str(folder), "DISPATCH_DNS_SERVERS": dns_server.address}
    found = checks(run_cli("doctor", "--json", env=env))
    assert found["templates"]["status"] == "warn"
    assert "no unsubscribe link" in found["templates"]["detail"]


def test_an_ed25519_only_signature_warns(run_cli, dns_server, smtp_server, tmp_path):
    pem = dkim.generate_key("ed25519")
    path = tmp_path / "ed.pem"
    path.write_bytes(pem)
    dns_server.add(f"ed._domainkey.{DOMAIN}", dkim.DkimSigner(DOMAIN, "ed", pem).dns_record())
    env = {
        "DISPATCH_FROM": FROM,
        "DISPATCH_DNS_SERVERS": dns_server.address,
        "DISPATCH_SMTP_URL": smtp_server.url,
        "DISPATCH_DKIM_DOMAIN": DOMAIN,
        "DISPATCH_DKIM_SELECTOR": "ed",
        "DISPATCH_DKIM_KEY_FILE": str(path),
    }
    found = checks(run_cli("doctor", "--json", env=env))
    assert found["dkim"]["status"] == "warn" and "Ed25519" in found["dkim"]["detail"]
