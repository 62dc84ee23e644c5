"""URL helpers: the canonical form used for deduplication, and safe resolution of links.

Standard library only. A canonical URL lower-cases the scheme and host, drops the default port,
the fragment, tracking parameters and a trailing slash, and sorts the query, so that the same
story reached through a newsletter link, a social share and the feed compares equal.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

#: Query parameters that only say where a click came from, never which page it is.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "spm",
        "cmpid",
        "s_cid",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
SAFE_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """The form of ``url`` that two links to the same page share; "" for an empty URL.

    Lower-case scheme and host, no default port, no fragment, no tracking parameters
    (``utm_*``, ``fbclid``, ``gclid``, ``mc_cid``, ``mc_eid``, ``ref``...), no trailing slash,
    query parameters sorted. URLs that are not http(s) are returned stripped but otherwise as is.
    """
    url = url.strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    path = parts.path.rstrip("/")
    query_items = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    query = urlencode(sorted(query_items))
    return urlunsplit((scheme, netloc, path, query, ""))


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def resolve_url(value: str, base: str, schemes: frozenset[str] = SAFE_LINK_SCHEMES) -> str | None:
    """``value`` made absolute against ``base`` if its scheme is allowed, else None.

    Control characters and whitespace that browsers ignore inside a scheme are removed first,
    so that ``java\\tscript:`` cannot slip through as a relative URL.
    """
    value = value.strip()
    if not value:
        return None
    compact = _CONTROL.sub("", value)
    scheme_match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", compact)
    if scheme_match:
        scheme = scheme_match.group(1).lower()
        if scheme not in schemes:
            return None
        return compact if scheme in ("mailto", "tel") else value
    if not base or not is_http_url(base):
        return None  # a relative URL with nothing to resolve it against would be broken
    try:
        absolute = urljoin(base, value)
    except ValueError:
        return None
    return absolute if urlsplit(absolute).scheme.lower() in schemes else None


def redact_url(url: str) -> str:
    """The URL as it may be shown: a user name and password in it become ``***``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
