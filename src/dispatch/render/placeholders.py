"""Filling the per-recipient placeholders of a rendered variant (see models.PLACEHOLDERS)."""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable, Mapping

from dispatch.models import PLACEHOLDERS


def _one_line(value: str) -> str:
    """Line breaks and control characters become single spaces (names come from imports)."""
    text = "".join(" " if (ord(ch) < 32 or ord(ch) == 127 or ch in "\u2028\u2029\x85") else ch
                   for ch in value)  # fmt: skip
    return " ".join(text.split())


def _same(message: str) -> str:
    return message


def greeting_for(
    name: str, first_name: str = "", mode: str = "first", gettext: Callable[[str], str] = _same
) -> str:
    """The greeting line of a copy (DISPATCH_GREETING): ``first`` greets by first name where an
    import gave one, else by the full name ("Dear Ada," rather than "Dear Ada Lovelace,");
    ``full`` by the full name; ``none`` greets everyone as "Dear reader,". A name is never
    split by guessing: naming orders differ. ``gettext`` is the copy's language catalog."""
    if mode == "none":
        return gettext("Dear reader,")
    chosen = _one_line(first_name) if mode == "first" else ""
    chosen = chosen or _one_line(name)
    if not chosen:
        return gettext("Dear reader,")
    return gettext("Dear %(name)s,").replace("%(name)s", chosen)


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
