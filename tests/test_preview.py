"""Preview files per reader kind, and the editor's commands on a draft."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dispatch.models import PLACEHOLDERS

WEEK = [("--since", "2026-11-16"), ("--until", "2026-11-22")]


def _build(run_cli, write_feed) -> str:
    feed = write_feed(
        [
            ("Flood wall approved", "https://news.test/wall", datetime(2026, 11, 19, tzinfo=UTC)),
            ("Market reopens", "https://news.test/market", datetime(2026, 11, 18, tzinfo=UTC)),
            ("Roof repaired", "https://news.test/roof", datetime(2026, 11, 17, tzinfo=UTC)),
        ]
    )
    args = ["build", "--source", str(feed), "--json"]
    for flag, value in WEEK:
        args += [flag, value]
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["issue"]


def test_preview_writes_html_and_text_for_each_reader_kind(run_cli, write_feed, tmp_path) -> None:
    issue = _build(run_cli, write_feed)
    out = tmp_path / "preview"
    result = run_cli(
        "preview",
        issue,
        "--out",
        str(out),
        env={"DISPATCH_PAYMENT_LINK": "https://donate.stripe.com/test_x"},
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        f"{kind}.{ext}"
        for kind in ("card_failing", "lapsed_donor", "non_donor", "recent_donor", "supporter")
        for ext in ("html", "txt")
    ]
    for path in out.iterdir():
        body = path.read_text(encoding="utf-8")
        assert not any(marker in body for marker in PLACEHOLDERS.values()), path
        assert "Dear Alex Example," in body
        if path.stem in ("supporter", "card_failing"):  # the manage link, never an ask
            assert "client_reference_id" not in body and "/m/preview" in body
        else:
            assert "client_reference_id=preview" in body
    assert "Thank you for standing with us" in (out / "recent_donor.html").read_text()


def test_preview_of_an_unknown_issue_is_a_clear_error(run_cli, tmp_path: Path) -> None:
    result = run_cli("preview", "2030-W01", "--out", str(tmp_path / "p"))
    assert result.exit_code == 1
    assert "Error: There is no issue 2030-W01." in result.stderr


def test_editor_can_set_subject_note_and_reorder(run_cli, write_feed, tmp_path) -> None:
    issue = _build(run_cli, write_feed)
    assert (
        run_cli(
            "issue",
            "edit",
            issue,
            "--subject",
            "Line one\nBcc: x@evil.test",
            "--note",
            "Hello <readers>",
        ).exit_code
        == 0
    )
    assert run_cli("issue", "move", issue, "3", "--to", "1").exit_code == 0
    assert run_cli("issue", "drop", issue, "1").exit_code == 0  # numbers stay the articles'
    assert run_cli("issue", "drop", issue, "1").exit_code == 1  # already dropped
    shown = json.loads(run_cli("issue", "show", issue, "--json").stdout)
    assert shown["subject"] == "Line one Bcc: x@evil.test"  # one line, never a header break
    kept = [a["title"] for a in shown["articles"] if not a["dropped"]]
    assert kept == ["Roof repaired", "Market reopens"]
    out = tmp_path / "p"
    run_cli("preview", issue, "--out", str(out))
    html = (out / "non_donor.html").read_text(encoding="utf-8")
    html = html[html.index('class="greeting"') :]  # the articles, past the preheader
    assert "Hello &lt;readers&gt;" in html
    assert "Flood wall approved" not in html
    assert html.index("Roof repaired") < html.index("Market reopens")


def test_a_generated_subject_follows_the_articles_but_an_edited_one_stays(run_cli, write_feed):
    issue = _build(run_cli, write_feed)
    run_cli("issue", "drop", issue, "1")
    shown = json.loads(run_cli("issue", "show", issue, "--json").stdout)
    assert shown["subject"].endswith(": Market reopens")
    assert "Flood wall" not in shown["preheader"] and "Market" not in shown["preheader"]
    run_cli("issue", "edit", issue, "--subject", "My own words")
    assert run_cli("issue", "restore", issue, "2").exit_code == 1  # not dropped: an error
    assert run_cli("issue", "restore", issue, "1").exit_code == 0  # the same number as dropped
    assert json.loads(run_cli("issue", "show", issue, "--json").stdout)["subject"] == "My own words"


def test_editing_an_unknown_article_number_names_the_range(run_cli, write_feed) -> None:
    issue = _build(run_cli, write_feed)
    result = run_cli("issue", "pin", issue, "9")
    assert result.exit_code == 1
    assert "has no article number 9" in result.stderr and "1 to 3" in result.stderr
