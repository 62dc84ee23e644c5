"""The form of the tokens in the links Dispatch issues (unsubscribe, donation, confirmation),
minted by the store; a token of any other form is refused before any lookup."""

from __future__ import annotations

import re

#: Tokens Dispatch issues are URL-safe base64 or hex; anything else is refused unread.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def valid_token(token: str) -> bool:
    return bool(TOKEN_RE.match(token))
