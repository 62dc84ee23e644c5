"""MIME assembly (render/message.py): headers that cannot be injected, parts that parse back,
and a golden message with its date, ids and boundaries normalised."""

from __future__ import annotations

import email
import email.policy
import os
import re
from pathlib import Path

import pytest

from dispatch.errors import ConfigError
from dispatch.models import RenderedVariant
from dispatch.render.message import MessageConfig, MessageFactory, Recipient
from tests.plugins.smtp import SAMPLE_HTML, SAMPLE_TEXT

GOLDEN = Path(__file__).parent / "golden"
CONFIG = MessageConfig(
    from_name="The Riverside Ledger",
    from_address="news@riverside.example.org",
    reply_to="editor@riverside.example.org",
    list_id='"The Riverside Ledger" <digest.riverside.example.org>',
    payment_link="https://buy.stripe.com/test_4gw5kD",
    unsubscribe_mailto="leave@riverside.example.org",
    secret=b"golden-secret",
)


def factory(
    subject="This week: the budget, the flood gauge",
    html=SAMPLE_HTML,
    text=SAMPLE_TEXT,
    config=CONFIG,
) -> MessageFactory:
    return MessageFactory(
        "2026-W48", {"non_donor": RenderedVariant("non_donor", subject, html, text)}, config
    )


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def plain(msg) -> str:
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


def recipient(**overrides) -> Recipient:
    values = dict(
        email="ana@example.org",
        name="Ana Souza",
        token="tok_ABC-123",
        unsub_token="unsub-XYZ",
        key="42",
    )
    values.update(overrides)
    return Recipient(**values)


def test_every_line_ends_in_crlf_and_parses_back_as_multipart_alternative():
    data = factory().build("non_donor", recipient())
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    msg = parse(data)
    assert msg.defects == []
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    for part in msg.iter_parts():
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.defects == []


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.net",
        "Eve\nBcc: victim@example.net",
        "Eve\rBcc: victim@example.net",
        "Eve\u2028Bcc: victim@example.net",
        'Eve", victim@example.net, "x',
        "Eve <victim@example.net>",
        "=?utf-8?q?Bcc=3A_victim=40example=2Enet?=",
    ],
)
def test_a_hostile_name_never_adds_a_header_or_a_recipient(name):
    data = factory().build("non_donor", recipient(name=name))
    msg = parse(data)
    assert msg["Bcc"] is None
    assert [a.addr_spec for a in msg["To"].addresses] == ["ana@example.org"]
    header_block = data.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", header_block, re.M)
    html = msg.get_body(("html",)).get_content()
    assert "<victim@" not in html  # the name is escaped in HTML


def test_hostile_subject_is_folded_and_encoded_not_injected():
    subject = "Budget vote\r\nBcc: victim@example.net — “quotes”, <angle> & naïve " + "x" * 120
    msg = parse(factory(subject=subject).build("non_donor", recipient()))
    assert msg["Bcc"] is None
    assert msg["Subject"] == " ".join(subject.split())


def test_non_ascii_names_are_encoded_and_read_back():
    data = factory().build("non_donor", recipient(name="Đặng Thị Lan, “Lan”"))
    assert data.split(b"\r\n\r\n", 1)[0].isascii()  # headers are 7-bit
    msg = parse(data)
    assert msg["To"].addresses[0].display_name == "Đặng Thị Lan, “Lan”"
    assert plain(msg).startswith("Dear Đặng Thị Lan, “Lan”,")


def test_quoted_printable_keeps_long_lines_equals_signs_and_trailing_spaces():
    long_line = "word= " * 60 + "end  "
    text = f"%%DISPATCH_GREETING%% {long_line}\n{long_line}\n.leading dot\n"
    html = f"<p>{'é' * 300}</p>\n<p>%%DISPATCH_NAME%%{'ü' * 200}</p>\n"
    msg = parse(factory(text=text, html=html).build("non_donor", recipient()))
    assert plain(msg) == f"Dear Ana Souza, {long_line}\n{long_line}\n.leading dot"
    html_back = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html_back == html.replace("%%DISPATCH_NAME%%", "Ana Souza").rstrip("\n")


def test_placeholders_in_the_subject_are_filled_per_reader():
    msg = parse(factory(subject="%%DISPATCH_NAME%%, your week").build("non_donor", recipient()))
    assert msg["Subject"] == "Ana Souza, your week"


def test_message_id_is_stable_per_delivery_and_differs_between_deliveries():
    first = parse(factory().build("non_donor", recipient()))["Message-ID"]
    again = parse(factory().build("non_donor", recipient()))["Message-ID"]
    other = parse(factory().build("non_donor", recipient(key="43")))["Message-ID"]
    assert first == again != other
    assert re.fullmatch(r"<2026-W48\.42\.[0-9a-f]{12}@riverside\.example\.org>", first)


def test_donation_link_without_payment_link_or_public_url_is_a_config_error():
    config = MessageConfig(from_name="X", from_address="news@example.org")
    with pytest.raises(ConfigError, match="DISPATCH_PAYMENT_LINK"):
        factory(config=config)
    factory(config=config, html="<p>no link</p>", text="no link")  # fine without one


def test_prefilled_email_is_percent_encoded_and_can_be_switched_off():
    address = "ana+news@example.org"
    text = plain(parse(factory().build("non_donor", recipient(email=address))))
    assert (
        "https://buy.stripe.com/test_4gw5kD?client_reference_id=tok_ABC-123"
        "&prefilled_email=ana%2Bnews%40example.org"
    ) in text
    config = MessageConfig(**{**CONFIG.__dict__, "prefill_email": False})
    text = plain(parse(factory(config=config).build("non_donor", recipient())))
    assert "client_reference_id=tok_ABC-123\n" in text and "prefilled_email" not in text


def normalise(data: bytes) -> bytes:
    data = re.sub(rb"^Date: .*$", b"Date: <date>", data, flags=re.M)
    data = re.sub(rb"<2026-W48\.42\.[0-9a-f]{12}@", b"<2026-W48.42.<hmac>@", data)
    return re.sub(rb"=_dispatch_[0-9a-f]{24}", b"=_dispatch_<boundary>", data)


def test_golden_message():
    data = normalise(factory().build("non_donor", recipient(name="José Núñez")))
    golden = GOLDEN / "digest_non_donor.eml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_bytes(data)
    assert data == golden.read_bytes(), "run with UPDATE_GOLDEN=1 after an intended change"
