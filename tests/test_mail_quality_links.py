"""Every link in every kind of mail works: each is followed against the real web service served
on loopback (tests/plugins/web.py). Article links point at the outlet's own site, which nothing
local stands in for: those are checked to be the stories' addresses, not fetched."""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import requests

from dispatch.store import subscribers as subs
from tests.plugins.web import PAYMENT_LINK, seed_sent_issue
from tests.test_mail_quality import (
    Copy,
    build_kinds,
    html_of,
    sample_issue,
    start_campaign,
    text_of,
)

_HREF = re.compile(r'href="([^"]+)"')
_TEXT_URL = re.compile(r"(?:https?|mailto):[^\s<>\"]+")


def links_of(message: bytes) -> set[str]:
    html, text = html_of(message), text_of(message)
    return {unescape(u) for u in _HREF.findall(html)} | set(_TEXT_URL.findall(text))


def _check(url: str, base: str, stories: set[str], session: requests.Session) -> str:
    """'' when the link works, else what is wrong with it."""
    if url.startswith("mailto:"):
        parts = urlsplit(url)
        ok = "@" in parts.path and "unsubscribe" in parse_qs(parts.query).get("subject", [""])[0]
        return "" if ok else "a mailto link without an address and an unsubscribe subject"
    if url in stories:
        return ""
    if not url.startswith(base):
        return "points outside the web service and the issue's stories"
    for _ in range(5):
        reply = session.get(url, allow_redirects=False, timeout=30)
        if reply.status_code in (301, 302, 303, 307, 308):
            url = reply.headers["Location"]
            if url.startswith(PAYMENT_LINK):  # the donation redirect reaches Stripe
                return ""
            if not url.startswith(base):
                return f"redirects outside: {url}"
            continue
        return "" if reply.status_code == 200 else f"HTTP {reply.status_code}"
    return "too many redirects"


def test_every_link_in_every_kind_of_mail_works(live_web, smtp_server, db):
    people = [("o'brien@example.org", "Siobhán O'Brien")]
    start_campaign(db)
    sent = seed_sent_issue(db, live_web.settings, people, issue_id="2026-W47")
    reader = sent.readers["o'brien@example.org"]
    copy = Copy(
        token=reader.token, unsub_token=reader.unsub_token, email=reader.email, name=reader.name
    )

    session = requests.Session()
    session.trust_env = False  # loopback only, never a proxy
    # The confirmation as the service really sends it: sign up through the form.
    form = session.get(f"{live_web.url}/subscribe", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf, form.text[:500]
    fields = {"email": "new.reader@example.org", "name": "New Reader", "csrf_token": csrf.group(1)}
    assert session.post(f"{live_web.url}/subscribe", data=fields, timeout=30).status_code == 200
    # the signup's work is queued when the response closes, just after the client has it
    deadline = time.monotonic() + 30
    while not smtp_server.to("new.reader@example.org") and time.monotonic() < deadline:
        live_web.app.extensions["dispatch"].outbox.join(timeout=1)
        time.sleep(0.05)
    [confirmation] = smtp_server.to("new.reader@example.org")

    messages = build_kinds(db, live_web.settings, copy, issue_id=sent.id)
    messages["confirm"] = confirmation.data
    stories = {a.url for a in sample_issue().articles if a.url}
    broken = {}
    for kind, message in messages.items():
        urls = links_of(message)
        assert urls, kind
        for url in sorted(urls):
            problem = _check(url, live_web.url, stories, requests.Session())
            if problem:
                broken[(kind, url)] = problem
    assert not broken, broken
    # following the links changed nothing for the reader: a GET never unsubscribes
    sub = subs.get_subscriber(db, "o'brien@example.org")
    assert sub is not None and sub.status.value == "active"


def test_appeals_and_thank_yous_have_no_view_in_browser_link(live_web, db):
    """The archive shows digests only: a "View in your browser" link there led to a 404."""
    sent = seed_sent_issue(db, live_web.settings, [("ana@example.org", "Ana")])
    messages = build_kinds(db, live_web.settings, issue_id=sent.id)
    for kind, message in messages.items():
        has_view = "View in your browser" in html_of(message)
        assert has_view == kind.startswith("digest"), kind
