"""The named states of models.py are exactly the values the schema's CHECK constraints allow."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from dispatch.models import (
    DeliveryState,
    DonationStatus,
    IssueKind,
    IssueStatus,
    SubscriberStatus,
)
from dispatch.store import open_db


def _allowed(schema: str, table: str, column: str) -> set[str]:
    """The values of ``CHECK (column IN (...))`` in the CREATE TABLE of ``table``."""
    create = re.search(rf"CREATE TABLE {table} \((.*?)\n\)", schema, re.S)
    assert create, f"no table {table}"
    check = re.search(rf"CHECK \({column} IN\s*\(([^)]*)\)\)", create.group(1))
    assert check, f"no CHECK on {table}.{column}"
    return set(re.findall(r"'([^']*)'", check.group(1)))


@pytest.mark.parametrize(
    ("enum", "table", "column"),
    [
        (SubscriberStatus, "subscribers", "status"),
        (IssueKind, "issues", "kind"),
        (IssueStatus, "issues", "status"),
        (DeliveryState, "deliveries", "state"),
        (DeliveryState, "donation_thanks", "state"),
        (DonationStatus, "donations", "status"),
    ],
)
def test_each_named_state_is_a_value_the_database_allows(
    tmp_path: Path, enum: type[StrEnum], table: str, column: str
) -> None:
    db = open_db(tmp_path / "states.db", create=True)
    try:
        schema = "\n".join(
            row[0] for row in db.execute("SELECT sql FROM sqlite_master WHERE type = 'table'")
        )
    finally:
        db.close()
    assert {member.value for member in enum} == _allowed(schema, table, column)
