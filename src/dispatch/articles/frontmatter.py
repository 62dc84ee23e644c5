"""YAML front matter of local Markdown articles (PyYAML lives here).

A front matter block opens with a line ``---`` as the file's first line and closes with the next
line that is ``---`` or ``...``. It is read with ``yaml.safe_load`` (no Python objects) and must
be a mapping; anything else is a :class:`FrontMatterError` that names the line.
"""

from __future__ import annotations

from typing import Any

import yaml

_OPEN = "---"
_CLOSE = ("---", "...")
MAX_FRONT_MATTER_CHARS = 100_000  # PyYAML is pure Python here: a few keys, never megabytes


class FrontMatterError(ValueError):
    """The front matter block is not closed, not YAML, or not a mapping of keys."""


def split_front_matter(text: str) -> tuple[dict[str, Any], str, bool]:
    """(keys, body, had_front_matter). Files without a front matter block give ({}, text, False)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != _OPEN:
        return {}, text, False
    for index in range(1, len(lines)):
        if lines[index].strip() in _CLOSE:
            block = "".join(lines[1:index])
            body = "".join(lines[index + 1 :])
            if len(block) > MAX_FRONT_MATTER_CHARS:
                raise FrontMatterError(
                    f"the front matter is {len(block):,} characters long "
                    f"(at most {MAX_FRONT_MATTER_CHARS:,}: it holds a few keys, not the article)"
                )
            return _load(block), body, True
    raise FrontMatterError("the front matter opened on line 1 is never closed with a '---' line")


def _load(block: str) -> dict[str, Any]:
    try:
        value = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"line {mark.line + 2}: " if mark is not None else ""  # +1 for '---', +1 1-based
        raise FrontMatterError(f"the front matter is not valid YAML ({where}{problem})") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FrontMatterError(
            f"the front matter must be 'key: value' lines, not a {type(value).__name__}"
        )
    return {str(k): v for k, v in value.items()}
