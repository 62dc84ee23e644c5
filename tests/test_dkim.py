"""DKIM signing: every signature is checked by dkimpy's own verifier.

DNS is the one part nothing local stands in for: dkimpy's ``verify`` takes a ``dnsfunc``, and
ours answers the TXT query for the test key (and records the name asked for) instead of the
network. Everything else is real: real keys, real messages, dkimpy's real verifier.
"""

from __future__ import annotations

import stat
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import dkim
import pytest
from dkim.canonicalization import Relaxed

from dispatch.errors import ConfigError
from dispatch.mailer.dkim import (
    DkimSigner,
    generate_key,
    relaxed_body,
    relaxed_header,
    signer_from_settings,
)

DOMAIN, SELECTOR = "outlet.test", "dispatch2026"


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    return generate_key("rsa", 2048)


@pytest.fixture(scope="module")
def ed_pem() -> bytes:
    return generate_key("ed25519")


def verify(message: bytes, signer: DkimSigner) -> bool:
    asked: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return signer.dns_record().encode() if name == f"{signer.dns_name}.".encode() else b""

    result = dkim.verify(message, dnsfunc=dnsfunc)
    assert asked == [f"{SELECTOR}._domainkey.{DOMAIN}.".encode()]
    return bool(result)


def multipart_message(subject: str, name: str = "Ana Müller") -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = '"The Riverside Ledger" <news@outlet.test>'
    msg["To"] = f'"{name}" <ana@example.test>'
    msg["Subject"] = subject
    msg["Message-ID"] = "<2026-W48.17.0123456789ab@outlet.test>"
    msg["List-Unsubscribe"] = (
        "<mailto:news@outlet.test?subject=unsubscribe%20tok>, "
        "<https://outlet.test/u/a-rather-long-unsubscribe-token-that-makes-this-header-fold>"
    )
    msg.set_content("Dear Ana,\n\nThe council   voted.  \t\n\n\n")
    msg.add_alternative("<p>Dear Ana,</p>\n<p>The council voted.</p>\n\n\n", subtype="html")
    return msg.as_bytes()


MESSAGES = {
    "non-ascii subject and name": multipart_message("Café budget: what the council decided ✓"),
    "long folded subject": multipart_message(
        "A very long subject line about the flood defences, the school roof, the winter "
        "market and the council budget that certainly needs folding over several lines"
    ),
    "trailing blank lines and whitespace": (
        b"From: news@outlet.test\r\nTo: a@example.test\r\nSubject:   spaced\t out  \r\n"
        b"Date: Fri, 27 Nov 2026 20:00:00 +0000\r\n\r\nline one   \r\n\tline two\r\n\r\n\r\n\r\n"
    ),
    "bare LF line endings": b"From: news@outlet.test\nTo: a@example.test\nSubject: lf\n\nbody\n",
    "empty body": b"From: news@outlet.test\r\nTo: a@example.test\r\nSubject: empty\r\n\r\n",
    "body without final line break": b"From: news@outlet.test\r\nSubject: x\r\n\r\nno end",
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
def test_signature_verifies_with_dkimpy(case: str, algorithm: str, rsa_pem, ed_pem) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, rsa_pem if algorithm == "rsa" else ed_pem)
    signed = signer.sign(MESSAGES[case])
    assert signed.startswith(b"DKIM-Signature: v=1; a=")
    assert b"\n" not in signed.replace(b"\r\n", b"")  # CRLF only, no bare LF
    assert max(len(line) for line in signed.split(b"\r\n")[:6]) <= 78
    assert verify(signed, signer)


def test_dispatchs_own_personal_messages_sign_and_verify(rsa_pem) -> None:
    """The bytes the send engine builds (render.message) are what gets signed in a send."""
    from dispatch.models import PLACEHOLDERS, RenderedVariant
    from dispatch.render.message import MessageConfig, MessageFactory, Recipient

    html = (
        f"<html><body>\n  <p>{PLACEHOLDERS['GREETING']}</p>\n"
        + "    <p>The council   voted on the budget. Café ✓</p>\n" * 200
        + f'  <p><a href="{PLACEHOLDERS["DONATE_URL"]}">Donate</a></p>\n</body></html>\n'
    )
    text = f"{PLACEHOLDERS['GREETING']}\n\nThe council voted.\n\n{PLACEHOLDERS['DONATE_URL']}\n"
    factory = MessageFactory(
        "2026-W48",
        {
            "non_donor": RenderedVariant(
                "non_donor", "Flood defences: what was decided ✓", html, text
            )
        },
        MessageConfig(
            from_name="The Riverside Ledger",
            from_address="news@outlet.test",
            payment_link="https://donate.stripe.com/test_x",
            secret=b"k" * 32,
            public_url="https://outlet.test",
        ),
    )
    signer = DkimSigner(DOMAIN, SELECTOR, rsa_pem)
    for n, name in enumerate(["Zoë Müller", 'O\'Brien, Pat "the pen"', ""]):
        built = factory.build(
            "non_donor",
            Recipient(
                email=f"r{n}@example.test",
                name=name,
                token=f"tok{n}",
                unsub_token=f"u{n}",
                key=str(n + 1),
            ),
        )
        assert verify(signer.sign(built), signer)


def test_signed_message_keeps_the_original_bytes_below_the_signature(rsa_pem) -> None:
    original = MESSAGES["non-ascii subject and name"]
    signed = DkimSigner(DOMAIN, SELECTOR, rsa_pem).sign(original)
    assert signed.endswith(original)
    header = signed[: len(signed) - len(original)].decode()
    assert "c=relaxed/relaxed" in header and f"d={DOMAIN}" in header and f"s={SELECTOR}" in header
    assert "h=from:to:subject:message-id:" in header.replace("\r\n\t", "")


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
@pytest.mark.parametrize(
    "old,new",
    [
        (b"The council voted", b"The council vetoed"),  # body
        (b"Subject: Caf", b"Subject: Kaf"),  # signed header
        (b"ana@example.test", b"eve@example.test"),  # To
    ],
    ids=["body", "subject", "to"],
)
def test_tampering_breaks_the_signature(algorithm, old, new, rsa_pem, ed_pem) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, rsa_pem if algorithm == "rsa" else ed_pem)
    original = multipart_message("Cafe news")
    signed = signer.sign(original)
    assert verify(signed, signer)
    assert old in signed
    assert not verify(signed.replace(old, new, 1), signer)


def test_a_second_from_header_added_later_breaks_the_signature(rsa_pem) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, rsa_pem)
    signed = signer.sign(MESSAGES["trailing blank lines and whitespace"])
    head, _, body = signed.partition(b"\r\n\r\n")
    forged = head + b"\r\nFrom: ceo@outlet.test\r\n\r\n" + body
    assert not verify(forged, signer)


def test_whitespace_changes_in_transit_keep_it_valid_under_relaxed(rsa_pem) -> None:
    signer = DkimSigner(DOMAIN, SELECTOR, rsa_pem)
    signed = signer.sign(MESSAGES["trailing blank lines and whitespace"])
    relayed = signed.replace(b"line one   \r\n", b"line one\r\n").replace(
        b"Subject:   spaced\t out  ", b"subject: spaced out"
    )
    assert relayed != signed
    assert verify(relayed, signer)


def test_a_key_for_another_message_does_not_verify(rsa_pem) -> None:
    other = DkimSigner(DOMAIN, SELECTOR, generate_key("rsa", 2048))
    signed = DkimSigner(DOMAIN, SELECTOR, rsa_pem).sign(MESSAGES["empty body"])
    assert not verify(signed, other)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n",
        b"\r\n\r\n",
        b"a  b \t\r\n\r\n",
        b" x\r\n\ty \r\n",
        b"no end",
        b"a\rb\r\n",
        b"a\t \tb     c \t \r\n  \r\n\t\r\n",
        b"   \r\nx",
    ],
)
def test_body_canonicalisation_matches_dkimpy(body: bytes) -> None:
    expected = Relaxed.canonicalize_body(
        body if body.endswith(b"\r\n") or not body else body + b"\r\n"
    )
    assert relaxed_body(body) == expected


def test_header_canonicalisation_matches_dkimpy() -> None:
    name, value = b"Subject ", b"  hello\r\n \t world  "
    [(cname, cvalue)] = Relaxed.canonicalize_headers([(name, value)])
    assert relaxed_header(name, value) + b"\r\n" == cname + b":" + cvalue


def test_message_without_from_is_refused(rsa_pem) -> None:
    with pytest.raises(ValueError, match="From"):
        DkimSigner(DOMAIN, SELECTOR, rsa_pem).sign(b"To: a@example.test\r\n\r\nbody\r\n")


@pytest.mark.parametrize("domain,selector", [("not a domain", "s"), ("outlet.test", "bad sel")])
def test_bad_domain_or_selector_is_a_config_error(domain, selector, rsa_pem) -> None:
    with pytest.raises(ConfigError):
        DkimSigner(domain, selector, rsa_pem)


# -- settings ------------------------------------------------------------------------------


def test_no_dkim_settings_means_no_signer(make_settings) -> None:
    assert signer_from_settings(make_settings()) is None


def test_half_configured_dkim_names_the_missing_variables(make_settings, tmp_path) -> None:
    settings = make_settings(DISPATCH_DKIM_DOMAIN=DOMAIN, DISPATCH_DKIM_SELECTOR=SELECTOR)
    with pytest.raises(ConfigError, match="DISPATCH_DKIM_KEY_FILE") as info:
        signer_from_settings(settings)
    assert "DISPATCH_DKIM_DOMAIN, DISPATCH_DKIM_SELECTOR set" in str(info.value)


def test_unreadable_key_file_is_named(make_settings, tmp_path) -> None:
    missing = tmp_path / "nope.pem"
    settings = make_settings(
        DISPATCH_DKIM_DOMAIN=DOMAIN,
        DISPATCH_DKIM_SELECTOR=SELECTOR,
        DISPATCH_DKIM_KEY_FILE=str(missing),
    )
    with pytest.raises(ConfigError, match="DISPATCH_DKIM_KEY_FILE .*nope.pem cannot be read"):
        signer_from_settings(settings)


def test_a_file_that_is_not_a_key_is_named_without_its_content(make_settings, tmp_path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWlzaA==\n-----END PRIVATE KEY-----\n")
    settings = make_settings(
        DISPATCH_DKIM_DOMAIN=DOMAIN,
        DISPATCH_DKIM_SELECTOR=SELECTOR,
        DISPATCH_DKIM_KEY_FILE=str(bogus),
    )
    with pytest.raises(ConfigError, match="not a usable DKIM key") as info:
        signer_from_settings(settings)
    assert "c2VjcmV0" not in str(info.value)


def test_configured_signer_signs_verifiable_mail(make_settings, tmp_path, ed_pem) -> None:
    key = tmp_path / "dkim.pem"
    key.write_bytes(ed_pem)
    settings = make_settings(
        DISPATCH_DKIM_DOMAIN=DOMAIN,
        DISPATCH_DKIM_SELECTOR=SELECTOR,
        DISPATCH_DKIM_KEY_FILE=str(key),
    )
    signer = signer_from_settings(settings)
    assert signer is not None and signer.algorithm == "ed25519-sha256"
    assert verify(signer.sign(MESSAGES["non-ascii subject and name"]), signer)


# -- the CLI -------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_0600_and_prints_the_record(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "dkim.pem"
    result = run_cli(
        "dkim", "keygen", "--selector", SELECTOR, "--domain", DOMAIN, "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"{SELECTOR}._domainkey.{DOMAIN}.  IN  TXT" in result.output
    assert "PRIVATE KEY" not in result.output
    signer = DkimSigner(DOMAIN, SELECTOR, out.read_bytes())
    printed = "".join(result.output.split("TXT", 1)[1].split('"')[1::2])
    assert printed == signer.dns_record()
    assert verify(signer.sign(MESSAGES["empty body"]), signer)


def test_keygen_refuses_to_overwrite_without_force(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "dkim.pem"
    out.write_text("keep me")
    result = run_cli(
        "dkim", "keygen", "--selector", SELECTOR, "--domain", DOMAIN, "--out", str(out)
    )
    assert result.exit_code == 1
    assert "already exists" in result.output and out.read_text() == "keep me"
    forced = run_cli(
        "dkim",
        "keygen",
        "--selector",
        SELECTOR,
        "--domain",
        DOMAIN,
        "--out",
        str(out),
        "--force",
        "--algorithm",
        "ed25519",
        "--json",
    )
    assert forced.exit_code == 0, forced.output
    assert '"algorithm": "ed25519-sha256"' in forced.output


def test_record_shows_the_configured_keys_txt_value(run_cli, tmp_path: Path, rsa_pem) -> None:
    key = tmp_path / "dkim.pem"
    key.write_bytes(rsa_pem)
    env = {
        "DISPATCH_DKIM_DOMAIN": DOMAIN,
        "DISPATCH_DKIM_SELECTOR": SELECTOR,
        "DISPATCH_DKIM_KEY_FILE": str(key),
    }
    result = run_cli("dkim", "record", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert DkimSigner(DOMAIN, SELECTOR, rsa_pem).dns_record() in result.output
    unconfigured = run_cli("dkim", "record")
    assert unconfigured.exit_code == 1 and "not configured" in unconfigured.output
