"""The article file format and the commands the docs print are the ones that work (issue 13.4):
the README's example article is the shipped sample file and reads as documented; the demo's
"replay" line and `weekly --help`'s cron line use a `dispatch` that is on hand after the
README's install, not a bare `dispatch` that is not on the PATH."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from dispatch.articles import collect_articles
from dispatch.jobs.demo import dispatch_command
from dispatch.sample import SAMPLE_DIR

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL)


def test_the_readme_example_article_is_the_shipped_sample_file() -> None:
    (example,) = [block for block in fenced("markdown") if block.startswith("---\ntitle:")]
    shipped = SAMPLE_DIR / "site" / "2026-11-20-winter-market.md"
    assert shipped.read_text(encoding="utf-8").startswith(example)
    assert f"src/dispatch/sample/site/{shipped.name}" in README
    (article,) = collect_articles([str(shipped)]).articles
    assert article.title == "Winter market returns to the Corn Exchange"
    assert article.published == datetime(2026, 11, 20, tzinfo=UTC)
    assert article.url == "https://riversideledger.example.org/2026/11/20/winter-market/"
    assert article.image_url and article.image_url.endswith("corn-exchange-stalls.jpg")
    assert article.image_alt == "Stalls under the glass roof of the Corn Exchange"
    assert article.excerpt.startswith("Forty stalls, a brass band")
    for key in ("`title`", "`date`", "`url`", "`image`", "`summary`"):
        assert key in README


def test_the_readme_plain_text_example_reads_as_documented(tmp_path) -> None:
    (example,) = fenced("text")
    path = tmp_path / "flood-wall.txt"
    path.write_text(example, encoding="utf-8")
    result = collect_articles([str(path)])
    (article,) = result.articles
    assert article.title == example.splitlines()[0]
    assert article.url.endswith("/flood-wall/")
    assert article.published == datetime(2026, 11, 17, tzinfo=UTC)
    assert article.title not in article.body_html and result.warnings == []


def test_weekly_help_and_the_readme_cron_line_use_the_installed_command(run_cli) -> None:
    help_text = run_cli("weekly", "--help").stdout
    assert ".venv/bin/dispatch weekly" in help_text
    assert "&& dispatch weekly" not in help_text
    (cron,) = fenced("cron")
    assert ".venv/bin/dispatch weekly" in cron


def test_the_demo_replay_command_runs_from_where_the_readme_installs() -> None:
    venv = Path(sys.prefix)
    command = dispatch_command(venv.parent)
    assert command == f"{venv.name}/bin/dispatch"  # .venv/bin/dispatch after the README
    done = subprocess.run(
        [*shlex.split(command), "--help"], cwd=venv.parent, capture_output=True, timeout=60
    )
    assert done.returncode == 0
    elsewhere = dispatch_command(Path("/"))
    assert Path(shlex.split(elsewhere)[0]).is_absolute()
