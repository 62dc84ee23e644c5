"""The editor's draft (issue 13.3): article numbers that mean the same article across pin, move
and drop; subjects Dispatch wrote follow the edits; `dispatch issue delete` discards a draft,
never a sent issue nor one whose send has started."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from dispatch.errors import IssueError
from dispatch.jobs import editing
from dispatch.jobs.build import build_issue
from dispatch.store import issues as issue_store
from dispatch.store import ledger

STORIES = [
    ("Flood wall approved", "https://news.test/wall", datetime(2026, 11, 19, 9, tzinfo=UTC)),
    ("Market reopens", "https://news.test/market", datetime(2026, 11, 18, 9, tzinfo=UTC)),
    ("Roof repaired", "https://news.test/roof", datetime(2026, 11, 17, 9, tzinfo=UTC)),
    ("Choir sings", "https://news.test/choir", datetime(2026, 11, 16, 9, tzinfo=UTC)),
]
WEEK = ["--since", "2026-11-16", "--until", "2026-11-22"]


@pytest.fixture
def draft(run_cli, write_feed) -> str:
    result = run_cli("build", "--source", str(write_feed(STORIES)), *WEEK, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["issue"]


def shown(run_cli, issue: str) -> dict:
    return json.loads(run_cli("issue", "show", issue, "--json").stdout)


def numbered(run_cli, issue: str) -> list[tuple[int, str]]:
    return [(a["number"], a["title"]) for a in shown(run_cli, issue)["articles"]]


def test_numbers_stay_with_their_articles_across_pin_move_and_drop(run_cli, draft) -> None:
    assert run_cli("issue", "pin", draft, "3").exit_code == 0
    assert numbered(run_cli, draft)[0] == (3, "Roof repaired")
    assert run_cli("issue", "drop", draft, "2").exit_code == 0  # the 2 the editor saw
    dropped = [a["title"] for a in shown(run_cli, draft)["articles"] if a["dropped"]]
    assert dropped == ["Market reopens"]
    assert run_cli("issue", "move", draft, "4", "--to", "1").exit_code == 0
    assert numbered(run_cli, draft) == [
        (4, "Choir sings"),
        (3, "Roof repaired"),
        (1, "Flood wall approved"),
        (2, "Market reopens"),
    ]
    assert run_cli("issue", "restore", draft, "2").exit_code == 0
    assert not any(a["dropped"] for a in shown(run_cli, draft)["articles"])
    text = run_cli("issue", "show", draft).stdout
    assert "   4. Choir sings" in text and "never change them" in text


def test_moving_a_dropped_article_says_to_restore_it(run_cli, draft) -> None:
    run_cli("issue", "drop", draft, "2")
    result = run_cli("issue", "move", draft, "2", "--to", "1")
    assert result.exit_code == 1
    assert "dispatch issue restore" in result.stderr


def test_a_subject_dispatch_wrote_follows_pin_and_move(run_cli, draft) -> None:
    run_cli("issue", "pin", draft, "3")
    data = shown(run_cli, draft)
    assert data["subject"].endswith(": Roof repaired")
    assert data["preheader"].startswith("Also: Flood wall approved")
    run_cli("issue", "move", draft, "4", "--to", "1")
    assert shown(run_cli, draft)["subject"].endswith(": Choir sings")
    run_cli("issue", "edit", draft, "--preheader", "Read this one")
    run_cli("issue", "move", draft, "1", "--to", "1")
    data = shown(run_cli, draft)
    assert data["subject"].endswith(": Flood wall approved")
    assert data["preheader"] == "Read this one"  # the editor's words stay


def test_delete_asks_and_only_a_y_deletes(db, run_cli, draft) -> None:
    no = run_cli("issue", "delete", draft, input="n\n")
    assert no.exit_code == 1 and issue_store.get_issue(db, draft) is not None
    assert "Delete the draft 2026-W48 (4 articles" in no.output
    yes = run_cli("issue", "delete", draft, input="y\n")
    assert yes.exit_code == 0, yes.output
    assert issue_store.get_issue(db, draft) is None
    assert db.execute("SELECT COUNT(*) FROM issue_articles").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM issue_variants").fetchone()[0] == 0


def test_delete_from_a_script_without_a_terminal_says_to_pass_yes(db, run_cli, draft) -> None:
    result = run_cli("issue", "delete", draft)  # input=None: stdin is no terminal, and empty
    assert result.exit_code == 2
    assert "Aborted!" not in result.output
    assert "Error: There is no terminal to answer the question. Pass --yes" in result.stderr
    assert f"dispatch issue delete {draft} --yes" in result.stderr
    assert issue_store.get_issue(db, draft) is not None


def test_delete_yes_skips_the_question_and_the_stories_are_new_again(
    db, run_cli, write_feed, draft
) -> None:
    result = run_cli("issue", "delete", draft, "--yes")
    assert result.exit_code == 0 and "Deleted the draft 2026-W48" in result.stdout
    again = run_cli("build", "--source", str(write_feed(STORIES)), *WEEK, "--json")
    assert len(json.loads(again.stdout)["articles"]) == 4


def test_a_sent_issue_or_one_whose_send_started_is_never_deleted(
    db, make_settings, write_feed, run_cli
) -> None:
    settings = make_settings()
    feed = str(write_feed(STORIES))
    now = datetime(2026, 11, 22, tzinfo=UTC)
    sending = build_issue(db, settings, sources=[feed], now=now, issue_id="a").issue.id
    ledger.fix_deliveries(db, sending, {}, "non_donor")  # the send has started
    sent = build_issue(db, settings, sources=[feed], now=now, issue_id="b", force=True).issue.id
    issue_store.set_issue_status(db, sent, "sent")
    for issue, word in ((sending, "being sent"), (sent, "sent")):
        result = run_cli("issue", "delete", issue, "--yes")
        assert result.exit_code == 1
        assert f"Issue {issue} is {word}" in result.stderr
        assert issue_store.get_issue(db, issue) is not None
    assert run_cli("issue", "delete", "nope", "--yes").exit_code == 1


def test_delete_refuses_a_draft_with_ledger_rows(
    db, make_settings, write_feed, run_cli, tmp_path
) -> None:
    # Belt and braces: the delete itself checks the ledger, whatever the status says.
    (tmp_path / "people.csv").write_text("email,name\nana@example.org,Ana\n", "utf-8")
    assert run_cli("subscribers", "import", str(tmp_path / "people.csv")).exit_code == 0
    settings = make_settings()
    now = datetime(2026, 11, 22, tzinfo=UTC)
    issue = build_issue(db, settings, sources=[str(write_feed(STORIES))], now=now).issue.id
    ledger.fix_deliveries(db, issue, {}, "non_donor")
    with db.transaction() as conn:
        conn.execute("UPDATE issues SET status = 'draft' WHERE id = ?", (issue,))
    assert db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 1
    with pytest.raises(IssueError):
        editing.delete_draft(db, issue)
    assert issue_store.get_issue(db, issue) is not None
