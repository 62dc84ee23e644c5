"""The report with its recurring side (issue 11): the per-issue report of ``dispatch.reports``
with each issue's ``recurring`` figures and ``lifetime`` value, MRR now and month by month and
the retention table (``dispatch.retention``); the offline HTML page; the NewsMatch export."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from dispatch import reports
from dispatch.config import Settings
from dispatch.report_page import write_page
from dispatch.retention import (
    mrr,
    new_recurring_donors,
    recurring_donors,
    recurring_figures,
    retention,
    write_newsmatch_csv,
)
from dispatch.store import Database


def build_report(db: Database, issue_id: str | None = None) -> dict[str, Any]:
    """``reports.build_report`` plus, per issue, ``recurring`` {donors_started, active,
    past_due, cancelled, renewals, first_payments, renewal_amounts} and ``lifetime``
    {currency: minor units}: everything attributed to the issue (one-time gifts, first
    payments, renewals) net of refunds, lost disputes and their fees; and ``mrr``,
    ``retention`` and ``recurring_donors`` (each gift with its donor's history) for the whole
    outlet."""
    data = reports.build_report(db, issue_id)
    for row in data["issues"]:
        row.update(recurring_figures(db, row["issue"]))
    data["mrr"] = mrr(db)
    data["retention"] = retention(db)
    data["recurring_donors"] = recurring_donors(db)
    return data


def write_html(data: dict[str, Any], path: Path, settings: Settings) -> None:
    write_page(data, path, f"{settings.outlet_name}: reader revenue", locale=settings.language)


def write_newsmatch(db: Database, first: date, last: date, path: Path) -> int:
    """Write the matching-campaign CSV; returns how many donors it lists."""
    rows = new_recurring_donors(db, first, last)
    write_newsmatch_csv(rows, path)
    return len(rows)
