"""Bounce processing never stops at one message (issue 9): unreadable mail is set aside and
listed, odd-but-readable mail is read; the dry run counts what the real run records; moving a
message to the processed folder keeps its bytes. Real Maildir/mbox files on disk, the real
store and CLI."""

from __future__ import annotations

import json
import mailbox
import os
import socket
from pathlib import Path

import pytest

from tests.plugins.bounces import (
    FIXTURES,
    PEOPLE,
    delivery_id,
    fixture,
    send_issue,
    soft_bounce_for,
    status_of,
)


def write_maildir(path: Path, messages: dict[str, bytes]) -> Path:
    """A Maildir whose new/ holds each message under the given file name, bytes as given."""
    mailbox.Maildir(path, create=True)
    for name, raw in messages.items():
        (path / "new" / name).write_bytes(raw)
    return path


def process(run_cli, *args: str) -> dict:
    result = run_cli("bounces", "process", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


NO_FROM_BOUNCE = fixture("rfc3464-hard-5.1.1.eml").replace(
    b"From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\n", b""
)
HEBREW_REPLY = (  # a reader's reply whose Subject is in a charset Python has no codec for
    b"From: Dana <dana@example.test>\r\nTo: news@outlet.test\r\n"
    b"Subject: =?iso-8859-8-i?b?+Onl7A==?=\r\n\r\nThanks for the issue!\r\n"
)
UNKNOWN_8BIT_BOUNCE = (
    fixture("exim-plain.eml")
    .replace(
        b"Content-Type: text/plain; charset=us-ascii",
        b"Content-Type: text/plain; charset=unknown-8bit",
    )
    .replace(
        b"This message was created", b"Ce message a \xe9t\xe9 cr\xe9\xe9. This message was created"
    )
)
BROKEN_BOUNDARY = fixture("rfc3464-soft-4.2.2.eml").replace(
    b"boundary=", b'boundary="nowhere-to-be-found"; x='
)
NO_STATUS_PART = (
    b"From: MAILER-DAEMON@mx.example.test\r\nTo: bounces@outlet.test\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--b--\r\n"
)
HUGE_HEADER = (
    b"From: someone@example.test\r\nSubject: "
    + b"x" * 1_500_000
    + b"\r\nX-Long: "
    + b"y " * 400_000
    + b"\r\n\r\nhello\r\n"
)
JUNK = bytes(range(256)) * 40


def test_one_bad_message_never_stops_the_run(mailing, run_cli, tmp_path) -> None:
    box = write_maildir(
        tmp_path / "bounces",
        {
            "1000.a.host": b"",  # an empty file
            "1001.b.host": JUNK,  # binary junk with no mail header at all
            "1002.c.host": NO_FROM_BOUNCE,  # ben, hard
            "1003.d.host": HEBREW_REPLY,
            "1004.e.host": UNKNOWN_8BIT_BOUNCE,  # eve, hard
            "1005.f.host": BROKEN_BOUNDARY,  # cleo, soft: read as the text it then is
            "1006.g.host": NO_STATUS_PART,
            "1007.h.host": HUGE_HEADER,
            "1008.i.host": b"\n\n\n",  # blank lines only
        },
    )
    report = process(run_cli, "--maildir", str(box))
    assert report["messages"] == 9
    assert (report["hard"], report["soft"], report["suppressed"]) == (2, 1, 2)
    assert status_of(mailing, "ben") == "bounced" and status_of(mailing, "eve") == "bounced"
    # The empty, blank and binary ones are set aside, each with its reason, and the run went on.
    assert report["unreadable"] == 3
    assert report["unreadable_folder"] == str(box / ".unreadable")
    reasons = {p["message"]: p["reason"] for p in report["unreadable_messages"]}
    assert reasons == {
        "new/1000.a.host": "The message is empty",
        "new/1001.b.host": "The message has no mail headers (not an email)",
        "new/1008.i.host": "The message is empty",
    }
    assert sorted(os.listdir(box / ".unreadable" / "new")) == [
        "1000.a.host",
        "1001.b.host",
        "1008.i.host",
    ]
    assert (box / ".unreadable" / "new" / "1001.b.host").read_bytes() == JUNK
    # The reader's reply and the odd non-bounces stay for a person; bounces went to processed.
    assert sorted(os.listdir(box / "new")) == ["1003.d.host", "1006.g.host", "1007.h.host"]
    assert report["ignored"] == 3
    assert status_of(mailing, "cleo") == "active"
    # Nothing is left to stop the next run either.
    again = process(run_cli, "--maildir", str(box))
    assert (again["messages"], again["unreadable"], again["ignored"]) == (3, 0, 3)


def test_the_human_summary_lists_unreadable_messages(mailing, run_cli, tmp_path) -> None:
    box = write_maildir(tmp_path / "bounces", {"1.a.host": b"", "2.b.host": NO_FROM_BOUNCE})
    result = run_cli("bounces", "process", "--maildir", str(box))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert (
        f"1 messages could not be read (set aside, the run went on; moved to "
        f"{box / '.unreadable'}):"
    ) in result.output
    assert "  new/1.a.host: The message is empty" in result.output
    assert "Recorded 1 hard and 0 soft bounces; 1 subscribers suppressed." in result.output


def test_a_parser_bug_on_one_message_is_reported_not_raised(mailing, tmp_path, monkeypatch) -> None:
    """Whatever a parser trips on (here: a fault injected into flufl.bounce's detectors for one
    message, since no real input is known to reach it now) sets that message aside alone."""
    from dispatch.bounces import MaildirSource
    from dispatch.bounces import parse as parse_module
    from dispatch.jobs.bounces import process_source

    real = parse_module.classify_message

    def flaky(msg, raw):
        if b"cleo@" in raw:
            raise RecursionError("maximum recursion depth exceeded")
        return real(msg, raw)

    monkeypatch.setattr("dispatch.jobs.bounces.classify_message", flaky)
    box = write_maildir(
        tmp_path / "bounces",
        {
            "1.a.host": fixture("rfc3464-soft-4.2.2.eml"),  # cleo: trips the fault
            "2.b.host": fixture("rfc3464-hard-5.1.1.eml"),  # ben
        },
    )
    summary = process_source(mailing, MaildirSource(box), soft_limit=3)
    assert (summary.unreadable, summary.hard) == (1, 1)
    assert summary.problems == [
        {
            "message": "new/1.a.host",
            "moved": "yes",
            "reason": "Dispatch could not read it (RecursionError: maximum recursion depth"
            " exceeded)",
        }
    ]
    del parse_module


def test_flufl_detector_crash_falls_back_to_the_dsn_fields(monkeypatch) -> None:
    """When one of flufl.bounce's heuristic detectors raises on odd input (as its Yale detector
    did on every message without a From), the RFC 3464 fields still decide. The crash is
    injected: no input is known to reach it now that a missing From is handled."""
    from dispatch.bounces import classify

    def crash(msg):
        raise IndexError("list index out of range")

    monkeypatch.setattr("dispatch.bounces.parse.all_failures", crash)
    bounce = classify(fixture("rfc3464-soft-4.2.2.eml"))
    assert bounce is not None
    assert [(f.address, f.kind, f.status) for f in bounce.failures] == [
        ("cleo@example.test", "soft", "4.2.2")
    ]


@pytest.mark.parametrize("header", [b"", b"From: \n", b"From: ;;;\n"])
def test_a_bounce_without_a_usable_from_is_read(header) -> None:
    from dispatch.bounces import classify

    raw = fixture("rfc3464-hard-5.1.1.eml").replace(
        b"From: MAILER-DAEMON@mx.example.test (Mail Delivery System)\n", header
    )
    bounce = classify(raw)
    assert bounce is not None and bounce.failures[0].address == "ben@example.test"


def test_mbox_unreadable_messages_are_copied_once_to_a_sidecar(mailing, run_cli, tmp_path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path, create=True)
    box.add(b"From: nobody\n")  # headers only: readable, not a bounce
    box.add(fixture("rfc3464-hard-5.1.1.eml"))
    box.flush()
    box.close()
    # A message that is only a From_ line and junk (as a broken delivery can leave).
    with path.open("ab") as out:
        out.write(b"From MAILER-DAEMON Sat Nov 28 09:00:00 2026\n\x00\x01\x02\xff\n\n")
    before = path.read_bytes()
    report = process(run_cli, "--mbox", str(path))
    assert (report["hard"], report["unreadable"]) == (1, 1)
    assert report["unreadable_folder"] == str(path) + ".unreadable"
    assert path.read_bytes() == before  # the mbox itself is never rewritten
    sidecar = Path(str(path) + ".unreadable")
    assert sidecar.read_bytes() == (
        b"From MAILER-DAEMON Sat Nov 28 09:00:00 2026\n\x00\x01\x02\xff\n\n"
    )
    again = process(run_cli, "--mbox", str(path))
    assert again["unreadable"] == 1  # still in the mbox, so listed again ...
    assert sidecar.read_bytes().count(b"From MAILER-DAEMON") == 1  # ... but copied once


# -- item 3: the dry run counts what the real run records ---------------------------------------


def test_dry_run_reports_the_numbers_the_real_run_records(mailing, run_cli, tmp_path) -> None:
    for issue in ("2026-W49", "2026-W50"):
        send_issue(mailing, issue)
    hard = fixture("rfc3464-hard-5.1.1.eml")
    box = write_maildir(
        tmp_path / "bounces",
        {
            "1.a.host": hard,
            "2.b.host": hard,  # the same DSN delivered twice
            "3.c.host": fixture("postfix-hard.eml"),
            "4.d.host": fixture("postfix-hard.eml").replace(  # another DSN for dev: suppressed once
                b"<20261127070009.7F3A2C0412@mail.outlet.test>", b"<other-dsn@mail.outlet.test>"
            ),
            # cleo: soft bounces on three issues in a row reach the limit within the run
            **{
                f"{5 + n}.s.host": soft_bounce_for(issue, delivery_id(mailing, issue, "cleo"), dsn)
                for n, (issue, dsn) in enumerate(
                    [("2026-W48", "s1"), ("2026-W49", "s2"), ("2026-W50", "s3")]
                )
            },
            "9.z.host": b"",
        },
    )
    keys = (
        "messages",
        "hard",
        "soft",
        "suppressed",
        "already_processed",
        "unmatched",
        "ignored",
        "unreadable",
        "by_issue",
        "bounces",
    )
    dry = process(run_cli, "--maildir", str(box), "--dry-run")
    assert mailing.execute("SELECT COUNT(*) FROM bounces").fetchone()[0] == 0
    assert len(os.listdir(box / "new")) == 8
    real = process(run_cli, "--maildir", str(box))
    assert {k: dry[k] for k in keys} == {k: real[k] for k in keys}
    assert (real["hard"], real["soft"], real["suppressed"], real["already_processed"]) == (
        3,
        3,
        3,
        1,
    )
    assert [status_of(mailing, p) for p in PEOPLE] == [
        "active",
        "bounced",
        "bounced",
        "bounced",
        "active",
    ]


# -- item 4: moving keeps the bytes ------------------------------------------------------------


def test_processed_maildir_messages_keep_their_exact_bytes_and_name(
    mailing, run_cli, tmp_path
) -> None:
    # CRLF line ends, a long folded header, 8-bit text and a "From " line in the body: all
    # things a parse-and-rewrite changes.
    raw = (
        fixture("rfc3464-hard-5.1.1.eml")
        .replace(b"\n", b"\r\n")
        .replace(
            b"Subject: Undelivered Mail Returned to Sender",
            b"Subject: Undelivered Mail Returned to Sender " + b"word " * 30 + b"\r\n\tcontinued",
        )
    )
    raw = raw.replace(b"Dear Ben,", b"From here on: caf\xc3\xa9\r\nDear Ben,")
    box = write_maildir(tmp_path / "bounces", {})
    (box / "cur" / "1764321123.M1P2.host:2,S").write_bytes(raw)
    (box / "new" / "1764321124.M3P4.host").write_bytes(fixture("exim-plain.eml"))
    report = process(run_cli, "--maildir", str(box))
    assert (report["hard"], report["set_aside"]) == (2, 2)
    assert (box / ".processed" / "cur" / "1764321123.M1P2.host:2,S").read_bytes() == raw
    assert (box / ".processed" / "new" / "1764321124.M3P4.host").read_bytes() == fixture(
        "exim-plain.eml"
    )
    assert os.listdir(box / "cur") == [] and os.listdir(box / "new") == []
    assert len(mailbox.Maildir(box, create=False).get_folder("processed")) == 2


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.eml")))
def test_every_fixture_reads_without_error(name) -> None:
    from dispatch.jobs.bounces import read_one

    read_one(fixture(name))


def test_imap_unreadable_message_is_copied_aside_and_flagged(mailing, run_cli, dovecot) -> None:
    """Against the real Dovecot of test_bounces: the empty message goes to Dispatch-unreadable
    and is not read again; the bounce beside it is processed."""
    import imaplib
    import ssl

    port, maildir, hand_over = dovecot
    box = mailbox.Maildir(maildir, create=False)
    box.add(fixture("rfc3464-hard-5.1.1.eml"))
    box.add(b"X-Spam: yes\n")  # headers only, no From, no body: read, not a bounce
    box.add(JUNK)
    hand_over()
    env = {
        "DISPATCH_BOUNCE_MAILBOX": f"imaps://bounces%40outlet.test:s3cret-imap@127.0.0.1:{port}/INBOX"
    }
    report = process_env(run_cli, env)
    assert (report["hard"], report["unreadable"], report["ignored"]) == (1, 1, 1)
    assert report["unreadable_folder"] == "the IMAP folder Dispatch-unreadable"
    again = process_env(run_cli, env)
    assert (again["messages"], again["unreadable"]) == (1, 0)
    imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context())
    imap.login("bounces@outlet.test", "s3cret-imap")
    status, data = imap.select('"Dispatch-unreadable"', readonly=True)
    assert status == "OK" and data[0] == b"1"
    _, parts = imap.fetch("1", "(BODY.PEEK[])")
    # IMAP gives CRLF line ends, and Dovecot stores a NUL as 0x80.
    assert parts[0][1] == JUNK.replace(b"\x00", b"\x80").replace(b"\n", b"\r\n")
    imap.logout()


def process_env(run_cli, env: dict[str, str]) -> dict:
    result = run_cli("bounces", "process", "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def dma_bounce(*failures: tuple[str, str]) -> bytes:
    """A bounce as the DragonFly Mail Agent writes it (dma's mail.c), quoting Dispatch's copy."""
    body = "".join(
        f"There was an error delivering your mail to <{address}>.\n\n{error}\n\n"
        for address, error in failures
    )
    return (
        "Received: from MAILER-DAEMON\n\tid 3f2a1\n\tby relay.outlet.test (DragonFly Mail Agent"
        " v0.13);\n\tFri, 27 Nov 2026 07:00:20 +0000\n"
        "X-Original-To: <bounces@outlet.test>\nFrom: MAILER-DAEMON <>\nTo: bounces@outlet.test\n"
        "Subject: Mail delivery failed\nMessage-Id: <dma-3f2a1@relay.outlet.test>\n"
        "Date: Fri, 27 Nov 2026 07:00:20 +0000\n\n"
        "This is the DragonFly Mail Agent v0.13 at relay.outlet.test.\n\n"
        f"{body}"
        "Original message follows.\n\n"
        "From: news@outlet.test\nMessage-ID: <2026-W48.9.0a1b2c3d4e5f@outlet.test>\n"
        "Subject: This week\n\nDear reader,\n"
    ).encode()


def test_dragonfly_mail_agent_bounces_are_read(mailing, run_cli, tmp_path) -> None:
    """flufl.bounce has no detector for dma's format; bounces.detectors.DragonFly reads it."""
    from dispatch.bounces import classify

    raw = dma_bounce(
        (
            "ben@example.test",
            "mx.example.test [192.0.2.25] did not like our RCPT TO:\n"
            "550 5.1.1 <ben@example.test>: Recipient address rejected: User unknown",
        ),
        (
            "cleo@example.test",
            "mx.example.test [192.0.2.25] did not like our RCPT TO:\n"
            "452 4.2.2 <cleo@example.test>: Mailbox full",
        ),
        ("dev@example.test", "Could not deliver for the last 432000 seconds. Giving up."),
    )
    bounce = classify(raw)
    assert bounce is not None
    assert [(f.address, f.kind, f.status) for f in bounce.failures] == [
        ("cleo@example.test", "soft", "4.2.2"),
        ("dev@example.test", "soft", ""),
        ("ben@example.test", "hard", "5.1.1"),
    ]
    box = write_maildir(tmp_path / "bounces", {"1.a.host": raw})
    report = process(run_cli, "--maildir", str(box))
    assert (report["hard"], report["soft"], report["suppressed"]) == (1, 2, 1)
    assert status_of(mailing, "ben") == "bounced"


def test_a_maildir_that_cannot_be_written_stops_with_a_clear_error(
    mailing, run_cli, tmp_path
) -> None:
    """Moving needs write access: without it the run stops at once with what to fix (every
    later move would fail the same way), keeping what it recorded."""
    box = write_maildir(tmp_path / "bounces", {"1.a.host": fixture("rfc3464-hard-5.1.1.eml")})
    (box / ".processed").write_text("not a folder")  # the move cannot make its target
    result = run_cli("bounces", "process", "--maildir", str(box))
    assert result.exit_code == 1
    assert "Error: Cannot move new/1.a.host into" in result.output
    assert "Traceback" not in result.output
    assert status_of(mailing, "ben") == "bounced"


def test_a_large_dsn_is_still_read_from_its_delivery_status_fields() -> None:
    """Past HEURISTICS_LIMIT flufl.bounce's line-by-line heuristics are skipped (they took
    38 s on a 30 MB reply); a structured DSN that large is still read."""
    from dispatch.bounces import classify
    from dispatch.bounces.parse import HEURISTICS_LIMIT

    raw = fixture("rfc3464-hard-5.1.1.eml").replace(
        b"Dear Ben,", b"Dear Ben,\n" + b"A long line of the quoted digest.\n" * 40_000
    )
    assert len(raw) > HEURISTICS_LIMIT
    bounce = classify(raw)
    assert bounce is not None
    assert [(f.address, f.kind, f.status) for f in bounce.failures] == [
        ("ben@example.test", "hard", "5.1.1")
    ]
    reply = b"From: ana@example.test\nSubject: photos\n\n" + b"x" * (HEURISTICS_LIMIT + 1)
    assert classify(reply) is None


def test_a_dropped_imap_connection_ends_the_run_with_a_clear_error(mailing, dovecot) -> None:
    """The real Dovecot; the connection is cut after the first message (the socket shut down
    under imaplib, as a server restart or a network drop would): what was read is recorded
    and the error names the server, not the password."""
    from dispatch.bounces.mailboxes import ImapSource
    from dispatch.errors import InputError
    from dispatch.jobs.bounces import process_source

    port, maildir, hand_over = dovecot
    box = mailbox.Maildir(maildir, create=False)
    box.add(fixture("rfc3464-hard-5.1.1.eml"))
    box.add(fixture("exim-plain.eml"))
    hand_over()
    source = ImapSource(f"imaps://bounces%40outlet.test:s3cret-imap@127.0.0.1:{port}/INBOX")

    def cut(n: int) -> None:
        if n == 1:
            source._imap.sock.shutdown(socket.SHUT_RDWR)  # only a test reaches inside

    with pytest.raises(InputError) as info:
        process_source(mailing, source, soft_limit=3, progress=cut)
    text = str(info.value)
    assert f"Lost the IMAP server 127.0.0.1:{port}" in text and "rerun to go on" in text
    assert "s3cret-imap" not in text
    assert status_of(mailing, "ben") == "bounced"
