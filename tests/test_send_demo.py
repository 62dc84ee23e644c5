"""The demo's send half: the sample list goes out through a loopback SMTP server into a Maildir."""

from __future__ import annotations

import email
import email.policy
import mailbox


def test_demo_sends_every_sample_subscriber_one_copy_and_runs_twice(run_cli, tmp_path):
    workdir = tmp_path / "demo"
    for _ in range(2):
        result = run_cli("demo", "--workdir", str(workdir))
        assert result.exit_code == 0, result.output
        assert "12 personal copies sent, 0 failed" in result.output
        assert "12 sent (issue sent)" in result.output
        assert str(workdir / "Maildir") in result.output
        box = mailbox.Maildir(workdir / "Maildir", create=False)
        recipients = sorted(m["Delivered-To"] for m in box)
        assert len(recipients) == 12 and len(set(recipients)) == 12
    example = email.message_from_bytes(
        (workdir / "example.eml").read_bytes(), policy=email.policy.default
    )
    assert example.get_content_type() == "multipart/alternative"
    html = example.get_body(("html",)).get_content()
    assert "client_reference_id=" in html and "%%DISPATCH_" not in html
