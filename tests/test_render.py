"""Rendering an issue: golden HTML and text, escaping, accessibility, inlining without network."""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dispatch.config import default_templates_dir
from dispatch.errors import RenderError
from dispatch.models import PLACEHOLDERS, Article, CampaignProgress, Issue, Persona
from dispatch.render.templates import Outlet, Renderer, inline_css

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def fixed_issue(**overrides) -> Issue:
    articles = (
        Article(
            title='Council backs flood wall after <b>two-hour</b> debate & a "late" vote',
            url="https://ledger.example/2026/11/flood-wall/",
            guid="https://ledger.example/?p=101",
            published=datetime(2026, 11, 19, 17, 30, tzinfo=UTC),
            source="feed",
            excerpt="Councillors approved the riverside wall on Thursday. Work starts in spring.",
            image_url="https://ledger.example/img/wall.jpg",
            image_alt="The river at high water, seen from the old bridge",
        ),
        Article(
            title="Café owners on the market square: “We’re staying”",
            url="https://ledger.example/2026/11/market/",
            guid="https://ledger.example/?p=102",
            published=datetime(2026, 11, 18, 9, 0, tzinfo=UTC),
            source="feed",
            excerpt="Three of the four cafés will reopen after the works. The fourth is undecided.",
        ),
        Article(
            title="School roof repaired before winter",
            url="https://ledger.example/2026/11/roof/",
            guid="https://ledger.example/?p=103",
            published=datetime(2026, 11, 17, 12, 0, tzinfo=UTC),
            source="folder",
            excerpt="The leak that closed two classrooms is fixed.",
        ),
    )
    values = dict(
        id="2026-W48",
        kind="digest",
        status="draft",
        subject="The Riverside Ledger: the flood wall vote",
        preheader="Also: the market square cafés, the school roof",
        note="Good morning.\n\nThis week we spent three evenings at the town hall.",
        created_at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
        window_end=datetime(2026, 11, 23, 0, 0, tzinfo=UTC),
        articles=articles,
    )
    values.update(overrides)
    return Issue(**values)


@pytest.fixture
def renderer() -> Renderer:
    outlet = Outlet("The Riverside Ledger", "https://ledger.example", "12 Quay Street, Riverside")
    return Renderer(default_templates_dir(), outlet)


def _compare_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.write_text(actual, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"wrote new golden file {path}; check it and rerun")
    assert actual == path.read_text(encoding="utf-8"), f"differs from {path} (UPDATE_GOLDEN=1)"


@pytest.mark.parametrize("persona", list(Persona))
def test_variants_match_golden_files(renderer: Renderer, persona: Persona) -> None:
    campaign = CampaignProgress("Winter fund", 500_000, "eur", 123_450, 41, "2026-12-31")
    (variant,) = renderer.render_issue(fixed_issue(), personas=[persona], campaign=campaign)
    _compare_golden(f"digest_{persona}.html", variant.html)
    _compare_golden(f"digest_{persona}.txt", variant.text)


def test_personal_parts_are_placeholders(renderer: Renderer) -> None:
    for variant in renderer.render_issue(fixed_issue()):
        # current supporters are never asked, and a failing card is fixed in the portal
        link = "MANAGE_URL" if variant.persona in ("supporter", "card_failing") else "DONATE_URL"
        for key in ("GREETING", link, "UNSUBSCRIBE_URL"):
            assert PLACEHOLDERS[key] in variant.html, key
            assert PLACEHOLDERS[key] in variant.text, key
        # each copy re-encodes only the lines holding a placeholder: keep those lines short
        for line in (variant.html + variant.text).splitlines():
            if "%%DISPATCH_" in line:
                assert len(line) < 400 and line.count("%%DISPATCH_") == 1, line


def test_titles_are_escaped_in_html_and_plain_in_text(renderer: Renderer) -> None:
    (variant,) = renderer.render_issue(fixed_issue(), personas=[Persona.NON_DONOR])
    assert "&lt;b&gt;two-hour&lt;/b&gt; debate &amp; a" in variant.html
    assert "<b>two-hour</b>" not in variant.html
    assert '<b>two-hour</b> debate & a "late" vote' in variant.text


def test_hostile_note_and_subject_cannot_inject_markup(renderer: Renderer) -> None:
    issue = fixed_issue(
        subject="</title><script>alert(1)</script>",
        note='<img src=x onerror="alert(1)">',
        preheader='"><script>x</script>',
    )
    (variant,) = renderer.render_issue(issue, personas=[Persona.NON_DONOR])
    assert "<script" not in variant.html
    assert "<img src=x" not in variant.html
    assert "&lt;img src=x onerror=" in variant.html


def test_email_html_is_accessible_and_mobile_ready(renderer: Renderer) -> None:
    (variant,) = renderer.render_issue(fixed_issue(), personas=[Persona.NON_DONOR])
    html = variant.html
    assert '<html lang="en"' in html
    assert 'name="color-scheme" content="light dark"' in html
    assert "prefers-color-scheme: dark" in html  # the dark-mode rules survive inlining
    assert "max-width: 620px" in html  # so do the phone rules
    assert 'class="preheader"' in html and "Also: the market square" in html
    # fluid from the inlined styles alone (clients that drop <style>), 600px for Outlook
    assert re.search(r'class="container"[^>]*style="width:100%; max-width:600px', html)
    assert '<!--[if mso]><table role="presentation" align="center" width="600"' in html
    # a bulletproof button: Outlook ignores the link's padding and takes the cell's
    assert re.search(r'class="button" style="[^"]*mso-padding-alt:12px 22px', html)
    assert re.search(r'<a href="%%DISPATCH_DONATE_URL%%" style="[^"]*mso-padding-alt:0', html)
    assert 'role="presentation"' in html
    for img in re.findall(r"<img\b[^>]*>", html):
        assert re.search(r'\balt="[^"]+"', img), img
    # CSS is inlined into style attributes (premailer ran)
    assert re.search(r'<td class="article" style="[^"]*padding', html)


def test_appeal_block_follows_the_persona(renderer: Renderer) -> None:
    variants = {v.persona: v for v in renderer.render_issue(fixed_issue())}
    assert "Thank you for standing with us" in variants["recent_donor"].html
    assert "Will you renew your support?" in variants["lapsed_donor"].html
    assert "Support our reporting" in variants["non_donor"].html


def test_campaign_progress_shows_while_a_campaign_runs(renderer: Renderer) -> None:
    campaign = CampaignProgress("Winter fund", 300_000, "jpy", 150_000, 3, "2026-12-31")
    (with_campaign,) = renderer.render_issue(
        fixed_issue(), personas=["non_donor"], campaign=campaign
    )
    (without,) = renderer.render_issue(fixed_issue(), personas=["non_donor"])
    assert "¥150,000 of ¥300,000 raised from 3 readers" in with_campaign.html
    assert 'width="50%"' in with_campaign.html
    assert "Winter fund" not in without.html


class _CountingHandler(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"p { color: red }")

    def log_message(self, *args: object) -> None:
        pass


def test_inlining_never_fetches_anything() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        html = (
            f'<html><head><link rel="stylesheet" href="http://127.0.0.1:{port}/remote.css">'
            f"<style>@import url(http://127.0.0.1:{port}/imported.css); p {{ margin: 0 }}</style>"
            f'</head><body><p>Hi</p><img src="http://127.0.0.1:{port}/p.png" alt="x"></body></html>'
        )
        out = inline_css(html)
    finally:
        server.shutdown()
        server.server_close()
    assert _CountingHandler.hits == []
    assert 'style="margin:0"' in out


def test_a_broken_template_is_reported_by_name(tmp_path: Path) -> None:
    (tmp_path / "digest.html").write_text("{% if %}", encoding="utf-8")
    renderer = Renderer(tmp_path, Outlet("X"), defaults_dir=default_templates_dir())
    with pytest.raises(RenderError, match="digest.html has a syntax error on line 1"):
        renderer.render_issue(fixed_issue(), personas=["non_donor"])


def test_an_outlet_can_override_one_template_and_keep_the_rest(tmp_path: Path) -> None:
    (tmp_path / "_appeal.txt").write_text("GIVE AT {{ links.donate }}\n", encoding="utf-8")
    renderer = Renderer(tmp_path, Outlet("X"), defaults_dir=default_templates_dir())
    (variant,) = renderer.render_issue(fixed_issue(), personas=["non_donor"])
    assert f"GIVE AT {PLACEHOLDERS['DONATE_URL']}" in variant.text
    assert "Support our reporting" in variant.html  # the HTML appeal still comes from the defaults
