"""Money: Stripe's minor units in one place, written for people by Babel in DISPATCH_LANGUAGE."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest
from babel.numbers import get_currency_precision

from dispatch.config import Settings
from dispatch.errors import ConfigError, InputError
from dispatch.money import (
    format_money,
    from_minor_units,
    minor_unit_exponent,
    parse_amount,
    to_minor_units,
)

NBSP = "\u00a0"
SRC = Path(__file__).resolve().parents[1] / "src" / "dispatch"


def test_a_three_decimal_currency_is_shown_at_its_real_size() -> None:
    # Before: '12.50 KWD' (the table that formatted did not know KWD had three decimals).
    assert to_minor_units("1.250", "kwd") == 1250
    assert format_money(to_minor_units("1.250", "kwd"), "kwd") == f"KWD{NBSP}1.250"


@pytest.mark.parametrize(
    ("currency", "stripe", "iso_4217"),
    [
        ("usd", 2, 2),
        ("jpy", 0, 0),
        ("kwd", 3, 3),
        ("bhd", 3, 3),
        ("ugx", 0, 0),
        ("krw", 0, 0),
        # Stripe's own special cases: hundredths in the API whatever ISO 4217 says ...
        ("isk", 2, 0),
        ("huf", 2, 2),
        ("twd", 2, 2),
        # ... and whole units where ISO 4217 has two decimals.
        ("mga", 0, 2),
    ],
)
def test_minor_units_are_stripes(currency: str, stripe: int, iso_4217: int) -> None:
    """Amounts Stripe reports are in Stripe's minor unit; where that differs from ISO 4217 (and
    from CLDR, which Babel's get_currency_precision follows: it says 0 for HUF) Stripe wins."""
    assert minor_unit_exponent(currency) == stripe
    assert minor_unit_exponent(currency.upper()) == stripe
    babel_digits = get_currency_precision(currency.upper())
    if currency in ("isk", "huf"):
        assert babel_digits != stripe  # why Babel's precision is not used for Stripe amounts
    del iso_4217  # documentation of the divergence, not something to compute


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "usd", 1250),
        ("1000", "jpy", 1000),
        ("1.25", "kwd", 1250),
        ("100", "isk", 10000),
        ("1234.56", "huf", 123456),
        ("5000", "ugx", 5000),
    ],
)
def test_amounts_typed_by_the_editor_become_stripe_minor_units(
    text: str, currency: str, minor: int
) -> None:
    assert to_minor_units(text, currency) == minor
    assert from_minor_units(minor, currency) == Decimal(text)


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1.255", "kwd"),
        ("12.5", "isk"),
        ("10.5", "jpy"),
        ("12.345", "usd"),
        ("0", "usd"),
        ("-3", "eur"),
        ("NaN", "usd"),
        ("Infinity", "usd"),
        ("ten", "usd"),
    ],
)
def test_amounts_stripe_would_refuse_are_refused_here(text: str, currency: str) -> None:
    with pytest.raises(InputError):
        to_minor_units(text, currency)


def test_emails_drop_the_decimals_of_a_whole_amount_and_reports_stay_exact() -> None:
    assert format_money(500000, "usd", whole=True) == "$5,000"
    assert format_money(500000, "usd") == "$5,000.00"
    assert format_money(1250, "usd", whole=True) == "$12.50"
    assert format_money(-1250, "eur") == "-€12.50"
    assert format_money(300000, "jpy") == "¥300,000"
    # Exact: HUF is written without decimals by custom, but a Stripe amount with fillér keeps them.
    assert format_money(123456, "huf") == f"HUF{NBSP}1,234.56"
    assert format_money(123400, "huf") == f"HUF{NBSP}1,234"


@pytest.mark.parametrize(
    ("locale", "exact", "email"),
    [
        ("en", "$5,000.00", "$5,000"),
        ("de", f"5.000,00{NBSP}$", f"5.000{NBSP}$"),
        ("pt-BR", f"US${NBSP}5.000,00", f"US${NBSP}5.000"),
        ("pt_BR", f"US${NBSP}5.000,00", f"US${NBSP}5.000"),
    ],
)
def test_amounts_are_written_the_languages_way(locale: str, exact: str, email: str) -> None:
    assert format_money(500000, "usd", locale=locale) == exact
    assert format_money(500000, "usd", locale=locale, whole=True) == email


def test_dispatch_language_is_a_setting_checked_when_settings_load() -> None:
    assert Settings.from_mapping({}).language == "en"
    assert Settings.from_mapping({"DISPATCH_LANGUAGE": "pt-BR"}).language == "pt-BR"
    with pytest.raises(ConfigError) as caught:
        Settings.from_mapping({"DISPATCH_LANGUAGE": "klingon-xx"})
    assert "DISPATCH_LANGUAGE" in str(caught.value) and "pt-BR" in str(caught.value)


def test_email_templates_write_money_in_the_outlets_language(make_settings) -> None:
    from dispatch.render.settings import renderer_from

    for language, expected in (("en", "$5,000 of $12.50"), ("de", f"5.000{NBSP}$ of 12,50{NBSP}$")):
        renderer = renderer_from(make_settings(DISPATCH_LANGUAGE=language))
        template = renderer.env.from_string(
            "{{ 500000 | money('usd') }} of {{ 1250 | money('usd') }}"
        )
        assert template.render() == expected
        assert renderer.outlet.lang == language  # <html lang> of emails and pages


def test_the_report_table_writes_amounts_exactly_in_the_language() -> None:
    from dispatch.reports import money_list

    assert money_list({"kwd": 1250, "usd": 500000}) == f"KWD{NBSP}1.250, $5,000.00"
    assert money_list({"usd": 500000}, "de") == f"5.000,00{NBSP}$"


def test_one_module_knows_currencies() -> None:
    """No second, hand-written table of currency decimals anywhere in the package."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "money.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in ("jpy", "kwd", "JPY", "KWD"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("babel.numbers"):
                offenders.append(f"{path.relative_to(SRC)} imports babel.numbers")
    assert not offenders, offenders


def test_the_report_chart_writes_amounts_in_the_language() -> None:
    from dispatch.reports import render_svg

    report = {
        "issues": [
            {"issue": "2026-W48", "donations": 2, "conversion": 0.1, "amounts": {"eur": 500000}}
        ]
    }
    assert f"5.000,00{NBSP}€" in render_svg(report, locale="de")
    assert "€5,000.00" in render_svg(report)


@pytest.mark.parametrize(
    "text, currency, lang, minor",
    [
        ("12,50", "eur", "de", 1250),
        ("1.000", "eur", "de", 100000),
        ("1.000,5", "eur", "de", 100050),
        ("12.50", "usd", "en", 1250),
        ("1,000", "usd", "en", 100000),
        ("1 000", "eur", "fr", 100000),
        ("١٢٫٥", "eur", "ar", 1250),
        ("500", "jpy", "de", 500),
    ],
)
def test_parse_amount_reads_a_typed_amount_the_languages_way(text, currency, lang, minor):
    assert parse_amount(text, currency, lang) == minor


@pytest.mark.parametrize(
    "text, lang", [("12.50", "de"), ("12,50", "en"), ("1e3", "en"), ("-5", "en"), ("", "en")]
)
def test_parse_amount_refuses_what_the_language_would_not_write(text, lang):
    with pytest.raises(InputError, match="is not an amount"):
        parse_amount(text, "eur", lang)
