"""Bounce processing: real DSN samples (tests/fixtures/dsn), a real Maildir and mbox on disk, a
real IMAP server (Debian's Dovecot, started on loopback with its own config and a self-signed
certificate the test trusts through SSL_CERT_FILE), the real store and CLI."""

from __future__ import annotations

import json
import mailbox
import socket
from pathlib import Path

import pytest

from dispatch.bounces import classify, parse_dispatch_message_id, parse_imap_url
from dispatch.bounces.mailboxes import ImapSource
from dispatch.errors import ConfigError, InputError
from dispatch.store import bounces as bounce_store
from dispatch.store import subscribers as subscriber_store
from tests.plugins.bounces import (
    FIXTURES,
    PEOPLE,
    Reader,
    delivery_id,
    fixture,
    send_issue,
    soft_bounce_for,
    status_of,
)


def make_maildir(path: Path, names: list[str]) -> mailbox.Maildir:
    box = mailbox.Maildir(path, create=True)
    for name in names:
        box.add(fixture(name))
    return box


ALL = sorted(p.name for p in FIXTURES.glob("*.eml"))


# -- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,address,kind,status,original",
    [
        (
            "rfc3464-hard-5.1.1.eml",
            "ben@example.test",
            "hard",
            "5.1.1",
            "<2026-W48.2.3f9a1c2b7d4e@outlet.test>",
        ),
        (
            "rfc3464-soft-4.2.2.eml",
            "cleo@example.test",
            "soft",
            "4.2.2",
            "<2026-W48.3.8e2d4a6c1b90@outlet.test>",
        ),
        (
            "postfix-hard.eml",
            "dev@example.test",
            "hard",
            "5.2.1",
            "<2026-W48.test-5d41a2.c0ffee123456@outlet.test>",
        ),
        (
            "exim-plain.eml",
            "eve@example.test",
            "hard",
            "5.1.1",
            "<2026-W48.5.71be05c3a9d2@outlet.test>",
        ),
    ],
)
def test_classify_reads_kind_address_status_and_original_id(
    name, address, kind, status, original
) -> None:
    bounce = classify(fixture(name))
    assert bounce is not None
    [failure] = bounce.failures
    assert (failure.address, failure.kind, failure.status) == (address, kind, status)
    assert status in failure.diagnostic
    assert bounce.original_message_id == original
    assert bounce.message_key.startswith("<") and "@" in bounce.message_key


def test_an_auto_reply_is_not_a_bounce() -> None:
    assert classify(fixture("autoreply-not-a-bounce.eml")) is None


def test_delayed_dsn_is_soft() -> None:
    raw = fixture("rfc3464-hard-5.1.1.eml").replace(b"Action: failed", b"Action: delayed")
    raw = raw.replace(b"Status: 5.1.1", b"Status: 4.4.1")
    bounce = classify(raw)
    assert bounce is not None and bounce.failures[0].kind == "soft"


def test_dispatch_message_ids_are_parsed_and_others_are_not() -> None:
    mid = parse_dispatch_message_id("<2026-W48.17.0a1b2c3d4e5f@outlet.test>")
    assert mid is not None and (mid.issue, mid.delivery_id) == ("2026-W48", 17)
    test_copy = parse_dispatch_message_id("<2026-W48.test-5d41a2.c0ffee123456@outlet.test>")
    assert test_copy is not None and test_copy.delivery_id is None
    assert parse_dispatch_message_id("<CAF=xyz@mail.gmail.com>") is None
    assert parse_dispatch_message_id(None) is None


# -- processing a Maildir through the CLI ------------------------------------------------------


def test_maildir_hard_bounces_suppress_soft_ones_count(mailing, run_cli, tmp_path) -> None:
    box = make_maildir(tmp_path / "bounces", ALL)
    result = run_cli("bounces", "process", "--maildir", str(tmp_path / "bounces"), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {
        k: report[k] for k in ("messages", "hard", "soft", "ignored", "unmatched", "suppressed")
    } == {"messages": 5, "hard": 3, "soft": 1, "ignored": 1, "unmatched": 0, "suppressed": 3}
    assert report["by_issue"] == {"2026-W48": {"hard": 3, "soft": 1}}
    assert [status_of(mailing, p) for p in PEOPLE] == [
        "active",
        "bounced",
        "active",
        "bounced",
        "bounced",
    ]
    # Matched rows: by Message-ID (ben = delivery 2, cleo = 3, eve = 5); dev's bounce quotes a
    # test copy's id, so it falls back to the address and dev's latest delivery (4).
    rows = mailing.execute(
        "SELECT s.email, b.delivery_id, b.issue_id, b.kind FROM bounces b"
        " JOIN subscribers s ON s.id = b.subscriber_id ORDER BY s.email"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        ("ben@example.test", 2, "2026-W48", "hard"),
        ("cleo@example.test", 3, "2026-W48", "soft"),
        ("dev@example.test", 4, "2026-W48", "hard"),
        ("eve@example.test", 5, "2026-W48", "hard"),
    ]
    # Processed bounces moved to .processed; the auto-reply is left where it was.
    left = [m["Subject"] for m in box]
    assert len(left) == 1 and left[0].startswith("Automatic reply")
    assert len(box.get_folder("processed")) == 4


def test_reprocessing_the_same_mailbox_changes_nothing(mailing, run_cli, tmp_path) -> None:
    make_maildir(tmp_path / "bounces", ALL)
    args = ("bounces", "process", "--maildir", str(tmp_path / "bounces"), "--keep", "--json")
    first = json.loads(run_cli(*args).output)
    again = run_cli(*args)
    assert again.exit_code == 0, again.output
    second = json.loads(again.output)
    assert first["hard"] == 3 and second["hard"] == 0 and second["soft"] == 0
    assert second["already_processed"] == 4 and second["suppressed"] == 0
    assert mailing.execute("SELECT COUNT(*) FROM bounces").fetchone()[0] == 4
    assert len(mailbox.Maildir(tmp_path / "bounces", create=False)) == 5  # --keep: all still there


def test_a_bounced_subscriber_stays_bounced_whatever_an_import_says(
    mailing, run_cli, tmp_path
) -> None:
    make_maildir(tmp_path / "bounces", ["rfc3464-hard-5.1.1.eml"])
    run_cli("bounces", "process", "--maildir", str(tmp_path / "bounces"))
    counts = subscriber_store.import_subscribers(
        mailing, [Reader("ben@example.test", "Ben Okafor")], "import:again.csv"
    )
    assert counts.suppressed == 1
    assert status_of(mailing, "ben") == "bounced"


def test_human_output_names_the_suppressed(mailing, run_cli, tmp_path) -> None:
    make_maildir(tmp_path / "bounces", ALL)
    result = run_cli("bounces", "process", "--maildir", str(tmp_path / "bounces"))
    assert result.exit_code == 0, result.output
    assert "Recorded 3 hard and 1 soft bounces; 3 subscribers suppressed." in result.output
    assert "suppressed ben@example.test (hard, 5.1.1, issue 2026-W48)" in result.output
    assert "Left alone 1 messages that are not bounces." in result.output


def test_dry_run_records_and_moves_nothing(mailing, run_cli, tmp_path) -> None:
    box = make_maildir(tmp_path / "bounces", ALL)
    result = run_cli(
        "bounces", "process", "--maildir", str(tmp_path / "bounces"), "--dry-run", "--json"
    )
    report = json.loads(result.output)
    assert (report["hard"], report["soft"], report["ignored"], report["suppressed"]) == (3, 1, 1, 3)
    assert mailing.execute("SELECT COUNT(*) FROM bounces").fetchone()[0] == 0
    assert [status_of(mailing, p) for p in PEOPLE] == ["active"] * 5
    assert len(box) == 5
    human = run_cli("bounces", "process", "--maildir", str(tmp_path / "bounces"), "--dry-run")
    assert "Dry run: would record 3 hard and 1 soft bounces and suppress 3" in human.output
    assert "would suppress ben@example.test" in human.output


def test_mbox_is_read_and_left_untouched(mailing, run_cli, tmp_path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path, create=True)
    for name in ALL:
        box.add(fixture(name))
    box.flush()
    box.close()
    before = path.read_bytes()
    result = run_cli("bounces", "process", "--mbox", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["hard"], report["soft"], report["ignored"], report["set_aside"]) == (3, 1, 1, 0)
    assert path.read_bytes() == before


def test_bounce_for_an_unknown_address_is_unmatched(mailing, run_cli, tmp_path) -> None:
    raw = fixture("exim-plain.eml").replace(b"eve@example.test", b"zed@elsewhere.test")
    raw = raw.replace(b"<2026-W48.5.71be05c3a9d2@outlet.test>", b"<abc@elsewhere.test>")
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(raw)
    report = json.loads(
        run_cli("bounces", "process", "--maildir", str(tmp_path / "bounces"), "--json").output
    )
    assert (report["unmatched"], report["hard"]) == (1, 0)
    assert report["bounces"] == [
        {
            "address": "zed@elsewhere.test",
            "kind": "hard",
            "issue": "",
            "status": "5.1.1",
            "result": "unmatched",
        }
    ]


def test_message_id_of_another_issue_falls_back_to_the_address(mailing, tmp_path) -> None:
    from dispatch.bounces import MaildirSource
    from dispatch.jobs.bounces import process_source

    raw = fixture("rfc3464-hard-5.1.1.eml").replace(b"<2026-W48.2.", b"<2026-W01.2.")
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(raw)
    summary = process_source(mailing, MaildirSource(tmp_path / "bounces"), soft_limit=3)
    assert summary.hard == 1
    row = mailing.execute("SELECT delivery_id, subscriber_id FROM bounces").fetchone()
    assert tuple(row) == (2, 2)  # ben's own latest delivery, found by address


# -- soft bounces in a row -------------------------------------------------------------------


def test_soft_bounces_on_consecutive_issues_reach_the_limit(mailing, run_cli, tmp_path) -> None:
    for issue in ("2026-W49", "2026-W50"):
        send_issue(mailing, issue)
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    args = ("bounces", "process", "--maildir", str(tmp_path / "bounces"), "--json")
    # Two DSNs for the same issue count once toward the limit.
    box.add(soft_bounce_for("2026-W48", delivery_id(mailing, "2026-W48", "cleo"), "a1"))
    box.add(soft_bounce_for("2026-W48", delivery_id(mailing, "2026-W48", "cleo"), "a2"))
    box.add(soft_bounce_for("2026-W49", delivery_id(mailing, "2026-W49", "cleo"), "b1"))
    first = json.loads(run_cli(*args).output)
    assert (first["soft"], first["suppressed"]) == (3, 0)
    assert status_of(mailing, "cleo") == "active"
    box.add(soft_bounce_for("2026-W50", delivery_id(mailing, "2026-W50", "cleo"), "c1"))
    second = json.loads(run_cli(*args).output)
    assert (second["soft"], second["suppressed"]) == (1, 1)
    assert status_of(mailing, "cleo") == "bounced"
    assert bounce_store.counts_by_issue(mailing)["2026-W48"] == {"hard": 0, "soft": 2}


def test_soft_bounces_with_a_clean_issue_between_do_not_suppress(
    mailing, tmp_path, make_settings
) -> None:
    from dispatch.jobs.bounces import process_bounces

    for issue in ("2026-W49", "2026-W50"):
        send_issue(mailing, issue)
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    for issue, dsn in (("2026-W48", "a"), ("2026-W50", "c")):  # W49 reached cleo fine
        box.add(soft_bounce_for(issue, delivery_id(mailing, issue, "cleo"), dsn))
    settings = make_settings(DISPATCH_SOFT_BOUNCE_LIMIT="2")
    _, summary = process_bounces(mailing, settings, maildir=tmp_path / "bounces")
    assert (summary.soft, summary.suppressed) == (2, 0)
    assert status_of(mailing, "cleo") == "active"


# -- mailbox selection and IMAP ------------------------------------------------------------------


def test_the_configured_mailbox_is_read_when_no_option_is_given(mailing, run_cli, tmp_path) -> None:
    make_maildir(tmp_path / "bounces", ["exim-plain.eml"])
    result = run_cli(
        "bounces", "process", "--json", env={"DISPATCH_BOUNCE_MAILBOX": str(tmp_path / "bounces")}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["hard"] == 1


def test_no_mailbox_at_all_is_a_clear_error(db, run_cli) -> None:
    result = run_cli("bounces", "process")
    assert result.exit_code == 1
    assert "Name one mailbox" in result.output and "DISPATCH_BOUNCE_MAILBOX" in result.output


def test_a_folder_that_is_not_a_maildir_is_refused(db, run_cli, tmp_path) -> None:
    result = run_cli("bounces", "process", "--maildir", str(tmp_path))
    assert result.exit_code == 1 and "is not a Maildir folder" in result.output


def test_imap_url_is_parsed_and_never_shows_the_password() -> None:
    target = parse_imap_url("imaps://bounces%40outlet.test:s3cr%3At@imap.outlet.test/Bounces")
    assert (target.host, target.port, target.user, target.password, target.folder) == (
        "imap.outlet.test",
        993,
        "bounces@outlet.test",
        "s3cr:t",
        "Bounces",
    )
    assert "s3cr" not in repr(target)
    plain = parse_imap_url("imap://u:p@h")
    assert (plain.port, plain.folder, plain.tls) == (143, "INBOX", False)
    with pytest.raises(ConfigError) as info:
        parse_imap_url("imaps://user-without-password@imap.outlet.test/")
    assert "user and password" in str(info.value)


def test_unreachable_imap_server_error_names_host_not_password() -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InputError) as info:
        ImapSource(f"imaps://ann:hunter2secret@127.0.0.1:{port}/INBOX", timeout=5)
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text and "ann" in text
    assert "hunter2secret" not in text


# -- IMAP against a real Dovecot on loopback -------------------------------------------------


def test_imap_mailbox_is_processed_and_messages_marked_seen(mailing, run_cli, dovecot) -> None:
    port, maildir, hand_over = dovecot
    box = mailbox.Maildir(maildir, create=False)
    for name in ALL:
        box.add(fixture(name))
    hand_over()
    url = f"imaps://bounces%40outlet.test:s3cret-imap@127.0.0.1:{port}/INBOX"
    env = {"DISPATCH_BOUNCE_MAILBOX": url}
    result = run_cli("bounces", "process", "--json", env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (
        report["messages"],
        report["hard"],
        report["soft"],
        report["ignored"],
        report["set_aside"],
    ) == (5, 3, 1, 1, 4)
    assert report["mailbox"] == "imaps://127.0.0.1/INBOX"
    assert "s3cret" not in result.output
    assert [status_of(mailing, p) for p in PEOPLE] == [
        "active",
        "bounced",
        "active",
        "bounced",
        "bounced",
    ]
    # The four bounces are now seen; only the auto-reply is read again next time.
    again = json.loads(run_cli("bounces", "process", "--json", env=env).output)
    assert (again["messages"], again["ignored"], again["hard"]) == (1, 1, 0)


def test_imap_wrong_password_is_a_clear_error_without_the_password(db, run_cli, dovecot) -> None:
    port, _, _ = dovecot
    url = f"imaps://bounces%40outlet.test:not-the-password@127.0.0.1:{port}/INBOX"
    result = run_cli("bounces", "process", "--imap", url)
    assert result.exit_code == 1
    assert f"Cannot read bounces from the IMAP server 127.0.0.1:{port}" in result.output
    assert "not-the-password" not in result.output


def test_a_list_unsubscribe_mailto_request_unsubscribes_the_reader(mailing, run_cli, tmp_path):
    """Without a web service, the mailto in List-Unsubscribe is the one-click way out."""
    sub = subscriber_store.get_subscriber(mailing, "ben@example.test")
    box = mailbox.Maildir(tmp_path / "inbox", create=True)
    box.add(
        f"From: ben@example.test\r\nTo: news@outlet.test\r\n"
        f"Subject: unsubscribe {sub.unsub_token}\r\n\r\nThis message was sent by my mail app.\r\n"
    )
    box.add(  # a forged token changes nothing
        "From: x@example.test\r\nTo: news@outlet.test\r\n"
        "Subject: unsubscribe AAAAAAAAAAAAAAAAAAAAAAAA\r\n\r\n\r\n"
    )
    result = run_cli("bounces", "process", "--maildir", str(tmp_path / "inbox"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["unsubscribed"] == 1
    assert [status_of(mailing, p) for p in PEOPLE].count("unsubscribed") == 1
    assert status_of(mailing, "ben") == "unsubscribed"
