"""Filling the per-recipient placeholders of a rendered variant (see models.PLACEHOLDERS)."""

from __future__ import annotations

import html as html_lib
from collections.abc import Mapping

from dispatch.models import PLACEHOLDERS


def greeting_for(name: str) -> str:
    """The greeting line of a copy: by first name where we have one."""
    cleaned = " ".join(name.split())
    return f"Dear {cleaned}," if cleaned else "Dear reader,"


def fill_placeholders(body: str, values: Mapping[str, str], *, is_html: bool) -> str:
    """Replace each placeholder by its value (HTML-escaped in HTML bodies).

    ``values`` is keyed like PLACEHOLDERS (GREETING, NAME, EMAIL, DONATE_URL, UNSUBSCRIBE_URL);
    a missing key leaves nothing behind but an empty string.
    """
    for key, marker in PLACEHOLDERS.items():
        if marker in body:
            value = values.get(key, "")
            body = body.replace(marker, html_lib.escape(value, quote=True) if is_html else value)
    return body
