"""Addresses and names (email-validator lives here): normalising, validating, cleaning.

Addresses are normalised by email-validator (no DNS look-ups) and then lower-cased, which is how
the store compares them; names become one line of plain text.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

from dispatch.errors import InputError

MAX_NAME = 200


def normalize_address(address: str, *, allow_test_domains: bool = False) -> str:
    """The comparable form of an address: email-validator's normalised form, lower-cased.

    Raises InputError with email-validator's reason when the address is not valid.
    ``allow_test_domains`` accepts ``*.test`` (for the outlet's own settings and test copies).
    """
    candidate = address.strip()
    if not candidate:
        raise InputError("The address is empty")
    try:
        result = validate_email(
            candidate, check_deliverability=False, test_environment=allow_test_domains
        )
    except EmailNotValidError as exc:
        raise InputError(f"{candidate!r} is not a valid email address: {exc}") from exc
    if result.ascii_email is None:
        raise InputError(
            f"{candidate!r} has non-ASCII characters before the @, which only relays with "
            "SMTPUTF8 accept; Dispatch does not send to such addresses yet"
        )
    # An internationalised domain is kept in its ASCII (IDNA) form: what SMTP and headers need.
    return result.ascii_email.lower()


def envelope_address(address: str) -> str:
    """The form to give SMTP: the domain in ASCII (IDNA) when the address has a non-ASCII one."""
    if address.isascii():
        return address
    try:
        result = validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError:
        return address
    return result.ascii_email or result.normalized


def parse_mailbox(value: str, setting: str) -> tuple[str, str]:
    """Split ``Name <addr>`` (or a bare address) from a setting and validate the address."""
    name, address = parseaddr(value.strip())
    if not address or "@" not in address:
        raise InputError(f"{setting} must be an address such as 'Outlet <news@example.org>'")
    try:
        result = validate_email(address, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        raise InputError(f"{setting} has an invalid address {address!r}: {exc}") from exc
    return " ".join(name.split()), result.normalized


_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def clean_name(value: str) -> str:
    """One line of plain text: any line breaks, tabs or control characters become spaces."""
    if not value.isprintable():  # the common case skips the substitution
        value = _CONTROL.sub(" ", value)
    return " ".join(value.split())[:MAX_NAME]
