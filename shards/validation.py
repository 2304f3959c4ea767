"""Checks on identifiers and amounts, applied before any database work."""

from __future__ import annotations

import re

from shards.errors import InvalidAccountId, InvalidAmount, InvalidCurrency, InvalidTransferId

ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
MAX_AMOUNT = 2**63 - 1  # PostgreSQL BIGINT
MAX_HOLD_TTL_S = 30 * 24 * 3600  # 30 days: longer reservations are a different product
MAX_PAGE = 1_000  # entries a statement page holds at most (shards.statements)


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_account_id(value: object) -> str:
    """The id, if it is 1-64 characters of [A-Za-z0-9_.:-]; InvalidAccountId otherwise."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidAccountId(
            f"account id {_describe(value)} must be 1-64 characters of A-Z a-z 0-9 _ . : -"
        )
    return value


def check_transfer_id(value: object) -> str:
    """The id, if it is 1-64 characters of [A-Za-z0-9_.:-]; InvalidTransferId otherwise."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidTransferId(
            f"transfer id {_describe(value)} must be 1-64 characters of A-Z a-z 0-9 _ . : -"
        )
    return value


def check_currency(value: object) -> str:
    """The code, if it is three capital letters; InvalidCurrency otherwise."""
    if not isinstance(value, str) or not CURRENCY_PATTERN.fullmatch(value):
        raise InvalidCurrency(
            f"currency {_describe(value)} must be an ISO 4217 code of 3 capital letters"
        )
    return value


def check_amount(value: object) -> int:
    """An amount in minor units: an int (never a bool or float) in 1 .. 2**63-1."""
    if type(value) is not int:
        raise InvalidAmount(f"amount {_describe(value)} must be an integer number of minor units")
    if value <= 0:
        raise InvalidAmount(f"amount {value} must be positive")
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"amount {value} exceeds the largest storable amount {MAX_AMOUNT}")
    return value
