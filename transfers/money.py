"""Decimal strings in major units <-> integer minor units, by the currency's ISO 4217 exponent.

Parsing never rounds: more fractional digits than the currency has is an error.
"""

from __future__ import annotations

import re

from shards.errors import InvalidAmount, InvalidCurrency
from shards.validation import MAX_AMOUNT, check_currency

# ISO 4217 minor-unit exponents of the currencies we accept.
TWO_DECIMALS = (
    "AED ARS AUD BDT BRL CAD CHF CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR MAD MXN",
    "MYR NGN NOK NZD PEN PHP PKR PLN RON RUB SAR SEK SGD THB TRY TWD UAH USD ZAR",
)
NO_DECIMALS = ("CLP ISK JPY KRW PYG UGX VND XAF XOF",)
THREE_DECIMALS = ("BHD IQD JOD KWD LYD OMR TND",)
EXPONENTS: dict[str, int] = {
    code: digits
    for lines, digits in ((TWO_DECIMALS, 2), (NO_DECIMALS, 0), (THREE_DECIMALS, 3))
    for line in lines
    for code in line.split()
}

_DECIMAL = re.compile(r"(?P<whole>\d+)(?:\.(?P<fraction>\d+))?")


def exponent(currency: str) -> int:
    check_currency(currency)
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise InvalidCurrency(f"currency {currency} is not supported") from None


def parse_amount(text: str, currency: str) -> int:
    """'12.34' USD -> 1234. Refuses signs, exponents, NaN, too many decimals and overflow."""
    digits = exponent(currency)
    match = _DECIMAL.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidAmount(f"amount {text!r} is not a plain decimal number like 12.34")
    fraction = match["fraction"] or ""
    if len(fraction) > digits:
        raise InvalidAmount(
            f"amount {text} has {len(fraction)} decimals; {currency} allows {digits}"
        )
    minor: int = int(match["whole"]) * 10**digits + int(fraction.ljust(digits, "0") or "0")
    if minor <= 0:
        raise InvalidAmount(f"amount {text} must be positive")
    if minor > MAX_AMOUNT:
        raise InvalidAmount(f"amount {text} {currency} is too large to store")
    return minor


def format_amount(minor: int, currency: str) -> str:
    """1234 USD -> '12.34'; exact for any integer."""
    digits = EXPONENTS.get(currency, 2)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"
