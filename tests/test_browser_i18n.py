"""Arabic, right to left, in a real browser (Debian's chromium through Playwright): every kind of
mail and every web page reads right to left and fits a 375px phone, with and without the
mail's style block (some clients drop it)."""

from __future__ import annotations

import re

import pytest

from tests.plugins.web import seed_sent_issue, web_env
from tests.test_mail_quality import build_kinds, html_of, start_campaign
from tests.test_mail_quality_browser import _OVERFLOW_JS, PHONE, _load

pytestmark = pytest.mark.browser

_STYLE = re.compile(r"<style\b[^>]*>.*?</style>", re.IGNORECASE | re.DOTALL)

_DIRECTION_JS = """(selectors) => selectors.map((s) => {
  const el = document.querySelector(s);
  if (!el) return [s, null, null];
  const style = getComputedStyle(el);
  return [s, style.direction, style.textAlign];
})"""

_TEXT_JS = "() => document.body.innerText"


def _assert_rtl_and_fits(page, name: str, html: str, selectors: list[str]) -> None:
    _load(page, html)
    found = page.evaluate(_OVERFLOW_JS, PHONE["width"])
    assert found["scroll"] <= PHONE["width"] and not found["wide"], (name, found)
    for selector, direction, align in page.evaluate(_DIRECTION_JS, selectors):
        assert direction == "rtl", (name, selector, direction)
        assert align in ("right", "start"), (name, selector, align)
    assert re.search("[\u0600-\u06ff]", page.evaluate(_TEXT_JS)), name  # Arabic words show


@pytest.fixture
def arabic_settings(make_settings):
    return make_settings(**web_env("https://riverside-ledger.org", DISPATCH_LANGUAGE="ar"))


def test_every_arabic_mail_reads_right_to_left_and_fits_a_phone(browser_page, db, arabic_settings):
    start_campaign(db)
    kinds = {kind: html_of(m) for kind, m in build_kinds(db, arabic_settings).items()}
    assert {"digest/non_donor", "thanks", "confirm"} <= set(kinds)
    page = browser_page
    page.set_viewport_size(PHONE)
    for kind, html in kinds.items():
        assert '<html lang="ar" dir="rtl"' in html, kind
        selectors = ["body", "table.container", "td.masthead", "td.footer"]
        _assert_rtl_and_fits(page, kind, html, selectors)
        _assert_rtl_and_fits(page, f"{kind} without <style>", _STYLE.sub("", html), selectors)


def test_every_arabic_web_page_reads_right_to_left_and_fits_a_phone(browser_page, db, make_web_app):
    app = make_web_app(DISPATCH_LANGUAGE="ar")
    settings = app.extensions["dispatch"].settings
    sent = seed_sent_issue(db, settings, [("ana@example.org", "Ana")])
    token = sent.readers["ana@example.org"].unsub_token
    client = app.test_client()
    pages = {
        "home": client.get("/"),
        "subscribe": client.get("/subscribe"),
        "archive": client.get("/archive/"),
        "archived issue": client.get(f"/archive/{sent.id}"),
        "unsubscribe": client.get(f"/u/{token}"),
        "not found": client.get("/u/no-such-token"),
        "bad confirmation": client.get("/confirm/no-such-token"),
    }
    page = browser_page
    page.set_viewport_size(PHONE)
    for name, response in pages.items():
        assert response.status_code in (200, 404), (name, response.status_code)
        html = response.get_data(as_text=True)
        assert 'lang="ar" dir="rtl"' in html, name
        selectors = ["body"] if name == "archived issue" else ["body", "main", "section.content"]
        _assert_rtl_and_fits(page, name, html, selectors)


def test_the_arabic_donation_page_reads_right_to_left_and_fits_a_phone(
    browser_page, make_web_app, stripe_env, ledger
):
    env = {**stripe_env, "DISPATCH_DONATION_AMOUNTS": "5,10,25", "DISPATCH_CURRENCY": "eur"}
    app = make_web_app(DISPATCH_LANGUAGE="ar", **env)
    token = ledger("2026-W47", "ana@example.test", name="Ana")
    response = app.test_client().get(f"/d/{token}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'lang="ar" dir="rtl"' in html and "كم مرة؟" in html
    page = browser_page
    page.set_viewport_size(PHONE)
    _assert_rtl_and_fits(page, "donation page", html, ["body", "main", "form"])
