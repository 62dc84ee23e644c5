"""Which database DISPATCH_DB names: a SQLite file (a path, ``sqlite:///relative`` or
``sqlite:////absolute``) or a PostgreSQL server (``postgresql://user@host/db``).

A PostgreSQL URL is wrapped in :class:`PostgresURL`, whose ``str()`` and ``repr()`` never show
the password, so settings and errors can be printed as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(value: str) -> bool:
    return value.strip().lower().split(":", 1)[0] in POSTGRES_SCHEMES and "://" in value


def redact_url(url: str) -> str:
    """The URL with any password (in the netloc or a ``password=`` query item) replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item
        for item in parts.query.split("&")
        if item
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class PostgresURL:
    """DISPATCH_DB naming a PostgreSQL database. ``anchor`` is a local path that stands where a
    SQLite file would (in the working folder): per-machine files such as the crash journal, the
    send lock and the unsubscribe spool are named after it."""

    url: str = field(repr=False)
    anchor: Path = field(repr=False)

    @classmethod
    def parse(cls, value: str, workdir: Path | None = None) -> PostgresURL:
        parts = urlsplit(value.strip())
        name = unquote(parts.path.lstrip("/")) or "postgres"
        host = parts.hostname or "local"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{host}-{name}")
        anchor = (workdir or Path.cwd()).absolute() / f"dispatch-{safe}.postgresql"
        return cls(value.strip(), anchor)

    @property
    def database(self) -> str:
        return unquote(urlsplit(self.url).path.lstrip("/"))

    def __str__(self) -> str:
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"PostgresURL({redact_url(self.url)!r})"


def local_path(target: Path | PostgresURL) -> Path:
    """The SQLite file, or the PostgreSQL database's local stand-in (see ``anchor``)."""
    return target.anchor if isinstance(target, PostgresURL) else target
