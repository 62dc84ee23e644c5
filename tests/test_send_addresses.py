"""Internationalised addresses, and a copy that cannot be built failing alone."""

from __future__ import annotations

import json
from collections import Counter

from dispatch.store import subscribers as subscriber_store
from tests.plugins.smtp import add_subscribers, create_sample_issue


def test_an_internationalised_domain_is_stored_and_sent_in_ascii(
    db, run_cli, smtp_server, smtp_env, tmp_path
):
    csv = tmp_path / "idn.csv"
    csv.write_text(
        "email,name\nana@bücher.example,Ana\nñandú@example.com,Ñandú\nbo@example.org,Bo\n",
        encoding="utf-8",
    )
    report = json.loads(run_cli("subscribers", "import", str(csv), "--json").stdout)
    assert (report["added"], report["invalid"]) == (2, 1)
    [bad] = report["invalid_rows"]
    assert bad["line"] == 3 and "SMTPUTF8" in bad["reason"]
    assert subscriber_store.get_subscriber(db, "ana@xn--bcher-kva.example") is not None

    issue = create_sample_issue(db)
    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 0, result.output
    assert Counter(m.rcpt for m in smtp_server.messages) == Counter(
        ["ana@xn--bcher-kva.example", "bo@example.org"]
    )
    parsed = smtp_server.to("ana@xn--bcher-kva.example")[0].parsed()
    assert parsed["To"].addresses[0].addr_spec == "ana@xn--bcher-kva.example"


def test_a_copy_that_cannot_be_built_fails_alone_and_the_rest_go_out(
    db, run_cli, smtp_server, smtp_env
):
    add_subscribers(db, [("ana@example.org", "Ana"), ("bo@example.org", "Bo")])
    with db.transaction() as conn:  # a row stored before addresses were checked as now
        conn.execute(
            "INSERT INTO subscribers (email, name, status, unsub_token, created_at, updated_at)"
            " VALUES ('ñandú@example.com', 'Ñ', 'active', 'tok-legacy-0123456789abcdef',"
            " '2026-11-01', '2026-11-01')"
        )
    issue = create_sample_issue(db)
    result = run_cli("send", issue, env=smtp_env)
    assert result.exit_code == 3, result.output
    assert "ñandú@example.com" in result.output and "could not build" in result.output
    assert sorted(m.rcpt for m in smtp_server.messages) == ["ana@example.org", "bo@example.org"]
    again = run_cli("send", issue, env=smtp_env)  # a rerun neither blocks nor resends
    assert again.exit_code == 3 and len(smtp_server.messages) == 2


def test_list_id_with_a_non_ascii_outlet_name_is_encoded(db, run_cli, smtp_server, smtp_env):
    add_subscribers(db, [("ana@example.org", "Ana")])
    issue = create_sample_issue(db)
    env = {**smtp_env, "DISPATCH_OUTLET_NAME": "Le Café Gazette"}
    assert run_cli("send", issue, env=env).exit_code == 0
    message = smtp_server.messages[0]
    raw_head = message.data.split(b"\r\n\r\n", 1)[0]
    assert raw_head.isascii()  # no raw 8-bit header
    assert message.parsed()["List-Id"] == "Le Café Gazette <digest.outlet.test>"


def test_one_click_post_is_offered_only_for_an_https_url(db, run_cli, smtp_server, smtp_env):
    add_subscribers(db, [("ana@example.org", "Ana")])
    issue = create_sample_issue(db)
    env = {**smtp_env, "DISPATCH_PUBLIC_URL": "http://news.outlet.test"}
    assert run_cli("send", issue, env=env).exit_code == 0
    msg = smtp_server.messages[0].parsed()
    assert "http://news.outlet.test/u/" in msg["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] is None


def test_a_digest_is_rendered_again_as_its_send_starts(
    db, run_cli, smtp_server, smtp_env, write_feed
):
    """Built before the web service was set up; sent after: the copies link to the archive."""
    from datetime import UTC, datetime

    feed = write_feed([("Budget vote", "https://news.test/b", datetime(2026, 11, 18, tzinfo=UTC))])
    built = run_cli(
        "build",
        "--source",
        str(feed),
        "--since",
        "2026-11-16",
        "--until",
        "2026-11-22",
        "--json",
        env=smtp_env,
    )
    issue = json.loads(built.stdout)["issue"]
    add_subscribers(db, [("ana@example.org", "Ana")])
    env = {**smtp_env, "DISPATCH_PUBLIC_URL": "https://news.outlet.test"}
    assert run_cli("send", issue, env=env).exit_code == 0
    html = smtp_server.messages[0].parsed().get_body(("html",)).get_content()
    assert f"https://news.outlet.test/archive/{issue}" in html
