"""Preview an issue as each kind of reader will get it, written to files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from dispatch.config import Settings
from dispatch.donations import verify_payment_link
from dispatch.errors import InputError, IssueError
from dispatch.models import IssueStatus, Persona
from dispatch.render.issue import render_and_store
from dispatch.render.placeholders import fill_placeholders, greeting_for
from dispatch.store import Database
from dispatch.store import issues as issue_store
from dispatch.store.issues import require_issue

PREVIEW_NAME = "Alex Example"
PREVIEW_EMAIL = "alex@example.org"


@dataclass(frozen=True)
class PreviewFile:
    persona: str
    html_path: Path
    text_path: Path
    subject: str


def preview_values(settings: Settings) -> dict[str, str]:
    """Stand-in personal values, clearly fake so no preview link passes for a real one."""
    if settings.payment_link:
        donate = f"{settings.payment_link}?{urlencode({'client_reference_id': 'preview'})}"
    else:
        donate = "https://donate.example.invalid/preview"
    base = settings.public_url.rstrip("/") or "https://newsletter.example.invalid"
    return {
        "GREETING": greeting_for(PREVIEW_NAME),
        "NAME": PREVIEW_NAME,
        "EMAIL": PREVIEW_EMAIL,
        "DONATE_URL": donate,
        "UNSUBSCRIBE_URL": f"{base}/u/preview",
        "MANAGE_URL": f"{base}/m/preview",
    }


def preview_issue(
    db: Database, settings: Settings, issue_id: str, out_dir: Path
) -> list[PreviewFile]:
    """Write ``<persona>.html`` and ``<persona>.txt`` for every reader kind into ``out_dir``."""
    verify_payment_link(settings, db)
    issue = require_issue(db, issue_id)
    variants = issue_store.get_variants(db, issue.id)
    if not variants and issue.status == IssueStatus.DRAFT:
        render_and_store(db, settings, issue.id)
        variants = issue_store.get_variants(db, issue.id)
    if not variants:
        raise IssueError(f"Issue {issue.id} has no rendered copies", "Run `dispatch build` again.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the preview folder {out_dir}: {exc.strerror}") from exc
    values = preview_values(settings)
    written = []
    for persona in Persona:
        variant = variants.get(str(persona))
        if variant is None:
            continue
        html_path = out_dir / f"{persona}.html"
        text_path = out_dir / f"{persona}.txt"
        html_path.write_text(
            fill_placeholders(variant.html, values, is_html=True), encoding="utf-8"
        )
        text_path.write_text(
            fill_placeholders(variant.text, values, is_html=False), encoding="utf-8"
        )
        written.append(PreviewFile(str(persona), html_path, text_path, variant.subject))
    return written
