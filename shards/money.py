"""Decimal strings in major units <-> integer minor units, by the currency's ISO 4217 exponent.

The exponents are ISO's own minor units, from the `iso4217` package (ISO's published table):
every active currency is accepted; fund codes, precious metals, testing codes and units of
account are refused with the reason. Parsing never rounds: more fractional digits than the
currency has is an error.
"""

from __future__ import annotations

import re

import iso4217

from shards.errors import InvalidAmount, InvalidCurrency
from shards.validation import MAX_AMOUNT, check_currency

# ISO lists these as currencies, with minor units and without the fund flag, but they are
# indexed units of account that no one pays with, like the fund codes UYI and CLF.
UNITS_OF_ACCOUNT = frozenset({"UYW", "XAD"})


def _fund_codes() -> frozenset[str]:
    """ISO flags a fund code on its name (`IsFund="true"`); the package keeps that flag only in
    its copy of ISO's XML."""
    entries = iso4217.raw_xml.iterfind("CcyTbl/CcyNtry")
    return frozenset(
        (entry.findtext("Ccy") or "").strip()
        for entry in entries
        if entry.find("CcyNm[@IsFund='true']") is not None
    )


def _iso_currencies() -> tuple[dict[str, int], dict[str, str]]:
    """The exponent of every currency we accept, and why each other ISO code is refused."""
    funds = _fund_codes()
    exponents: dict[str, int] = {}
    refused: dict[str, str] = {}
    for currency in iso4217.Currency:
        if currency.code in funds:
            reason = "ISO 4217 marks it as a fund code, not a currency"
        elif currency.code in UNITS_OF_ACCOUNT:
            reason = "it is a unit of account, not a currency"
        elif currency.exponent is None:
            reason = (
                "ISO 4217 gives it no minor unit (precious metals, testing codes and units "
                "of account are not currencies)"
            )
        else:
            exponents[currency.code] = currency.exponent
            continue
        refused[currency.code] = (
            f"{currency.code} ({currency.currency_name}) is not supported: {reason}"
        )
    return exponents, refused


# Built once at import: `format_amount` also runs inside workflows, which must not import.
EXPONENTS, REFUSED = _iso_currencies()

# ASCII digits only: `\d` would take '١٢' (Arabic-Indic) or '１２' (full-width) as 12.
_DECIMAL = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
_MAX_WHOLE_DIGITS = len(str(MAX_AMOUNT))  # more digits cannot fit, whatever the currency
_SHOWN_CHARS = 40  # an error message quotes at most this much of an amount


def exponent(currency: str) -> int:
    """ISO 4217 minor-unit digits of `currency`; `InvalidCurrency` for anything but an active
    currency (with the reason for fund codes, metals and the like)."""
    check_currency(currency)
    try:
        return EXPONENTS[currency]
    except KeyError:
        unknown = f"{currency} is not supported: not an active ISO 4217 currency"
        raise InvalidCurrency(f"currency {REFUSED.get(currency, unknown)}") from None


def parse_amount(text: str, currency: str) -> int:
    """'12.34' USD -> 1234. Refuses signs, spaces, exponents, NaN, non-ASCII digits, too many
    decimals and overflow, each with `InvalidAmount`."""
    digits = exponent(currency)
    match = _DECIMAL.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidAmount(f"amount {_shown(repr(text))} is not a plain decimal number like 12.34")
    shown = _shown(text)
    whole, fraction = match["whole"].lstrip("0"), match["fraction"] or ""
    if len(fraction) > digits:
        raise InvalidAmount(
            f"amount {shown} has {len(fraction)} decimals; {currency} allows {digits}"
        )
    if len(whole) > _MAX_WHOLE_DIGITS:  # checked before int(), which refuses 4,300+ digits
        raise InvalidAmount(f"amount {shown} {currency} is too large to store")
    minor: int = int(whole or "0") * 10**digits + int(fraction.ljust(digits, "0") or "0")
    if minor <= 0:
        raise InvalidAmount(f"amount {shown} must be positive")
    if minor > MAX_AMOUNT:
        raise InvalidAmount(f"amount {shown} {currency} is too large to store")
    return minor


def _shown(text: str) -> str:
    """An amount as an error message quotes it: cut short if very long."""
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}... ({len(text)} characters)"


def format_amount(minor: int, currency: str) -> str:
    """1234 USD -> '12.34'; exact for any integer (a currency we do not know: 2 decimals)."""
    digits = EXPONENTS.get(currency, 2)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"
