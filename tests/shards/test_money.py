"""Currencies and their exponents come from ISO 4217's own table (the `iso4217` package): every
active currency is accepted, fund codes, metals, testing codes and units of account are not."""

from __future__ import annotations

import pytest

from shards.errors import InvalidCurrency
from shards.money import EXPONENTS, exponent, format_amount, parse_amount

# The hand-kept table that ISO's replaced: amounts of accounts opened then keep their meaning.
OLD_TABLE = {
    2: "AED ARS AUD BDT BRL CAD CHF CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR MAD MXN MYR "
    "NGN NOK NZD PEN PHP PKR PLN RON RUB SAR SEK SGD THB TRY TWD UAH USD ZAR",
    0: "CLP ISK JPY KRW PYG UGX VND XAF XOF",
    3: "BHD IQD JOD KWD LYD OMR TND",
}
NOT_CURRENCIES = {
    "no minor unit": "XAU XAG XPT XPD XDR XTS XXX XBA XBB XBC XBD XSU XUA",
    "fund code": "BOV CHE CHW CLF COU MXV USN UYI",
    "unit of account": "UYW XAD",
}


def test_every_currency_of_the_old_table_keeps_its_exponent() -> None:
    old = {code: digits for digits, codes in OLD_TABLE.items() for code in codes.split(" ")}
    assert {code: EXPONENTS[code] for code in old} == old


@pytest.mark.parametrize(
    ("currency", "text", "minor"),
    [("KES", "12.34", 1234), ("GHS", "0.05", 5), ("RWF", "1500", 1500), ("LYD", "1.234", 1234)],
)
def test_currencies_beyond_the_old_table_parse_by_their_iso_exponent(
    currency: str, text: str, minor: int
) -> None:
    assert parse_amount(text, currency) == minor
    assert format_amount(minor, currency) == text


def test_every_active_iso_currency_is_accepted() -> None:
    assert len(EXPONENTS) >= 150
    assert {"KES", "GHS", "XCG", "ZWG", "SLE", "VED"} <= EXPONENTS.keys()


@pytest.mark.parametrize(
    ("code", "reason"),
    [(code, reason) for reason, codes in NOT_CURRENCIES.items() for code in codes.split()],
)
def test_what_is_not_a_currency_is_refused_with_the_reason(code: str, reason: str) -> None:
    with pytest.raises(
        InvalidCurrency, match=rf"^currency {code} \(.+\) is not supported: .*{reason}"
    ):
        exponent(code)


def test_an_unknown_code_is_refused() -> None:
    with pytest.raises(InvalidCurrency, match="currency ZZZ is not supported: not an active ISO"):
        exponent("ZZZ")
