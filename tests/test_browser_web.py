"""What a person does with the web service, in a real browser (Debian's chromium through
Playwright) against the real app served on loopback, with mail going to aiosmtpd."""

from __future__ import annotations

import re
import time

import pytest

from dispatch.store import subscribers as subs
from tests.plugins.web import seed_sent_issue

pytestmark = pytest.mark.browser


def status_of(db, email: str) -> str | None:
    sub = subs.get_subscriber(db, email)
    return sub.status.value if sub else None


def test_subscribe_then_confirm_from_the_email(live_web, browser_page, smtp_server, db):
    page = browser_page
    page.goto(f"{live_web.url}/subscribe")
    page.get_by_label("Email address").fill("reader@example.org")
    page.get_by_label("Your name").fill("Rita Reader")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    # The signup's work is queued when the response closes, just after the browser has it:
    # wait for it to be queued and done, not only for what is queued now.
    deadline = time.monotonic() + 30
    while not smtp_server.to("reader@example.org") and time.monotonic() < deadline:
        live_web.app.extensions["dispatch"].outbox.join(timeout=1)
        time.sleep(0.05)
    assert status_of(db, "reader@example.org") == "pending"
    [mail] = smtp_server.to("reader@example.org")
    html = mail.parsed().get_body(("html",)).get_content()
    link = re.search(rf'href="({re.escape(live_web.url)}/confirm/[A-Za-z0-9_-]+)"', html).group(1)

    page.goto(link)
    page.get_by_role("heading", name="Confirm your subscription").wait_for()
    assert status_of(db, "reader@example.org") == "pending"  # opening the link is not enough
    page.get_by_role("button", name="Confirm my subscription").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()
    assert status_of(db, "reader@example.org") == "active"


def test_unsubscribe_and_resubscribe_from_the_link(live_web, browser_page, db):
    sent = seed_sent_issue(db, live_web.settings, [("ana@example.org", "Ana")])
    token = sent.readers["ana@example.org"].unsub_token
    page = browser_page
    page.goto(f"{live_web.url}/u/{token}")
    page.get_by_role("heading", name="Unsubscribe from The Riverside Ledger?").wait_for()
    assert status_of(db, "ana@example.org") == "active"

    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    assert status_of(db, "ana@example.org") == "unsubscribed"

    page.get_by_role("button", name="Resubscribe").click()
    page.get_by_text("Welcome back: you are subscribed again.").wait_for()
    assert status_of(db, "ana@example.org") == "active"


def test_open_an_archived_issue(live_web, browser_page, db):
    sent = seed_sent_issue(db, live_web.settings, [("ana@example.org", "Ana")])
    page = browser_page
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_web.url}/archive/")
    page.get_by_role("link", name=re.compile("budget and floods")).click()
    page.wait_for_url(f"{live_web.url}/archive/{sent.id}")
    page.get_by_text("Council passes a budget with a hole in it").first.wait_for()
    body = page.content()
    assert "Dear reader," in body and "ana@example.org" not in body
    assert not [e for e in errors if "Content Security Policy" in e], errors
