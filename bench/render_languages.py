"""How long rendering an issue takes per language (issue 14): each language variant is rendered
and CSS-inlined once per issue, so the cost grows with DISPATCH_LANGUAGES, not with readers.

    .venv/bin/python bench/render_languages.py
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from dispatch.config import default_templates_dir
from dispatch.models import Article, CampaignProgress, Issue
from dispatch.render.templates import Outlet, Renderer


def sample_issue(count: int = 12) -> Issue:
    published = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    articles = tuple(
        Article(title=f"Story {i}", url=f"https://outlet.example/{i}", guid=str(i),
                published=published, source="bench", excerpt="A paragraph of text. " * 8)
        for i in range(count)
    )  # fmt: skip
    return Issue(id="2026-W48", kind="digest", status="draft", subject="Bench",
                 preheader="", note="A note.", created_at=published, articles=articles)  # fmt: skip


def main() -> None:
    issue = sample_issue()
    campaign = CampaignProgress("Winter fund", 500_000, "eur", 123_450, 41, "2026-12-31")
    for languages in ((), ("de",), ("es", "de", "fr", "ar")):
        outlet = Outlet("Bench Outlet", "https://outlet.example", "1 Street", lang="en")
        renderer = Renderer(default_templates_dir(), outlet, languages=languages)
        renderer.render_issue(issue, campaign=campaign)  # templates compiled, catalogs loaded
        runs = 5
        start = time.perf_counter()
        for _ in range(runs):
            variants = renderer.render_issue(issue, campaign=campaign)
        per_issue = (time.perf_counter() - start) / runs
        print(f"{1 + len(languages)} language(s): {len(variants)} variants, "
              f"{per_issue * 1000:.0f} ms per issue, "
              f"{per_issue * 1000 / len(variants):.1f} ms per variant")  # fmt: skip


if __name__ == "__main__":
    main()
