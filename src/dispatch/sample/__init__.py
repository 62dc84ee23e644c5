"""The bundled sample site of a fictional outlet, The Riverside Ledger, for the demo and tests.

``site/`` holds local articles (Markdown with front matter, and one plain-text article in the
shape of a copied outlet page, doubled captions included); ``feed.xml`` is the outlet's RSS 2.0
feed. One story is in both, under the same URL (the feed's copy carries tracking parameters and
only a summary), so that a build shows deduplication. Every item is dated in ISO week 2026-W47.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

SAMPLE_DIR: Path = Path(__file__).resolve().parent
SAMPLE_SOURCES: tuple[str, ...] = (str(SAMPLE_DIR / "site"), str(SAMPLE_DIR / "feed.xml"))
#: The week every sample item falls in: Monday 2026-11-16 up to (not including) 2026-11-23.
SAMPLE_WINDOW = (datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))

__all__ = ["SAMPLE_DIR", "SAMPLE_SOURCES", "SAMPLE_WINDOW"]
