"""Spam complaints (issue 9): ARF feedback reports (RFC 5965) as Yahoo, AOL and Outlook send
them, and Microsoft JMRP's older shape, about copies built by the real MessageFactory; read by
the real `bounces process` from a real Maildir into the real store."""

from __future__ import annotations

import json
import mailbox
from email.utils import make_msgid
from pathlib import Path

from dispatch.bounces import parse_dispatch_message_id
from dispatch.models import RenderedVariant
from dispatch.render.message import MessageConfig, MessageFactory, Recipient
from dispatch.store import Database, ledger
from dispatch.store import subscribers as subscriber_store
from tests.plugins.bounces import PEOPLE, Reader, fixture, send_issue, status_of

ISSUE = "2026-W48"


def dispatch_copy(
    db: Database, person: str, issue: str = ISSUE, *, public_url: str = "", key: str | None = None
) -> bytes:
    """The copy Dispatch sends ``person`` for ``issue``: ledger row id as key, real headers."""
    sub = subscriber_store.get_subscriber(db, f"{person}@example.test")
    assert sub is not None
    row = db.execute(
        "SELECT id FROM deliveries WHERE issue_id = ? AND subscriber_id = ?", (issue, sub.id)
    ).fetchone()
    config = MessageConfig(
        from_name="The Riverside Ledger",
        from_address="news@outlet.test",
        list_id='"The Riverside Ledger" <digest.outlet.test>',
        public_url=public_url,
        secret=ledger.secret_key(db),
    )
    variant = RenderedVariant("non_donor", "This week", "<p>Hello</p>", "Hello\n")
    factory = MessageFactory(issue, {"non_donor": variant}, config)
    recipient = Recipient(
        email=sub.email, name=sub.name, unsub_token=sub.unsub_token, key=key or str(row["id"])
    )
    return factory.build("non_donor", recipient)


def redact(original: bytes, person: str, *, unsubscribe: bool = True) -> bytes:
    """The copy as a provider quotes it: the reader's address redacted, maybe List-Unsubscribe
    dropped."""
    text = original.replace(f"{person}@example.test".encode(), b"redacted@example.net")
    if not unsubscribe:
        text = b"\r\n".join(
            line for line in text.split(b"\r\n") if not line.lower().startswith(b"list-unsubscribe")
        )
    return text


def arf(
    original: bytes,
    *,
    user_agent: str = "Yahoo!-Mail-Feedback/2.0",
    feedback_type: str = "abuse",
    headers_only: bool = False,
    rcpt: str = "",
) -> bytes:
    """An RFC 5965 report about ``original``."""
    if headers_only:
        included = b"Content-Type: text/rfc822-headers\r\n\r\n" + original.split(b"\r\n\r\n")[0]
    else:
        included = b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n" + (
            original
        )
    rcpt_line = f"Original-Rcpt-To: {rcpt}\r\n" if rcpt else ""
    return (
        (
            f"From: feedback@arf.example.net\r\nTo: abuse@outlet.test\r\n"
            f"Subject: FW: This week\r\nMessage-ID: {make_msgid(domain='arf.example.net')}\r\n"
            f"Date: Mon, 30 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=feedback-report; boundary="arf"\r\n\r\n'
            f"--arf\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            f"This is an email abuse report for a message from 198.51.100.7.\r\n\r\n"
            f"--arf\r\nContent-Type: message/feedback-report\r\n\r\n"
            f"Feedback-Type: {feedback_type}\r\nUser-Agent: {user_agent}\r\nVersion: 1\r\n"
            f"Original-Mail-From: <bounces@outlet.test>\r\n{rcpt_line}"
            f"Arrival-Date: Fri, 27 Nov 2026 07:00:05 +0000\r\nReported-Domain: outlet.test\r\n\r\n"
            f"--arf\r\n"
        ).encode()
        + included
        + b"\r\n--arf--\r\n"
    )


def jmrp(original: bytes, recipient: str) -> bytes:
    """Microsoft JMRP's older shape: a plain mail with the copy attached, the reader named in
    X-HmXmrOriginalRecipient."""
    head, _, body = original.partition(b"\r\n\r\n")
    copy = head + f"\r\nX-HmXmrOriginalRecipient: <{recipient}>".encode() + b"\r\n\r\n" + body
    return (
        b"From: staff@hotmail.com\r\nTo: abuse@outlet.test\r\nSubject: complaint about message"
        b" from 198.51.100.7\r\nMessage-ID: <jmrp-1@hotmail.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="jmrp"\r\n\r\n'
        b"--jmrp\r\nContent-Type: text/plain\r\n\r\nThis is a JMRP report.\r\n"
        b"--jmrp\r\nContent-Type: message/rfc822\r\n\r\n" + copy + b"\r\n--jmrp--\r\n"
    )


def maildir_with(path: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(path, create=True)
    for raw in messages:
        box.add(raw)
    return path


def process(run_cli, box: Path, *args: str) -> dict:
    result = run_cli("bounces", "process", "--maildir", str(box), "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_yahoo_report_marks_the_reader_complained(mailing, run_cli, tmp_path) -> None:
    copy = redact(dispatch_copy(mailing, "ben", public_url="https://outlet.test"), "ben")
    box = maildir_with(tmp_path / "fbl", arf(copy))
    report = process(run_cli, box)
    assert (report["complaints"], report["complained"], report["hard"]) == (1, 1, 0)
    assert report["by_issue"] == {ISSUE: {"hard": 0, "soft": 0, "complaints": 1}}
    assert [e for e in report["bounces"] if e["kind"] == "complaint"] == [
        {
            "address": "ben@example.test",
            "kind": "complaint",
            "issue": ISSUE,
            "status": "abuse",
            "result": "complained",
        }
    ]
    assert [status_of(mailing, p) for p in PEOPLE] == [
        "active",
        "complained",
        "active",
        "active",
        "active",
    ]
    row = mailing.execute(
        "SELECT delivery_id, issue_id, feedback_type, reporter FROM complaints"
    ).fetchone()
    assert tuple(row) == (2, ISSUE, "abuse", "Yahoo!-Mail-Feedback/2.0")
    assert report["set_aside"] == 1 and len(mailbox.Maildir(box).get_folder("processed")) == 1
    # Never mailed again: the next issue's ledger leaves ben out, and no import brings him back.
    send_issue(mailing, "2026-W49")
    mailed = {
        r[0] for r in mailing.execute("SELECT email FROM deliveries WHERE issue_id = '2026-W49'")
    }
    assert "ben@example.test" not in mailed and len(mailed) == 4
    subscriber_store.import_subscribers(mailing, [Reader("ben@example.test", "Ben")], "again")
    assert status_of(mailing, "ben") == "complained"


def test_an_aol_report_with_headers_only_is_matched_by_the_signed_message_id(
    mailing, run_cli, tmp_path
) -> None:
    copy = redact(dispatch_copy(mailing, "cleo"), "cleo", unsubscribe=False)
    assert b"List-Unsubscribe" not in copy and b"cleo@" not in copy
    box = maildir_with(tmp_path / "fbl", arf(copy, user_agent="AOL SComp", headers_only=True))
    report = process(run_cli, box)
    assert (report["complaints"], report["complained"]) == (1, 1)
    assert status_of(mailing, "cleo") == "complained"


def test_a_message_id_with_a_wrong_signature_is_not_trusted(mailing, run_cli, tmp_path) -> None:
    copy = redact(dispatch_copy(mailing, "cleo"), "cleo", unsubscribe=False)
    mid = parse_dispatch_message_id(
        next(
            line.split(b": ", 1)[1].decode()
            for line in copy.split(b"\r\n")
            if line.startswith(b"Message-ID: ")
        )
    )
    assert mid is not None
    forged = copy.replace(mid.mac.encode(), b"0" * len(mid.mac))
    box = maildir_with(tmp_path / "fbl", arf(forged, headers_only=True))
    report = process(run_cli, box)
    assert (report["complaints"], report["complained"], report["unmatched"]) == (0, 0, 1)
    assert status_of(mailing, "cleo") == "active"


def test_an_outlook_report_names_the_recipient(mailing, run_cli, tmp_path) -> None:
    """Outlook's ARF keeps Original-Rcpt-To; a test copy's id matches no ledger row."""
    copy = dispatch_copy(mailing, "dev", key="test-5d41a2")
    box = maildir_with(
        tmp_path / "fbl",
        arf(
            redact(copy, "dev", unsubscribe=False),
            user_agent="Microsoft JMRP",
            rcpt="dev@example.test",
        ),
    )
    report = process(run_cli, box)
    assert (report["complaints"], report["complained"]) == (1, 1)
    assert status_of(mailing, "dev") == "complained"


def test_a_forged_report_naming_a_never_mailed_reader_changes_nothing(
    mailing, run_cli, tmp_path
) -> None:
    """Anyone can mail the bounce mailbox: an address alone counts only for a mailed reader."""
    subscriber_store.import_subscribers(mailing, [Reader("zed@example.test", "Zed")], "test")
    forged = (
        b"From: news@outlet.test\r\nTo: zed@example.test\r\nSubject: This week\r\n"
        b"Message-ID: <forged@example.net>\r\n\r\nHello\r\n"
    )
    box = maildir_with(tmp_path / "fbl", arf(forged, rcpt="zed@example.test"))
    report = process(run_cli, box)
    assert (report["complaints"], report["complained"], report["unmatched"]) == (0, 0, 1)
    assert status_of(mailing, "zed") == "active"


def test_a_complaint_voids_the_readers_open_confirmation_links(mailing, run_cli, tmp_path) -> None:
    from datetime import UTC, datetime, timedelta

    from dispatch.jobs.signup import REACTIVATED_BY_CONFIRMATION
    from dispatch.store import signups

    later = datetime.now(UTC) + timedelta(days=2)
    signups.add_confirmation(mailing, "hash-before", "ben@example.test", "Ben", later)
    box = maildir_with(tmp_path / "fbl", arf(redact(dispatch_copy(mailing, "ben"), "ben")))
    assert process(run_cli, box)["complained"] == 1
    used = signups.use_confirmation(
        mailing, "hash-before", datetime.now(UTC), REACTIVATED_BY_CONFIRMATION
    )
    assert used is None  # the link was mailed before the complaint: spent by it
    assert status_of(mailing, "ben") == "complained"


def test_a_jmrp_report_in_the_old_shape_counts(mailing, run_cli, tmp_path) -> None:
    copy = redact(dispatch_copy(mailing, "eve"), "eve", unsubscribe=False)
    box = maildir_with(tmp_path / "fbl", jmrp(copy, "eve@example.test"))
    report = process(run_cli, box)
    assert (report["complaints"], report["complained"]) == (1, 1)
    assert status_of(mailing, "eve") == "complained"


def test_reading_the_same_report_again_changes_nothing_and_dry_run_agrees(
    mailing, run_cli, tmp_path
) -> None:
    yahoo = arf(redact(dispatch_copy(mailing, "ben", public_url="https://o.test"), "ben"))
    # An unsubscribed reader who then complains is complained (models.STATUS_CHANGES).
    subscriber_store.change_status(
        mailing, subscriber_store.StatusActor.READER, "unsubscribed", "ana@example.test"
    )
    ana = arf(redact(dispatch_copy(mailing, "ana"), "ana"))
    box = maildir_with(tmp_path / "fbl", yahoo, yahoo, ana)
    dry = process(run_cli, box, "--dry-run")
    assert status_of(mailing, "ben") == "active"
    real = process(run_cli, box, "--keep")
    for report in (dry, real):
        assert (report["complaints"], report["complained"], report["already_processed"]) == (
            2,
            2,
            1,
        )
    again = process(run_cli, box)
    assert (again["complaints"], again["already_processed"]) == (0, 3)
    assert status_of(mailing, "ana") == "complained"
    assert mailing.execute("SELECT COUNT(*) FROM complaints").fetchone()[0] == 2


def test_other_feedback_types_are_left_alone(mailing, run_cli, tmp_path) -> None:
    copy = dispatch_copy(mailing, "ben")
    box = maildir_with(
        tmp_path / "fbl",
        arf(copy, feedback_type="not-spam"),
        arf(copy, feedback_type="auth-failure"),
    )
    report = process(run_cli, box)
    assert (report["complaints"], report["ignored"], report["set_aside"]) == (0, 2, 0)
    assert status_of(mailing, "ben") == "active"


def test_the_human_summary_counts_complaints(mailing, run_cli, tmp_path) -> None:
    box = maildir_with(
        tmp_path / "fbl", arf(dispatch_copy(mailing, "ben")), fixture("rfc3464-hard-5.1.1.eml")
    )
    result = run_cli("bounces", "process", "--maildir", str(box))
    assert result.exit_code == 0, result.output
    assert "Read 1 spam complaints; marked 1 readers complained" in result.output
    assert "  ben@example.test (issue 2026-W48)" in result.output


def test_the_signature_check_matches_the_message_factory(mailing) -> None:
    copy = dispatch_copy(mailing, "ben")
    value = next(
        line.split(b": ", 1)[1].decode()
        for line in copy.split(b"\r\n")
        if line.startswith(b"Message-ID: ")
    )
    mid = parse_dispatch_message_id(value)
    assert mid is not None and mid.delivery_id == 2
    secret = ledger.secret_key(mailing)
    assert mid.is_signed_for(secret, ISSUE)
    assert not mid.is_signed_for(secret, "2026-W49")
    assert not mid.is_signed_for(b"another key", ISSUE)
