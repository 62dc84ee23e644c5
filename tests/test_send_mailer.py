"""The mailer on its own: relay URLs, TLS (STARTTLS and smtps) and per-recipient verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.devsmtp import start_controller
from dispatch.errors import ConfigError, SendError
from dispatch.mailer import Outcome, SmtpConnection, parse_smtp_url
from tests.plugins._tls import self_signed, server_context
from tests.plugins.smtp import FaultySmtpHandler

MESSAGE = b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "starttls", "user", "password"),
    [
        ("smtp://relay.example.org", "relay.example.org", 25, False, "auto", "", ""),
        # a password over the network: STARTTLS becomes required, never skipped in clear
        ("smtp://u:p@relay.example.org:587", "relay.example.org", 587, False, "require", "u", "p"),
        (
            "smtp://u:p@relay.example.org:587?starttls=never",
            "relay.example.org",
            587,
            False,
            "never",
            "u",
            "p",
        ),
        (
            "smtps://apikey:s%2Fe%40c%3Ar%25et@smtp.example.com",
            "smtp.example.com",
            465,
            True,
            "never",
            "apikey",
            "s/e@c:r%et",
        ),
        ("SMTP://relay:2525?starttls=require", "relay", 2525, False, "require", "", ""),
        ("smtp://a%40b.org:pw@[::1]:25", "::1", 25, False, "auto", "a@b.org", "pw"),
    ],
)
def test_relay_urls_are_parsed_and_credentials_percent_decoded(
    url, host, port, tls, starttls, user, password
):
    target = parse_smtp_url(url)
    assert (target.host, target.port, target.implicit_tls, target.starttls) == (
        host,
        port,
        tls,
        starttls,
    )
    assert (target.username, target.password.reveal()) == (user, password)
    assert repr(target.password) == ("Secret('***')" if password else "Secret('')")
    assert "@" not in target.describe() or not user


@pytest.mark.parametrize(
    "url",
    [
        "http://relay",
        "relay.example.org:25",
        "smtp://",
        "smtp://relay:notaport",
        "smtp://relay?starttls=maybe",
    ],
)
def test_bad_relay_urls_name_the_setting(url):
    with pytest.raises(ConfigError, match="DISPATCH_SMTP_URL"):
        parse_smtp_url(url)


def test_bad_relay_url_does_not_echo_the_password():
    with pytest.raises(ConfigError) as raised:
        parse_smtp_url("ftp://user:hunter2@relay")
    assert "hunter2" not in str(raised.value)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    return self_signed(folder)


class TlsRecorder(FaultySmtpHandler):
    def __init__(self) -> None:
        super().__init__()
        self.tls_sessions: list[bool] = []

    async def handle_DATA(self, server, session, envelope):
        implicit = server.transport.get_extra_info("ssl_object") is not None
        self.tls_sessions.append(session.ssl is not None or implicit)
        return await super().handle_DATA(server, session, envelope)


def test_starttls_is_used_when_offered(tls_files):
    handler = TlsRecorder()
    controller = start_controller(
        handler, tls_context=server_context(*tls_files), require_starttls=True
    )
    try:
        conn = SmtpConnection(
            parse_smtp_url(f"smtp://127.0.0.1:{controller.port}?verify=false"), timeout=5
        )
        status = conn.send("news@example.org", "ana@example.org", MESSAGE)
        conn.close()
    finally:
        controller.stop()
    assert status.outcome == Outcome.SENT
    assert handler.tls_sessions == [True]
    assert handler.received[0].data.endswith(b".leading dot\r\nbody\r\n")


def test_starttls_verifies_the_certificate_by_default(tls_files):
    controller = start_controller(TlsRecorder(), tls_context=server_context(*tls_files))
    try:
        conn = SmtpConnection(parse_smtp_url(f"smtp://127.0.0.1:{controller.port}"), timeout=5)
        with pytest.raises(SendError, match="TLS with the relay"):
            conn.open()
    finally:
        controller.stop()


def test_starttls_required_but_not_offered_is_an_error(smtp_server):
    conn = SmtpConnection(
        parse_smtp_url(f"smtp://127.0.0.1:{smtp_server.port}?starttls=require"), timeout=5
    )
    with pytest.raises(SendError, match="does not offer STARTTLS"):
        conn.open()


def test_smtps_uses_implicit_tls(tls_files):
    handler = TlsRecorder()
    controller = start_controller(handler, ssl_context=server_context(*tls_files))
    try:
        conn = SmtpConnection(
            parse_smtp_url(f"smtps://127.0.0.1:{controller.port}?verify=false"), timeout=5
        )
        status = conn.send("news@example.org", "ana@example.org", MESSAGE)
        conn.close()
    finally:
        controller.stop()
    assert status.outcome == Outcome.SENT and handler.tls_sessions == [True]


def test_verdicts_per_recipient_and_one_connection_reused(smtp_server):
    smtp_server.script_rcpt("temp@example.org", "450 4.2.0 mailbox busy")
    smtp_server.script_rcpt("gone@example.org", "550 5.1.1 user unknown")
    smtp_server.script_data("big@example.org", "552 5.3.4 message too big")
    conn = SmtpConnection(parse_smtp_url(smtp_server.url), timeout=5)
    results = {
        rcpt: conn.send("news@example.org", rcpt, MESSAGE)
        for rcpt in (
            "ok@example.org",
            "temp@example.org",
            "gone@example.org",
            "big@example.org",
            "ok2@example.org",
        )
    }
    conn.close()
    assert results["ok@example.org"].outcome == Outcome.SENT
    assert results["temp@example.org"].outcome == Outcome.TEMPORARY
    assert results["temp@example.org"].describe == "450 4.2.0 mailbox busy"
    assert results["gone@example.org"].outcome == Outcome.PERMANENT
    assert results["gone@example.org"].code == 550
    assert results["big@example.org"].outcome == Outcome.PERMANENT
    assert results["ok2@example.org"].outcome == Outcome.SENT
    assert smtp_server.connections == 1
    assert [m.rcpt for m in smtp_server.messages] == ["ok@example.org", "ok2@example.org"]
    assert smtp_server.messages[0].data == MESSAGE  # dot-stuffing undone by the server


def test_dropped_connection_is_temporary_and_the_next_send_reconnects(smtp_server):
    conn = SmtpConnection(parse_smtp_url(smtp_server.url), timeout=5)
    assert conn.send("news@example.org", "a@example.org", MESSAGE).outcome == Outcome.SENT
    smtp_server.drop_after(0)
    lost = conn.send("news@example.org", "b@example.org", MESSAGE)
    assert lost.outcome == Outcome.TEMPORARY and lost.connection_lost
    smtp_server.recover()
    assert conn.send("news@example.org", "b@example.org", MESSAGE).outcome == Outcome.SENT
    conn.close()
    assert [m.rcpt for m in smtp_server.messages] == ["a@example.org", "b@example.org"]
