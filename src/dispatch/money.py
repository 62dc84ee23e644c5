"""Money: the one place that knows minor units and how an amount is written for people.

Every amount Dispatch stores is an integer in the minor unit *Stripe* uses for its currency, since
every amount comes from or goes to Stripe. That is ISO 4217's exponent for most currencies, but not
all: Stripe counts ISK and HUF in hundredths (ISO 4217: 0 and 2; CLDR, which Babel follows, says 0
for both), MGA and UGX in whole units (ISO 4217: 2 and 0). Stripe's rule, from its "Supported
currencies" page, is two decimals unless the currency is on its zero-decimal or three-decimal list,
so those two lists are the only currency facts kept here. Writing an amount (symbol, grouping,
decimal separator, digits shown) is Babel's, in the outlet's language (DISPATCH_LANGUAGE).
"""

from __future__ import annotations

import copy
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    NumberFormatError,
    format_currency,
    format_decimal,
    get_decimal_symbol,
    get_group_symbol,
    parse_decimal,
)

from dispatch.errors import InputError

#: https://docs.stripe.com/currencies#zero-decimal — amounts are whole units.
STRIPE_ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"]
    + ["xaf", "xof", "xpf"]
)
#: https://docs.stripe.com/currencies#three-decimal — amounts in thousandths, last digit 0.
STRIPE_THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
#: https://docs.stripe.com/currencies#special-cases — two-decimal in the API, whole units only.
_WHOLE_UNITS_ONLY = frozenset({"isk"})

DEFAULT_LANGUAGE = "en"
_LETTER_TOUCHES_DIGIT = re.compile(r"(?<=[^\W\d_])(?=[-\d])|(?<=\d)(?=[^\W\d_])")


def minor_unit_exponent(currency: str) -> int:
    """Decimal places of Stripe's minor unit: 2 for USD/ISK/HUF, 0 for JPY/UGX, 3 for KWD."""
    code = currency.strip().lower()
    if code in STRIPE_ZERO_DECIMAL:
        return 0
    if code in STRIPE_THREE_DECIMAL:
        return 3
    return 2


def _accepted_decimals(code: str) -> int:
    """Decimals Stripe takes in a charge: three-decimal amounts must end in 0, ISK is whole."""
    if code in _WHOLE_UNITS_ONLY:
        return 0
    exponent = minor_unit_exponent(code)
    return 2 if exponent == 3 else exponent


def to_minor_units(text: str, currency: str) -> int:
    """'12.50' USD -> 1250; '500' JPY -> 500; '1.250' KWD -> 1250. Refuses an amount that is not
    positive or has more decimals than Stripe accepts in the currency."""
    code = currency.strip().lower()
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise InputError(f"{text!r} is not an amount", "Write it like 25 or 12.50.") from None
    if not value.is_finite():
        raise InputError(f"{text!r} is not an amount", "Write it like 25 or 12.50.")
    decimals = _accepted_decimals(code)
    if value <= 0 or value.scaleb(decimals) != value.scaleb(decimals).to_integral_value():
        raise InputError(
            f"{text!r} is not a positive amount in {code.upper()}",
            f"{code.upper()} amounts have at most {decimals} decimal places.",
        )
    return int(value.scaleb(minor_unit_exponent(code)))


#: Spaces a person may type between groups of digits ("1 000"), French's own being U+202F.
_SPACES = re.compile(r"[\s\u00a0\u202f]")
#: Arabic's decimal and group separators (U+066B, U+066C), typed with Arabic-Indic digits.
_ARABIC_SEPARATORS = {"\u066b": "decimal", "\u066c": "group"}


def parse_amount(text: str, currency: str, locale: str | None = None) -> int:
    """An amount a person typed, read the way their language writes numbers, in Stripe's minor
    units: German "12,50" EUR -> 1250 and "1.000" -> 100000; English "1,000.50" -> 100050.
    Refuses signs, exponents and misplaced separators (Babel's strict parse) with InputError."""
    place = parse_language(locale or DEFAULT_LANGUAGE)
    decimal, group = get_decimal_symbol(place), get_group_symbol(place)
    typed = str(text).strip()
    chars = []
    for char in typed:
        if char.isdigit():
            chars.append(str(unicodedata.decimal(char, char)))
        elif char in _ARABIC_SEPARATORS:
            chars.append(decimal if _ARABIC_SEPARATORS[char] == "decimal" else group)
        elif _SPACES.fullmatch(char):
            chars.append(group if _SPACES.fullmatch(group) else char)
        else:
            chars.append(char)
    cleaned = "".join(chars)
    allowed = set("0123456789") | {decimal, group}
    hint = f"Write it like 25 or {example_amount(currency, locale)}."
    if not cleaned or not set(cleaned) <= allowed or not cleaned[0].isdigit():
        raise InputError(f"{typed!r} is not an amount", hint)
    try:
        value = parse_decimal(cleaned, locale=place, strict=True)
    except (NumberFormatError, ValueError):
        raise InputError(f"{typed!r} is not an amount", hint) from None
    return to_minor_units(str(value), currency)


def example_amount(currency: str, locale: str | None = None) -> str:
    """A typed amount to show as an example, in the language's way: "12.50", "12,50", "500"."""
    place = parse_language(locale or DEFAULT_LANGUAGE)
    if _accepted_decimals(currency.strip().lower()) == 0:
        return "500"
    return f"12{get_decimal_symbol(place)}50"


def from_minor_units(minor_units: int, currency: str) -> Decimal:
    """1250 USD -> Decimal('12.50'); exact, for formatting or JSON written in major units."""
    return Decimal(int(minor_units)).scaleb(-minor_unit_exponent(currency))


@lru_cache(maxsize=32)
def parse_language(tag: str) -> Locale:
    """A BCP 47 tag such as 'en', 'de' or 'pt-BR' (or 'pt_BR') as a Babel locale."""
    text = tag.strip().replace("_", "-")
    try:
        return Locale.parse(text, sep="-")
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise InputError(
            f"{tag!r} is not a language Dispatch knows", "Use a BCP 47 tag such as en, de or pt-BR."
        ) from exc


def format_money(
    minor_units: int, currency: str, *, locale: str | None = None, whole: bool = False
) -> str:
    """An amount for people, in the language's own way: ``format_money(1250, "eur")`` is
    "€12.50"; ``format_money(1250, "kwd")`` is "KWD 1.250"; German writes "12,50 €".

    Exact by default (reports, the terminal): never rounds, and shows at least the currency's
    usual decimals. ``whole=True`` (emails) drops ".00" from a whole amount: "$5,000".
    """
    code = currency.strip().upper()
    value = from_minor_units(int(minor_units), code)
    place = parse_language(locale or DEFAULT_LANGUAGE)
    if whole and value == value.to_integral_value():
        pattern = copy.copy(place.currency_formats["standard"])
        pattern.frac_prec = (0, 0)
        text = pattern.apply(value, place, currency=code, currency_digits=False)
    else:
        text = format_currency(value, code, locale=place, decimal_quantization=False)
    # CLDR's currency spacing, which Babel leaves out: "KWD 1.250", not "KWD1.250".
    return _LETTER_TOUCHES_DIGIT.sub("\u00a0", text)


def format_count(value: int, *, locale: str | None = None) -> str:
    """A count for people in the language's way (issue 14): 1,234 in English, 1.234 in German."""
    return str(format_decimal(int(value), locale=parse_language(locale or DEFAULT_LANGUAGE)))
