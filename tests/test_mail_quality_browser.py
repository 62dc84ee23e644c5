"""Every kind of mail in a real browser (Debian's chromium through Playwright): it fits a 375px
phone screen even when the client drops every <style> block (Gmail's app with non-Google
accounts, some webmails), and all its text is readable in light and dark mode."""

from __future__ import annotations

import re

import pytest

from tests.plugins.web import web_env
from tests.test_mail_quality import build_kinds, html_of, start_campaign

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}
_STYLE = re.compile(r"<style\b[^>]*>.*?</style>", re.IGNORECASE | re.DOTALL)

_OVERFLOW_JS = """(limit) => {
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > limit + 0.5) {
      wide.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(box.right)}`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 10)};
}"""

_CONTRAST_JS = """() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(',').map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return c;
    }
    const canvas = parse(getComputedStyle(document.documentElement).backgroundColor);
    return canvas || {r: 255, g: 255, b: 255};
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    // an image's alt text is what shows while images are blocked (the default in many clients)
    const own = el.tagName === 'IMG' ? el.alt : [...el.childNodes]
      .filter((n) => n.nodeType === 3 && n.textContent.trim())
      .map((n) => n.textContent.trim()).join(' ');
    if (!own || !el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const fg = parse(getComputedStyle(el).color), bg = background(el);
    const a = lum(fg), b = lum(bg);
    out.push({text: own.slice(0, 50), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)});
  }
  return out;
}"""


@pytest.fixture
def kinds(db, make_settings):
    start_campaign(db)
    settings = make_settings(**web_env("https://riverside-ledger.org"))
    return {kind: html_of(message) for kind, message in build_kinds(db, settings).items()}


def _load(page, html: str) -> None:
    page.route("**/*", lambda route: route.abort())  # images: nothing leaves the machine
    page.set_content(html, wait_until="domcontentloaded")


def test_every_kind_fits_a_phone_without_its_style_block(browser_page, kinds):
    page = browser_page
    page.set_viewport_size(PHONE)
    for kind, html in kinds.items():
        stripped = _STYLE.sub("", html)
        assert "<style" not in stripped
        _load(page, stripped)
        found = page.evaluate(_OVERFLOW_JS, PHONE["width"])
        assert found["scroll"] <= PHONE["width"] and not found["wide"], (kind, found)


def test_every_kind_fits_a_phone_and_a_desktop_with_its_style_block(browser_page, kinds):
    page = browser_page
    for viewport in (PHONE, {"width": 1024, "height": 800}):
        page.set_viewport_size(viewport)
        for kind, html in kinds.items():
            _load(page, html)
            found = page.evaluate(_OVERFLOW_JS, viewport["width"])
            assert found["scroll"] <= viewport["width"] and not found["wide"], (kind, found)
            width = page.evaluate(
                "() => document.querySelector('table.container').getBoundingClientRect().width"
            )
            assert width <= 600, (kind, width)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_all_text_is_readable_in_light_and_dark_mode(browser_page, kinds, scheme):
    """WCAG AA (4.5:1) for every piece of visible text, e.g. a story without a link, and the
    images' alt text."""
    page = browser_page
    page.emulate_media(color_scheme=scheme)
    for kind, html in kinds.items():
        _load(page, html)
        texts = page.evaluate(_CONTRAST_JS)
        assert any("Letters: the bridge" in t["text"] for t in texts) or not kind.startswith(
            "digest"
        )
        poor = [t for t in texts if t["ratio"] < 4.5]
        assert not poor, (kind, scheme, poor)
