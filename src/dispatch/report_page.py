"""`dispatch report --html FILE`: one self-contained page an editor opens in a browser and
forwards to the board (issue 11). Charts are drawn by pygal as inline SVG, with pygal's
JavaScript switched off, so the page loads nothing from anywhere: it works offline and no CDN
sees who opened it. Tables give the exact figures the charts show.

The only module that imports pygal. Amounts come in minor units and are shown in each
currency's own way (dispatch.money, DISPATCH_LANGUAGE); currencies are never added together.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pygal
from pygal.style import Style

from dispatch.errors import InputError
from dispatch.money import format_money, from_minor_units

#: Months after the start at which retention is shown (dispatch.retention computes them).
MILESTONES = (1, 3, 6, 12)

_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#222222",
    foreground_strong="#111111",
    foreground_subtle="#666666",
    colors=("#2e6da4", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085"),
    font_family="sans-serif",
)
_CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 0; } .note { color: #555; font-size: 0.9em; }
"""


def _chart(kind: Any, title: str, **options: Any) -> Any:
    return kind(
        js=[],
        disable_xml_declaration=True,
        style=_STYLE,
        width=760,
        height=340,
        title=title,
        x_label_rotation=30,
        include_x_axis=True,
        **options,
    )


def _money(amounts: dict[str, int], locale: str | None) -> str:
    return ", ".join(format_money(v, c, locale=locale) for c, v in sorted(amounts.items())) or "–"


#: pygal still writes its tooltip configuration as an inline script (for the JavaScript it was
#: told not to load): dropped, so the page runs no script at all.
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S)


def _svg(chart: Any) -> str:
    return f"<figure>{_SCRIPT.sub('', chart.render(is_unicode=True))}</figure>"


def _money_chart(
    kind: Any, title: str, empty: str, series: list[tuple[str, dict[str, int]]], locale: str | None
) -> str:
    """One line per currency over labelled amounts in minor units (never added across
    currencies); ``empty`` is the note shown when there is no amount at all."""
    currencies = sorted({c for _, amounts in series for c in amounts})
    if not currencies:
        return f'<p class="note">{empty}</p>'
    chart = _chart(kind, title)
    chart.x_labels = [label for label, _ in series]
    for cur in currencies:
        chart.add(
            cur.upper(),
            [
                {
                    "value": float(from_minor_units(amounts.get(cur, 0), cur)),
                    "label": format_money(amounts.get(cur, 0), cur, locale=locale),
                }
                for _, amounts in series
            ],
        )
    return _svg(chart)


def _mrr_chart(report: dict[str, Any], locale: str | None) -> str:
    series = [(m["month"], m["mrr"]) for m in report["mrr"]["months"]]
    return _money_chart(
        pygal.Line, "Monthly recurring revenue", "No monthly gifts yet.", series, locale
    )


def _lifetime_chart(issues: list[dict[str, Any]], locale: str | None) -> str:
    series = [(r["issue"], r.get("lifetime", {})) for r in issues]
    return _money_chart(
        pygal.Bar,
        "Lifetime value per issue (net)",
        "No gifts attributed to an issue yet.",
        series,
        locale,
    )


def _retention_chart(table: list[dict[str, Any]]) -> str:
    if not table:
        return '<p class="note">No monthly donor started from an issue yet.</p>'
    chart = _chart(pygal.Bar, "Monthly donors still giving after N months (%)", range=(0, 100))
    chart.x_labels = [f"{n} mo" for n in MILESTONES]
    for row in table:
        values = []
        for n in MILESTONES:
            cell = row["after"][str(n)]
            values.append(
                round(100 * cell["active"] / cell["eligible"], 1) if cell["eligible"] else None
            )
        chart.add(row["issue"], values)
    return _svg(chart)


def _table(head: list[str], rows: list[list[str]]) -> str:
    esc = html.escape
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _mask(email: str) -> str:
    """``an***@example.org``: the board sees who stays, not a mailing list."""
    local, _, domain = email.partition("@")
    return f"{local[:2]}***@{domain}" if domain else "–"


def _donor_row(d: dict[str, Any], locale: str | None) -> list[str]:
    gift = format_money(d["amount_minor"], d["currency"], locale=locale)
    ended = (d["ended"] or "")[:10]
    if ended and d["cancel_reason"]:
        ended += f" ({d['cancel_reason']})"
    return [
        _mask(d["email"]),
        d["issue"] or "–",
        (d["started"] or "")[:10],
        f"{gift} / {d['interval']}",
        d["status"] + (" (recovered)" if d["recovered"] else ""),
        str(d["paid_invoices"]),
        str(d["failures"]),
        ended or "–",
    ]


def render_page(
    report: dict[str, Any], title: str, locale: str | None = None, now: datetime | None = None
) -> str:
    """The whole page as one string (UTF-8 HTML with inline CSS and SVG, no scripts)."""
    esc = html.escape
    issues = report["issues"]
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    per_issue = _table(
        [
            "Issue",
            "Sent",
            "Gifts",
            "One-time",
            "Amounts",
            "New monthly",
            "Active",
            "Past due",
            "Cancelled",
            "Renewals",
            "Lifetime (net)",
        ],
        [
            [
                r["issue"],
                str(r["sent"]),
                str(r["donations"]),
                str(r["recurring"]["one_time_gifts"]),
                _money(r["amounts"], locale),
                str(r["recurring"]["donors_started"]),
                str(r["recurring"]["active"]),
                str(r["recurring"]["past_due"]),
                str(r["recurring"]["cancelled"]),
                str(r["recurring"]["renewals"]),
                _money(r["lifetime"], locale),
            ]
            for r in issues
        ],
    )
    retention = _table(
        ["Started from", "Monthly donors", *(f"after {n} mo" for n in MILESTONES)],
        [
            [
                row["issue"],
                str(row["started"]),
                *(
                    f"{row['after'][str(n)]['active']} of {row['after'][str(n)]['eligible']}"
                    if row["after"][str(n)]["eligible"]
                    else "–"
                    for n in MILESTONES
                ),
            ]
            for row in report["retention"]
        ],
    )
    donors = _table(
        ["Donor", "Started from", "Since", "Gift", "Status", "Paid", "Failed charges", "Ended"],
        [_donor_row(d, locale) for d in report.get("recurring_donors", [])],
    )
    months = _table(
        ["Month", "MRR"], [[m["month"], _money(m["mrr"], locale)] for m in report["mrr"]["months"]]
    )
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
                f"<h1>{esc(title)}</h1>",
                f'<p class="note">Made {esc(stamp)} from the synced Stripe records. Amounts are '
                "net of refunds and disputes and never added across currencies.</p>",
                f"<p><strong>Monthly recurring revenue now:</strong> "
                f"{esc(_money(report['mrr']['now'], locale))}</p>",
                _mrr_chart(report, locale),
                months,
                "<h2>What each issue raised</h2>",
                _lifetime_chart(issues, locale),
                per_issue,
                "<h2>Which issues bring donors who stay</h2>",
                _retention_chart(report["retention"]),
                retention,
                "<h2>Recurring donors</h2>",
                donors,
                "</body></html>",
            ]
        )
        + "\n"
    )


def write_page(report: dict[str, Any], path: Path, title: str, locale: str | None = None) -> None:
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(
            f"Cannot write {path.name}: the page is HTML",
            "Give a file name ending in .html (a browser opens it).",
        )
    try:
        path.write_text(render_page(report, title, locale), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot write {path}: {exc.strerror}", "Check the path.") from exc
