"""Is the web service at DISPATCH_PUBLIC_URL there? One GET of its /healthz page."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request

from dispatch.doctor.checks import CheckResult, ok, warn

NAME = "public_url"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({exc.verify_message})"
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def check_public_url(public_url: str, timeout: float) -> CheckResult:
    """https and answering; anything less warns (the unsubscribe check says what it costs)."""
    base = public_url.strip().rstrip("/")
    if not base:
        return warn(
            NAME,
            "DISPATCH_PUBLIC_URL is not set: no one-click unsubscribe page, donation clicks "
            "are not counted",
            "Run `dispatch serve` behind https and set DISPATCH_PUBLIC_URL to its address.",
        )
    if not base.startswith(("https://", "http://")):
        return warn(
            NAME,
            f"DISPATCH_PUBLIC_URL {base!r} is not a web address",
            "Set DISPATCH_PUBLIC_URL to https://... where `dispatch serve` answers.",
        )
    url = f"{base}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only
            status = response.status
    except urllib.error.HTTPError as exc:
        return warn(
            NAME,
            f"{url} answered {exc.code}: is `dispatch serve` behind it?",
            "Point DISPATCH_PUBLIC_URL at the address `dispatch serve` answers on.",
        )
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return warn(
            NAME,
            f"{url} does not answer: {_reason(exc)}",
            "Start `dispatch serve` (behind https) or fix DISPATCH_PUBLIC_URL; readers' "
            "unsubscribe and donation links go there.",
        )
    if not base.startswith("https://"):
        return warn(
            NAME,
            f"{base} answers, but over http, not https",
            "Serve it over https (a reverse proxy with a certificate) and set "
            "DISPATCH_PUBLIC_URL to the https:// address.",
        )
    return ok(NAME, f"{url} answers ({status})")
