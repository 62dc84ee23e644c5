"""Greeting by first name (DISPATCH_GREETING): import, then the ledger, then the copy."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace

import pytest

from dispatch.config import Settings
from dispatch.errors import ConfigError
from dispatch.models import RenderedVariant
from dispatch.render.message import MessageConfig, MessageFactory, Recipient
from dispatch.render.placeholders import greeting_for
from dispatch.store import ledger, to_db_time, utcnow
from tests.plugins.smtp import SAMPLE_HTML, SAMPLE_TEXT

CONFIG = MessageConfig(
    from_name="Outlet",
    from_address="news@example.org",
    payment_link="https://buy.stripe.com/test_x",
    secret=b"s",
)


@pytest.mark.parametrize(
    ("mode", "name", "first", "expected"),
    [
        ("first", "Ada Lovelace", "Ada", "Dear Ada,"),
        ("first", "Ada Lovelace", "", "Dear Ada Lovelace,"),  # never split by guessing
        ("full", "Ada Lovelace", "Ada", "Dear Ada Lovelace,"),
        ("none", "Ada Lovelace", "Ada", "Dear reader,"),
        ("first", "", "", "Dear reader,"),
        ("first", "Ada\r\nBcc: x@example.org", "", "Dear Ada Bcc: x@example.org,"),
    ],
)
def test_greeting_for(mode, name, first, expected):
    assert greeting_for(name, first, mode) == expected


def _plain(config: MessageConfig, recipient: Recipient) -> str:
    variant = RenderedVariant("non_donor", "Subject", SAMPLE_HTML, SAMPLE_TEXT)
    data = MessageFactory("2026-W48", {"non_donor": variant}, config).build("non_donor", recipient)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    return msg.get_body(("plain",)).get_content()


def test_the_copy_greets_by_first_name_by_default_and_as_the_setting_says():
    ada = Recipient(email="ada@example.org", name="Ada Lovelace", first_name="Ada", key="1")
    assert "Dear Ada," in _plain(CONFIG, ada)
    assert "Dear Ada Lovelace," in _plain(replace(CONFIG, greeting="full"), ada)
    assert "Dear reader," in _plain(replace(CONFIG, greeting="none"), ada)


def test_greeting_setting_is_checked():
    assert Settings.from_mapping({"DISPATCH_GREETING": "full"}).greeting == "full"
    assert Settings.from_mapping({}).greeting == "first"
    with pytest.raises(ConfigError, match="DISPATCH_GREETING"):
        Settings.from_mapping({"DISPATCH_GREETING": "nickname"})


def test_the_ledger_hands_the_imported_first_name_to_the_send(run_cli, db, tmp_path):
    path = tmp_path / "mc.csv"
    path.write_text("Email Address,First Name,Last Name,LEID\nada@example.org,Ada,Lovelace,1\n")
    assert run_cli("subscribers", "import", str(path)).exit_code == 0
    now = to_db_time(utcnow())
    with db.transaction() as conn:  # arranged: one issue with one pending ledger row
        conn.execute(
            "INSERT INTO issues (id, subject, created_at, status) VALUES ('w1', 'S', ?, 'sending')",
            (now,),
        )
        conn.execute(
            "INSERT INTO deliveries (issue_id, subscriber_id, email, token, variant, created_at,"
            " updated_at) SELECT 'w1', id, email, 't1', 'non_donor', ?, ? FROM subscribers",
            (now, now),
        )
    claimed, _ = ledger.claim(db, "w1", 0, 10)
    assert [(c.name, c.first_name) for c in claimed] == [("Ada Lovelace", "Ada")]
