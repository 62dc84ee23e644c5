"""What every response and log line of the web service gets: security headers, token-free
access logs, the signup form's CSRF check and rate limit.

The rate limit is kept in memory, per process: with gunicorn's ``-w 4`` a client can make up to
four times the limit, which is still enough to stop a bot hammering the form. Behind a proxy,
set DISPATCH_WEB_PROXIES so the client address is the visitor's, not the proxy's.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
from collections import deque
from typing import TypeVar

from flask import session
from werkzeug.wrappers import Response

#: Restrictive by default; inline styles are allowed because the archived emails carry their
#: CSS inlined in style attributes (and the pages share that stylesheet).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src https: data:; "
    "script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

R = TypeVar("R", bound=Response)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "interest-cohort=(), camera=(), microphone=(), geolocation=()",
}


def add_security_headers(response: R) -> R:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


#: Sent when DISPATCH_PUBLIC_URL is https: browsers then refuse plain http to this host for a
#: year (no includeSubDomains: other services of the outlet's domain may not be on https).
HSTS = "max-age=31536000"


def add_hsts(response: R) -> R:
    response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def no_store(response: R) -> R:
    """For pages behind a personal token and forms: never cached by a browser or proxy."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


# -- access logs -----------------------------------------------------------------------------

_TOKEN_PATH = re.compile(r"/(u|d|m|confirm)/[^\s?\"#/]+")
_QUERY = re.compile(r"(/[^\s?\"]*)\?[^\s\"]*")
_LEADING_ADDRESS = re.compile(r"^\S+ - - ")


def redact(text: str) -> str:
    """A log line without the personal tokens of /u/, /d/, /m/ (a monthly gift's manage link,
    which never expires) and /confirm/ paths, or any query."""
    return _QUERY.sub(r"\1?[query]", _TOKEN_PATH.sub(r"/\1/[token]", text))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with tokens, queries and the client address removed.

    Installed on werkzeug's request log by ``dispatch serve`` and on gunicorn's access log
    by ``dispatch.web.gunicorn_conf``.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's problem, not ours
            return True
        record.msg = _LEADING_ADDRESS.sub("- - - ", redact(message))
        record.args = None
        return True


def install_log_redaction(*logger_names: str) -> None:
    for name in logger_names or ("werkzeug",):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


# -- CSRF ------------------------------------------------------------------------------------

CSRF_FIELD = "csrf_token"


def csrf_token() -> str:
    """The form's token: a random value kept in the signed session cookie (double submit)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(submitted: str | None) -> bool:
    expected = session.get("csrf")
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and bool(submitted)
        and hmac.compare_digest(expected.encode(), submitted.encode())
    )


# -- rate limit ------------------------------------------------------------------------------


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key (a sliding window, in memory)."""

    def __init__(self, limit: int, window: float, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._hits) >= self.max_keys and key not in self._hits:
                self._sweep(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def _sweep(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]
        while len(self._hits) >= self.max_keys:  # still full: forget the oldest clients
            del self._hits[next(iter(self._hits))]
