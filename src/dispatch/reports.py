"""The fundraising report: per-issue figures, per-donor totals, unattributed gifts; as data
(for --json), a terminal table, CSV, and an SVG chart drawn by hand (no plotting library).

Amounts are integers in each currency's minor unit, per currency, net of refunds; currencies
are never added together. ``conversion`` = distinct recipients who gave / messages sent.
"""

from __future__ import annotations

import csv
import html
from pathlib import Path
from typing import Any

from dispatch.errors import InputError, IssueError
from dispatch.models import DeliveryState
from dispatch.money import format_money
from dispatch.store import Database
from dispatch.store import donations as donation_store
from dispatch.store import reports as q


def build_report(db: Database, issue_id: str | None = None) -> dict[str, Any]:
    """``{"mode", "issues": [...], "donors": [...], "unattributed": {...}, "totals": {...}}``.

    Each issue: issue, kind, subject, sent_at, recipients, sent, failed, bounced,
    unsubscribed_since, clicks, clickers, donations, donors, pending, possibly_forwarded,
    amounts {currency: minor units}, refunded {currency: minor units}, conversion.
    ``dispatch.jobs.reporting`` adds the recurring figures (issue 11).
    """
    chosen = q.issues(db, issue_id)
    if issue_id is not None and not chosen:
        raise IssueError(
            f"There is no digest or appeal issue {issue_id!r}",
            "See `dispatch report` for the issues that have been sent.",
        )
    ledger, bounces, unsubs = q.ledger_counts(db), q.bounced(db), q.unsubscribed_since(db)
    clicks, gifts = q.clicks(db), q.gifts_by_issue(db)
    empty_gifts = q.no_gifts()
    rows = []
    for issue in chosen:
        iid = issue["id"]
        counts = ledger.get(iid, {})
        g = gifts.get(iid, empty_gifts)
        sent = int(counts.get(DeliveryState.SENT, 0))
        rows.append(
            {
                "issue": iid,
                "kind": issue["kind"],
                "subject": issue["subject"],
                "sent_at": issue["sent_at"] or issue["send_started_at"],
                "recipients": int(counts.get("recipients", 0)),
                "sent": sent,
                "failed": int(counts.get(DeliveryState.FAILED, 0)),
                "bounced": bounces.get(iid, 0),
                "unsubscribed_since": unsubs.get(iid, 0),
                "clicks": clicks.get(iid, (0, 0))[0],
                "clickers": clicks.get(iid, (0, 0))[1],
                "donations": g["donations"],
                "donors": g["donors"],
                "pending": g["pending"],
                "possibly_forwarded": g["forwarded"],
                "amounts": dict(sorted(g["amounts"].items())),
                "refunded": dict(sorted(g["refunded"].items())),
                "conversion": round(g["donors"] / sent, 4) if sent else 0.0,
            }
        )
    loose = gifts.get(None, empty_gifts)
    totals: dict[str, int] = {}
    for g in gifts.values():
        for currency, amount in g["amounts"].items():
            totals[currency] = totals.get(currency, 0) + amount
    return {
        "mode": donation_store.stripe_mode(db),
        "issues": rows,
        "donors": q.donors(db),
        "unattributed": {
            "donations": loose["donations"],
            "pending": loose["pending"],
            "amounts": dict(sorted(loose["amounts"].items())),
        },
        "totals": {
            "donations": sum(g["donations"] for g in gifts.values()),
            "amounts": dict(sorted(totals.items())),
        },
    }


def money_list(amounts: dict[str, int], locale: str | None = None) -> str:
    """Exact amounts per currency for people: "$20.00, €10.00" (DISPATCH_LANGUAGE's way)."""
    return ", ".join(format_money(v, k, locale=locale) for k, v in sorted(amounts.items())) or "-"


def render_table(report: dict[str, Any], locale: str | None = None) -> str:
    """A fixed-width table for people, then unattributed gifts and totals."""
    head = [
        "Issue",
        "Sent",
        "Recip.",
        "Sent",
        "Failed",
        "Bounced",
        "Unsub",
        "Clicks",
        "Gifts",
        "Donors",
        "Conv.",
        "Net amounts",
    ]
    body = [
        [
            r["issue"],
            (r["sent_at"] or "")[:10] or "-",
            str(r["recipients"]),
            str(r["sent"]),
            str(r["failed"]),
            str(r["bounced"]),
            str(r["unsubscribed_since"]),
            str(r["clicks"]),
            str(r["donations"]),
            str(r["donors"]),
            f"{100 * r['conversion']:.1f}%",
            money_list(r["amounts"], locale),
        ]
        for r in report["issues"]
    ]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = []
    for n, row in enumerate([head, *body]):
        cells = [
            c.ljust(w) if i in (0, 1, 11) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if not body:
        lines.append("(no issue has been sent yet)")
    un = report["unattributed"]
    lines.append("")
    lines.append(
        f"Unattributed gifts (no or unknown link token): {un['donations']}, "
        f"{money_list(un['amounts'], locale)}"
    )
    tot = report["totals"]
    lines.append(
        f"All gifts: {tot['donations']}, {money_list(tot['amounts'], locale)} (net of refunds)"
    )
    if report["donors"]:
        lines.append(
            f"Donors through their links: {len(report['donors'])} "
            "(`dispatch report --json` lists them)"
        )
    monthly = [r for r in report["issues"] if r.get("recurring", {}).get("donors_started")]
    if monthly or report.get("mrr", {}).get("now"):
        lines.append("")
        lines.append(f"Monthly recurring revenue now: {money_list(report['mrr']['now'], locale)}")
        for r in monthly:
            rec = r["recurring"]
            lines.append(
                f"  {r['issue']}: {rec['donors_started']} recurring donors started, "
                f"{rec['active']} active, {rec['past_due']} past due, {rec['cancelled']} "
                f"cancelled, {rec['renewals']} renewals; lifetime "
                f"{money_list(r['lifetime'], locale)}"
            )
    return "\n".join(lines)


def write_csv(report: dict[str, Any], path: Path) -> None:
    """One row per issue; one net amount column per currency (minor units), e.g. amount_usd;
    with recurring figures (jobs.reporting), recurring_* counts and lifetime_<currency>."""
    currencies = sorted({c for r in report["issues"] for c in r["amounts"]})
    lifetime = sorted({c for r in report["issues"] for c in r.get("lifetime", {})})
    fields = [
        "issue",
        "kind",
        "sent_at",
        "recipients",
        "sent",
        "failed",
        "bounced",
        "unsubscribed_since",
        "clicks",
        "donations",
        "donors",
        "pending",
        "conversion",
    ]
    recurring = ["donors_started", "active", "past_due", "cancelled", "renewals"]
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                fields
                + [f"amount_{c}" for c in currencies]
                + [f"recurring_{k}" for k in recurring]
                + [f"lifetime_{c}" for c in lifetime]
            )
            for r in report["issues"]:
                rec = r.get("recurring", {})
                writer.writerow(
                    [r[f] if r[f] is not None else "" for f in fields]
                    + [r["amounts"].get(c, 0) for c in currencies]
                    + [rec.get(k, 0) for k in recurring]
                    + [r.get("lifetime", {}).get(c, 0) for c in lifetime]
                )
    except OSError as exc:
        raise InputError(f"Cannot write {path}: {exc.strerror}", "Check the path.") from exc


def render_svg(
    report: dict[str, Any], title: str = "Donations per issue", locale: str | None = None
) -> str:
    """Bars: gifts per issue (left axis); line: conversion in percent (right axis)."""
    rows = report["issues"]
    width, height, left, right, top, bottom = 760, 360, 56, 56, 40, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    most = max([r["donations"] for r in rows] + [1])
    top_conv = max([100 * r["conversion"] for r in rows] + [1.0])
    step = plot_w / max(len(rows), 1)
    label_every = max(1, -(-len(rows) // 8))
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{esc(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="22" font-size="15" font-weight="bold">{esc(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#444"/>',
        f'<text x="{left - 8}" y="{top + 4}" text-anchor="end">{most}</text>',
        f'<text x="{left - 8}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text x="{left + plot_w + 8}" y="{top + 4}" fill="#c0392b">{top_conv:.1f}%</text>',
        f'<text x="{left + plot_w + 8}" y="{top + plot_h}" fill="#c0392b">0%</text>',
        f'<text x="{left}" y="{height - 12}" fill="#2e6da4">■ gifts</text>',
        f'<text x="{left + 70}" y="{height - 12}" fill="#c0392b">● conversion</text>',
    ]
    points = []
    for i, r in enumerate(rows):
        x = left + i * step
        bar_h = plot_h * r["donations"] / most
        parts.append(
            f'<rect x="{x + step * 0.2:.1f}" y="{top + plot_h - bar_h:.1f}" '
            f'width="{step * 0.6:.1f}" height="{bar_h:.1f}" fill="#2e6da4">'
            f"<title>{esc(r['issue'])}: {r['donations']} gifts, "
            f"{esc(money_list(r['amounts'], locale))}</title></rect>"
        )
        if i % label_every == 0:  # a year of weekly issues would overlap: label some
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                f"{esc(r['issue'])}</text>"
            )
        cy = top + plot_h - plot_h * (100 * r["conversion"]) / top_conv
        points.append(f"{x + step / 2:.1f},{cy:.1f}")
        parts.append(f'<circle cx="{x + step / 2:.1f}" cy="{cy:.1f}" r="3.5" fill="#c0392b"/>')
    if len(points) > 1:
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="#c0392b" stroke-width="2"/>'
        )
    if not rows:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "No issue has been sent yet</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_chart(report: dict[str, Any], path: Path, locale: str | None = None) -> None:
    if path.suffix.lower() != ".svg":
        raise InputError(
            f"Cannot draw {path.name}: the chart is written as SVG",
            "Give a file name ending in .svg (browsers and image viewers open it).",
        )
    try:
        path.write_text(render_svg(report, locale=locale), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot write {path}: {exc.strerror}", "Check the path.") from exc
