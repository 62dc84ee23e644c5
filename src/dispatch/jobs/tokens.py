"""The tokens in the links Dispatch issues (unsubscribe, donation, confirmation)."""

from __future__ import annotations

import re

#: Tokens Dispatch issues are URL-safe base64 or hex; anything else is refused unread.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def valid_token(token: str) -> bool:
    return bool(TOKEN_RE.match(token))
