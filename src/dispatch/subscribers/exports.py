"""Column layouts of the subscriber exports newsrooms arrive with, and ``--map`` for the rest.

A layout says which column holds the address, the name (or first and last name), tags, language
and consent (opt-in time, IP, source), and how the tool's status column reads: someone the old
tool would not mail (unsubscribed, cleaned, blocklisted, email disabled) imports as
``unsubscribed`` or ``bounced``, never ``active``. Columns are matched case-insensitively.
Column names are those of the tools' own CSV exports (Mailchimp audience export and its
unsubscribed/cleaned exports, Substack, Ghost members, listmonk, Buttondown, beehiiv).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dispatch.errors import InputError
from dispatch.models import SubscriberStatus

Cells = Mapping[str, str]  # lower-cased column name -> cell text
StatusRule = Callable[[Cells], SubscriberStatus | None]

#: Header names of the address column in a plain file (and in Excel-made lists).
EMAIL_HEADERS = ("email", "e-mail", "email address", "e-mail address", "mail", "address")
NAME_HEADERS = ("name", "full name", "fullname", "display name")
FIRST_HEADERS = ("first name", "first_name", "firstname", "given name", "fname")
LAST_HEADERS = ("last name", "last_name", "lastname", "surname", "family name", "lname")
TAG_HEADERS = ("tags", "tag", "labels", "label")
LANGUAGE_HEADERS = ("language", "lang", "locale")

#: Names ``--map`` accepts (field=Column header).
MAP_FIELDS = (
    "email",
    "name",
    "first_name",
    "last_name",
    "tags",
    "language",
    "optin_time",
    "optin_ip",
    "source",
    "status",
)


@dataclass(frozen=True)
class Layout:
    """Where a file keeps each thing (lower-cased column names; None or () when it has none)."""

    name: str  # 'mailchimp', 'substack', ..., 'plain', 'mapped'
    email: str
    full_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: tuple[str, ...] = ()
    split_tags: bool = True  # one cell holds several tags ("a, b" or a JSON list)
    language: str | None = None
    consent_at: tuple[str, ...] = ()  # the first non-empty one is the opt-in time
    consent_ip: tuple[str, ...] = ()
    source: tuple[str, ...] = ()  # where the person signed up (utm_source, referrer)
    status: StatusRule | None = None
    used: frozenset[str] = field(default_factory=frozenset)  # every column read


def truthy(value: str, column: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "t", "yes", "y", "1"):
        return True
    if text in ("false", "f", "no", "n", "0", ""):
        return False
    raise InputError(f"{value!r} in column {column} is neither true nor false")


def _by_value(column: str, table: Mapping[str, SubscriberStatus | None]) -> StatusRule:
    def rule(cells: Cells) -> SubscriberStatus | None:
        value = cells.get(column, "").strip().lower()
        if value in table:
            return table[value]
        raise InputError(f"unknown status {value!r} in column {column}")

    return rule


def _mailchimp_status(header: Sequence[str]) -> StatusRule | None:
    # The unsubscribed and cleaned exports are separate files with these extra columns.
    if "clean_time" in header:
        return lambda cells: SubscriberStatus.BOUNCED
    if "unsub_time" in header:
        return lambda cells: SubscriberStatus.UNSUBSCRIBED
    return None


def _substack_status(cells: Cells) -> SubscriberStatus | None:
    disabled = truthy(cells.get("email_disabled", ""), "email_disabled")
    return SubscriberStatus.UNSUBSCRIBED if disabled else None


def _ghost_status(cells: Cells) -> SubscriberStatus | None:
    if cells.get("deleted_at", "").strip():
        return SubscriberStatus.UNSUBSCRIBED
    wants = cells.get("subscribed_to_emails", "true")
    return None if truthy(wants, "subscribed_to_emails") else SubscriberStatus.UNSUBSCRIBED


_U, _B, _C, _P = (
    SubscriberStatus.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED,
    SubscriberStatus.COMPLAINED,
    SubscriberStatus.PENDING,
)
_LISTMONK = {"enabled": None, "": None, "disabled": _U, "blocklisted": _U}
_BUTTONDOWN = {
    "regular": None, "premium": None, "gifted": None, "trialed": None, "past_due": None,
    "churned": None, "paused": _U, "": None,
    "unactivated": _P, "unsubscribed": _U, "removed": _U, "undeliverable": _B,
    "complained": _C, "spammy": _U, "blocked": _U,
}  # fmt: skip
_BEEHIIV = {
    "active": None, "": None, "inactive": _U, "unsubscribed": _U, "invalid": _B,
    "pending": _P, "validating": _P, "needs_attention": _P,
}  # fmt: skip
#: A "status" column of a plain or mapped file: these values keep a reader from being mailed;
#: any other value (subscribed, confirmed, VIP…) says nothing and the reader is active.
_PLAIN_STATUS: dict[str, SubscriberStatus | None] = {
    "unsubscribed": _U, "unsubscribe": _U, "opted out": _U, "opt-out": _U, "opted-out": _U,
    "blocklisted": _U, "blacklisted": _U, "blocked": _U, "disabled": _U, "inactive": _U,
    "bounced": _B, "cleaned": _B, "invalid": _B, "undeliverable": _B,
    "complained": _C, "spam": _C, "abuse": _C,
    "pending": _P, "unconfirmed": _P, "unactivated": _P,
}  # fmt: skip


def _lenient(column: str) -> StatusRule:
    def rule(cells: Cells) -> SubscriberStatus | None:
        return _PLAIN_STATUS.get(cells.get(column, "").strip().lower())

    return rule


def _first(header: Sequence[str], names: Sequence[str]) -> str | None:
    return next((n for n in names if n in header), None)


def detect(header: Sequence[str]) -> Layout | None:
    """The layout of a file with this (lower-cased) header row; None when no column is an
    address column we know."""
    h = set(header)
    lang = _first(header, LANGUAGE_HEADERS)
    if "email address" in h and h & {"member_rating", "optin_time", "leid", "euid"}:
        return Layout(
            "mailchimp", "email address", _first(header, ("name",)), "first name", "last name",
            tags=("tags",), language=lang, consent_at=("optin_time", "confirm_time"),
            consent_ip=("optin_ip", "confirm_ip"), status=_mailchimp_status(header),
        )  # fmt: skip
    if "email" in h and h & {"email_disabled", "active_subscription"}:
        return Layout(
            "substack", "email", _first(header, ("name",)), language=lang,
            consent_at=("created_at",), status=_substack_status,
        )  # fmt: skip
    if "email" in h and "subscribed_to_emails" in h:
        return Layout(
            "ghost", "email", "name", tags=("labels",), language=lang,
            consent_at=("created_at",), status=_ghost_status,
        )  # fmt: skip
    if "email" in h and "attributes" in h and "status" in h:
        return Layout(
            "listmonk", "email", "name", language=lang, consent_at=("created_at",),
            status=_by_value("status", _LISTMONK),
        )  # fmt: skip
    if "subscriber_type" in h and h & {"email", "email_address"}:
        return Layout(
            "buttondown", "email" if "email" in h else "email_address", None, tags=("tags",),
            language=lang, consent_at=("creation_date",), source=("utm_source", "referrer_url"),
            status=_by_value("subscriber_type", _BUTTONDOWN),
        )  # fmt: skip
    if "email" in h and "status" in h and h & {"utm_source", "referring_site"}:
        return Layout(
            "beehiiv", "email", _first(header, NAME_HEADERS), tags=("tags",), language=lang,
            consent_at=("created_at",), source=("utm_source", "referring_site"),
            status=_by_value("status", _BEEHIIV),
        )  # fmt: skip
    email = _first(header, EMAIL_HEADERS)
    if email is None:
        return None
    rule = _lenient("status") if "status" in h else None
    return Layout(
        "plain", email, _first(header, NAME_HEADERS), _first(header, FIRST_HEADERS),
        _first(header, LAST_HEADERS), tags=tuple(t for t in TAG_HEADERS if t in h),
        split_tags=False, language=lang, status=rule,
    )  # fmt: skip


def parse_mapping(text: str) -> dict[str, str]:
    """``email=E-mail,name=Full name`` -> {"email": "E-mail", "name": "Full name"}."""
    mapping: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, column = part.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or not column.strip():
            raise InputError(
                f"--map part {part.strip()!r} is not field=Column",
                "Write it like --map email=E-mail,name=Full name",
            )
        if key not in MAP_FIELDS:
            raise InputError(
                f"--map names an unknown field {key!r}", f"Fields: {', '.join(MAP_FIELDS)}."
            )
        mapping[key] = column.strip()
    if "email" not in mapping:
        raise InputError("--map must say which column holds the address", "Add email=<column>.")
    return mapping


def mapped(header: Sequence[str], mapping: Mapping[str, str], columns: Sequence[str]) -> Layout:
    """The layout the editor gave with ``--map`` (``columns`` as written, for the error)."""
    given = mapping
    mapping = {k: v.lower() for k, v in given.items()}
    missing = [given[k] for k, c in mapping.items() if c not in header]
    if missing:
        raise InputError(
            f"--map names columns the file does not have: {', '.join(missing)}",
            f"The file's columns are: {', '.join(columns)}.",
        )
    tags = mapping.get("tags")
    status = mapping.get("status")
    return Layout(
        "mapped", mapping["email"], mapping.get("name"), mapping.get("first_name"),
        mapping.get("last_name"), tags=(tags,) if tags else (), language=mapping.get("language"),
        consent_at=tuple(filter(None, [mapping.get("optin_time")])),
        consent_ip=tuple(filter(None, [mapping.get("optin_ip")])),
        source=tuple(filter(None, [mapping.get("source")])),
        status=_lenient(status) if status else None,
    )  # fmt: skip


def complete(layout: Layout, header: Sequence[str]) -> Layout:
    """Drop columns the header lacks and note every column the layout reads."""
    h = set(header)

    def keep(col: str | None) -> str | None:
        return col if col in h else None

    def keep_all(cols: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(c for c in cols if c in h)

    result = Layout(
        layout.name, layout.email, keep(layout.full_name), keep(layout.first_name),
        keep(layout.last_name), keep_all(layout.tags), layout.split_tags, keep(layout.language),
        keep_all(layout.consent_at), keep_all(layout.consent_ip), keep_all(layout.source),
        layout.status,
    )  # fmt: skip
    used = {result.email, *result.tags, *result.consent_at, *result.consent_ip, *result.source}
    used |= {c for c in (result.full_name, result.first_name, result.last_name) if c}
    used |= {c for c in (result.language,) if c}
    used |= {c for c in header if c in _STATUS_COLUMNS} if layout.status else set()
    return Layout(**{**result.__dict__, "used": frozenset(used)})


_STATUS_COLUMNS = frozenset(
    {"status", "subscriber_type", "email_disabled", "subscribed_to_emails", "deleted_at",
     "unsub_time", "clean_time"}
)  # fmt: skip


def split_tags(value: str) -> list[str]:
    """Tags kept in one cell: a JSON list, or comma-separated (Mailchimp quotes each one)."""
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(i).strip() for i in items if str(i).strip()]
    return [t.strip().strip('"').strip() for t in text.split(",") if t.strip().strip('"').strip()]
