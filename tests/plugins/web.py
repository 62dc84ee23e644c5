"""Fixtures for the web service: the app with Flask's test client, the real app served over
loopback by werkzeug in a thread, a sent digest with its ledger, and Debian's chromium driven
by Playwright (never `playwright install`)."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

SECRET_KEY = "test-secret-key-0123456789abcdefghijklmnop"
WEBHOOK_SECRET = "whsec_testDispatchWebhookSecret0123456789"
PAYMENT_LINK = "https://buy.stripe.com/test_dispatch123"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def web_env(public_url: str = "http://localhost", **extra: str) -> dict[str, str]:
    env = {
        "DISPATCH_SECRET_KEY": SECRET_KEY,
        "DISPATCH_PUBLIC_URL": public_url,
        "DISPATCH_PAYMENT_LINK": PAYMENT_LINK,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DISPATCH_OUTLET_NAME": "The Riverside Ledger",
        "DISPATCH_FROM": "The Riverside Ledger <news@riverside-ledger.org>",
    }
    env.update(extra)
    return env


@dataclass
class Reader:
    email: str
    name: str
    unsub_token: str
    token: str  # the donation token of their copy of the sent issue


@dataclass
class SentIssue:
    id: str
    readers: dict[str, Reader]


def import_rows(people: list[tuple[str, str]]) -> list[Any]:
    """What a CSV import gives the store, for ``[(email, name), ...]``."""
    from dispatch.subscribers.csvfile import CsvRow

    return [CsvRow(line=n, email=email, name=name) for n, (email, name) in enumerate(people, 2)]


def seed_sent_issue(
    db: Any, settings: Any, people: list[tuple[str, str]], issue_id: str = "2026-W47"
) -> SentIssue:
    """A digest rendered by the real templates, its ledger fixed for ``people`` and marked sent
    (the send itself is the send engine's to test)."""
    from dispatch.models import Article, Issue
    from dispatch.render.settings import renderer_from, send_links
    from dispatch.store import issues, ledger
    from dispatch.store import subscribers as subs

    subs.import_subscribers(db, import_rows(people), "test")
    published = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    articles = (
        Article(
            title="Council passes a budget with a hole in it",
            guid="a1",
            url="https://riverside-ledger.org/2026/11/budget",
            published=published,
            source="test",
            excerpt="The council voted 7 to 4 for a budget that leaves the "
            "library fund short by £240,000.",
        ),
        Article(
            title="Flood defences: what the gauge said",
            guid="a2",
            url="https://riverside-ledger.org/2026/11/flood",
            published=published,
            source="test",
            excerpt="The river rose 1.2 metres overnight.",
        ),
    )
    issue = Issue(
        id=issue_id,
        kind="digest",
        status="draft",
        subject=f"The Ledger {issue_id}: budget and floods",
        preheader="This week",
        note="",
        created_at=published,
        articles=articles,
    )
    variants = renderer_from(settings).render_issue(issue, links=send_links(settings, issue_id))
    issues.create_issue(
        db, issue_id, subject=issue.subject, articles=articles, preheader=issue.preheader
    )
    issues.save_variants(db, issue_id, variants)
    ledger.fix_deliveries(db, issue_id, {}, "non_donor")
    issues.set_issue_status(db, issue_id, "sent")
    readers = {}
    for email, name in people:
        sub = subs.get_subscriber(db, email)
        assert sub is not None
        row = db.execute(
            "SELECT token FROM deliveries WHERE issue_id = ? AND subscriber_id = ?",
            (issue_id, sub.id),
        ).fetchone()
        readers[email] = Reader(email, name, sub.unsub_token, row["token"])
    return SentIssue(issue_id, readers)


@pytest.fixture
def make_web_app(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """``make_web_app(**env)``: the Flask app for the test database and these settings."""
    from dispatch.web import create_app

    apps: list[Any] = []

    def factory(**env: str) -> Any:
        app = create_app(make_settings(**web_env(**env)))
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["dispatch"].close()


@dataclass
class LiveWeb:
    url: str
    app: Any
    settings: Any


@contextlib.contextmanager
def serve_live(settings_for: Callable[[str], Any]) -> Iterator[LiveWeb]:
    """The real app served by werkzeug's threaded server on a free loopback port; settings_for
    gets the server's own address (for DISPATCH_PUBLIC_URL) and returns the app's settings."""
    from werkzeug.serving import make_server

    from dispatch.web import create_app

    holder: dict[str, Any] = {}
    server = make_server(
        "127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True
    )
    url = f"http://127.0.0.1:{server.port}"
    settings = settings_for(url)
    holder["app"] = app = create_app(settings)
    thread = threading.Thread(target=server.serve_forever, name="live-web", daemon=True)
    thread.start()
    try:
        yield LiveWeb(url, app, settings)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        app.extensions["dispatch"].close()


@pytest.fixture
def live_web(make_settings: Callable[..., Any], smtp_server: Any) -> Iterator[LiveWeb]:
    """The real app on loopback (serve_live), with mail going to the aiosmtpd fixture;
    DISPATCH_PUBLIC_URL is the server's own address."""
    with serve_live(
        lambda url: make_settings(**web_env(public_url=url, DISPATCH_SMTP_URL=smtp_server.url))
    ) as live:
        yield live


@pytest.fixture(scope="session")
def _chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        from tests.conftest import skip_or_fail

        skip_or_fail(f"Debian's chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        from tests.conftest import skip_or_fail

        skip_or_fail("the playwright package is not installed in the venv")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(_chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page per test."""
    context = _chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()
