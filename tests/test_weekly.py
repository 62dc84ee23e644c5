"""`dispatch weekly`: build if new, send, resume an interrupted send, and do nothing twice."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatch.store import issues as issue_store
from dispatch.store import ledger
from tests.plugins.smtp import add_subscribers, create_sample_issue

PEOPLE = [("ana@example.org", "Ana"), ("bo@example.org", "Bo"), ("cy@example.org", "Cy")]


def write_article(folder: Path, slug: str, title: str, when: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{slug}.md").write_text(
        "---\n"
        f"title: {title}\n"
        f"date: {when:%Y-%m-%d %H:%M:%S}\n"
        f"url: https://news.example.org/{slug}/\n"
        "---\n\n"
        f"{title}. The council met on Tuesday and agreed the plan after a long debate.\n",
        encoding="utf-8",
    )


@pytest.fixture
def weekly_env(smtp_env, tmp_path) -> dict[str, str]:
    return {**smtp_env, "DISPATCH_SOURCES": str(tmp_path / "site")}


def test_weekly_builds_and_sends_then_does_nothing_the_second_time(
    db, run_cli, smtp_server, weekly_env, tmp_path
):
    add_subscribers(db, PEOPLE)
    now = datetime.now(UTC)
    write_article(
        tmp_path / "site", "bridge", "Bridge reopens after repairs", now - timedelta(days=1)
    )
    write_article(tmp_path / "site", "market", "Market returns", now - timedelta(days=2))

    result = run_cli("weekly", env=weekly_env)
    assert result.exit_code == 0, result.output
    assert "Built " in result.output and "Sent 3, failed 0" in result.output
    assert Counter(m.rcpt for m in smtp_server.messages) == Counter(e for e, _ in PEOPLE)
    subject = smtp_server.messages[0].parsed()["Subject"]
    assert "Bridge reopens after repairs" in subject

    again = run_cli("weekly", "--json", env=weekly_env)
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert data["action"] == "already_sent"
    assert len(smtp_server.messages) == 3


def test_weekly_with_nothing_new_builds_nothing(db, run_cli, smtp_server, weekly_env, tmp_path):
    add_subscribers(db, PEOPLE)
    old = datetime.now(UTC) - timedelta(days=40)
    write_article(tmp_path / "site", "old", "An old story", old)
    result = run_cli("weekly", env=weekly_env)
    assert result.exit_code == 0, result.output
    assert "Nothing new" in result.output
    assert issue_store.list_issues(db) == [] and smtp_server.messages == []


def test_weekly_resumes_an_interrupted_send_first(db, run_cli, smtp_server, weekly_env, tmp_path):
    add_subscribers(db, PEOPLE)
    issue = create_sample_issue(db, "2026-W40")
    ledger.fix_deliveries(db, issue, {}, "non_donor")  # a send that stopped before any mail
    write_article(tmp_path / "site", "new", "A new story", datetime.now(UTC) - timedelta(hours=3))
    result = run_cli("weekly", "--json", env=weekly_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["action"] == "resumed" and data["issue"] == "2026-W40"
    assert data["send"]["counts"]["sent"] == 3
    assert sorted(m.rcpt for m in smtp_server.messages) == sorted(e for e, _ in PEOPLE)
    assert issue_store.get_issue(db, issue).status == "sent"


def test_weekly_reports_permanent_failures_with_exit_3(
    db, run_cli, smtp_server, weekly_env, tmp_path
):
    add_subscribers(db, PEOPLE)
    write_article(tmp_path / "site", "news", "News", datetime.now(UTC) - timedelta(hours=5))
    smtp_server.script_rcpt("bo@example.org", "550 5.1.1 unknown user")
    result = run_cli("weekly", env=weekly_env)
    assert result.exit_code == 3
    assert "bo@example.org  550 5.1.1 unknown user" in result.output


def test_uncertain_copies_left_by_a_crash_do_not_hold_up_later_weeks(
    db, run_cli, smtp_server, weekly_env, tmp_path
):
    add_subscribers(db, PEOPLE)
    old = create_sample_issue(db, "2026-W40")
    ledger.fix_deliveries(db, old, {}, "non_donor")
    issue_store.set_issue_status(db, old, "sending")
    with db.transaction() as conn:  # what a kill -9 mid-send leaves once a rerun has run
        conn.execute("UPDATE deliveries SET state = 'sent' WHERE email != 'cy@example.org'")
        conn.execute("UPDATE deliveries SET state = 'uncertain' WHERE email = 'cy@example.org'")
        weeks_ago = (datetime.now(UTC) - timedelta(days=21)).isoformat(timespec="seconds")
        conn.execute(
            "UPDATE issues SET created_at = ?, send_started_at = ?", (weeks_ago, weeks_ago)
        )
    write_article(tmp_path / "site", "new", "A new story", datetime.now(UTC) - timedelta(hours=3))

    result = run_cli("weekly", env=weekly_env)
    assert result.exit_code == 0, result.output
    assert "2026-W40 still has 1 uncertain copies" in result.output
    assert "--skip-uncertain" in result.output
    assert "Built " in result.output and "Sent 3, failed 0" in result.output
    assert issue_store.get_issue(db, old).status == "sending"  # left for the editor to decide


def test_a_draft_of_last_week_sent_this_week_and_left_uncertain_is_this_weeks_digest(
    db, run_cli, smtp_server, weekly_env, tmp_path
):
    add_subscribers(db, PEOPLE)
    old = create_sample_issue(db, "2026-W40")
    ledger.fix_deliveries(db, old, {}, "non_donor")
    issue_store.set_issue_status(db, old, "sending")
    with db.transaction() as conn:  # built last week, sent this week, one copy left in doubt
        conn.execute("UPDATE deliveries SET state = 'sent' WHERE email != 'cy@example.org'")
        conn.execute("UPDATE deliveries SET state = 'uncertain' WHERE email = 'cy@example.org'")
        week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat(timespec="seconds")
        now = datetime.now(UTC).isoformat(timespec="seconds")
        conn.execute("UPDATE issues SET created_at = ?, send_started_at = ?", (week_ago, now))
    write_article(tmp_path / "site", "new", "A new story", datetime.now(UTC) - timedelta(hours=3))

    result = run_cli("weekly", "--json", env=weekly_env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["action"] == "already_sent"
    assert smtp_server.messages == []  # no second digest this week


def import_people(run_cli, tmp_path: Path) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text("email,name\n" + "".join(f"{e},{n}\n" for e, n in PEOPLE), "utf-8")
    assert run_cli("subscribers", "import", str(csv)).exit_code == 0


def test_weekly_sends_the_editors_draft_from_an_earlier_week_as_edited(
    db, run_cli, smtp_server, weekly_env, tmp_path, make_settings
):
    from dispatch.jobs import editing
    from dispatch.jobs.build import build_issue

    import_people(run_cli, tmp_path)
    now = datetime.now(UTC)
    site = tmp_path / "site"
    write_article(site, "bridge", "Bridge reopens", now - timedelta(days=9))
    write_article(site, "market", "Market returns", now - timedelta(days=8, hours=12))
    write_article(site, "choir", "Choir sings", now - timedelta(days=8))
    settings = make_settings(DISPATCH_SOURCES=str(site))
    draft = build_issue(db, settings, now=now - timedelta(days=7)).issue
    numbers = {e["title"]: e["number"] for e in editing.article_list(db, draft.id)}
    editing.set_article(db, settings, draft.id, numbers["Market returns"], dropped=True)
    editing.edit_issue(db, settings, draft.id, subject="What the editor chose")
    write_article(site, "later", "A later story", now - timedelta(hours=3))

    result = run_cli("weekly", "--json", env=weekly_env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["action"] == "sent" and data["from_draft"] is True
    assert data["issue"] == draft.id
    assert any(f"Sending the editor's draft {draft.id}" in m for m in data["messages"])
    assert [i.id for i in issue_store.list_issues(db)] == [draft.id]  # nothing new was built
    assert len(smtp_server.messages) == 3
    message = smtp_server.messages[0].parsed()
    assert message["Subject"] == "What the editor chose"
    body = message.get_body(("plain",)).get_content()
    assert "Choir sings" in body and "Market returns" not in body
    assert "A later story" not in body  # next week's, once this draft has gone out

    again = json.loads(run_cli("weekly", "--json", env=weekly_env).output)
    assert again["action"] == "already_sent" and len(smtp_server.messages) == 3


def test_weekly_sends_the_latest_draft_and_names_the_older_ones(
    db, run_cli, smtp_server, weekly_env, tmp_path, make_settings
):
    from dispatch.jobs.build import build_issue

    import_people(run_cli, tmp_path)
    now = datetime.now(UTC)
    site = tmp_path / "site"
    write_article(site, "old", "Old story", now - timedelta(days=20))
    write_article(site, "newer", "Newer story", now - timedelta(days=10))
    settings = make_settings(DISPATCH_SOURCES=str(site))
    for issue_id, days in (("old-draft", 20), ("latest-draft", 10)):
        build_issue(
            db,
            settings,
            issue_id=issue_id,
            since=now - timedelta(days=days + 1),
            until=now - timedelta(days=days - 1),
            now=now - timedelta(days=days - 1),
        )
    with db.transaction() as conn:  # built in that order, weeks apart
        conn.execute(
            "UPDATE issues SET created_at = '2026-01-01T00:00:00+00:00' WHERE id = 'old-draft'"
        )
    result = run_cli("weekly", env=weekly_env)
    assert result.exit_code == 0, result.output
    assert "Sending the editor's draft latest-draft" in result.output
    assert "older unsent drafts remain (old-draft)" in result.output
    assert "dispatch issue delete ISSUE --yes" in result.output  # cron has no terminal
    assert issue_store.get_issue(db, "latest-draft").status == "sent"
    assert issue_store.get_issue(db, "old-draft").status == "draft"


def test_an_empty_draft_is_not_sent_and_the_week_is_built(
    db, run_cli, smtp_server, weekly_env, tmp_path
):
    import_people(run_cli, tmp_path)
    write_article(tmp_path / "site", "news", "Fresh news", datetime.now(UTC) - timedelta(hours=5))
    empty = run_cli(
        "build",
        "--force",
        "--id",
        "empty",
        "--since",
        "2000-01-01",
        "--until",
        "2000-01-02",
        env=weekly_env,
    )
    assert empty.exit_code == 0, empty.output
    assert issue_store.get_issue(db, "empty").articles == ()
    result = run_cli("weekly", env=weekly_env)
    assert result.exit_code == 0, result.output
    assert "Built " in result.output and "Fresh news" in smtp_server.messages[0].parsed()["Subject"]
    assert issue_store.get_issue(db, "empty").status == "draft"


def test_a_draft_waiting_after_this_weeks_send_is_mentioned(
    db, run_cli, smtp_server, weekly_env, tmp_path, make_settings
):
    from dispatch.jobs.build import build_issue

    import_people(run_cli, tmp_path)
    now = datetime.now(UTC)
    write_article(tmp_path / "site", "news", "News", now - timedelta(hours=5))
    assert run_cli("weekly", env=weekly_env).exit_code == 0  # this week's digest goes out
    write_article(tmp_path / "site", "later", "Later news", now - timedelta(hours=1))
    settings = make_settings(DISPATCH_SOURCES=str(tmp_path / "site"))
    built = build_issue(db, settings, issue_id="next", since=now - timedelta(days=1), now=now)
    assert [a.title for a in built.issue.articles] == ["Later news"]
    result = run_cli("weekly", env=weekly_env)
    assert "has gone out already" in result.output
    assert "The draft next waits" in result.output
    assert issue_store.get_issue(db, "next").status == "draft"
