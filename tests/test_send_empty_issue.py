"""An empty digest is never mailed to the list (issue 9, item 11)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatch.jobs.build import build_issue
from tests.plugins.smtp import add_subscribers

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_a_forced_empty_build_is_refused_at_send_and_mails_nobody(
    db, make_settings, write_feed, run_cli, smtp_server, smtp_env
) -> None:
    add_subscribers(db, [("ana@example.org", "Ana Souza")])
    feed = write_feed([("Ancient", "https://news.test/old", NOW - timedelta(days=30))])
    settings = make_settings(**smtp_env)
    built = build_issue(db, settings, sources=[str(feed)], now=NOW, force=True)
    assert built.issue is not None and built.issue.articles == ()

    result = run_cli("send", built.issue.id, env=smtp_env)

    assert result.exit_code == 1, result.output
    assert f"Issue {built.issue.id} has no articles" in result.output
    assert "Traceback" not in result.output
    assert smtp_server.messages == []
    assert db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 0
