"""The Python API refuses a malformed request before anything is sent: the request models are
the wire contract, and their validation error names the field and the rule it broke."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shards.errors import InvalidAmount
from shards.money import parse_amount
from tests.support.refusals import MALFORMED_AMOUNTS
from transfers.client import TemporalUnavailable, TransfersClient
from transfers.devtools.embedded_pg import free_port
from transfers.settings import Settings
from workflows.models import PendingTransferRequest, TransferRequest

pytestmark = pytest.mark.bad_input

VALID = {
    "transfer_id": "t-api-1",
    "source_account_id": "acc-a",
    "target_account_id": "acc-b",
    "amount": 100,
    "currency": "USD",
}
PATTERN = "String should match pattern"
INTEGER = "Input should be a valid integer"

BAD_REQUESTS: dict[str, tuple[dict[str, Any], str]] = {
    "amount zero": ({"amount": 0}, "Input should be greater than 0"),
    "amount negative": ({"amount": -1}, "Input should be greater than 0"),
    "amount NaN": ({"amount": float("nan")}, INTEGER),
    "amount with decimals": ({"amount": 1.5}, INTEGER),
    "amount as text": ({"amount": "1e9"}, INTEGER),
    "amount boolean": ({"amount": True}, INTEGER),
    "amount beyond BIGINT": ({"amount": 2**63}, "less than or equal to 9223372036854775807"),
    "currency lower case": ({"currency": "usd"}, PATTERN),
    "currency digits": ({"currency": "840"}, PATTERN),
    "source id empty": ({"source_account_id": ""}, PATTERN),
    "source id 65 chars": ({"source_account_id": "a" * 65}, PATTERN),
    "target id SQL": ({"target_account_id": "x'; DROP TABLE accounts; --"}, PATTERN),
    "target id unicode": ({"target_account_id": "konto-ö"}, PATTERN),
    "transfer id control char": ({"transfer_id": "t-1\x00"}, PATTERN),
    "same source and target": ({"target_account_id": "acc-a"}, "must be different accounts"),
    "unknown field": ({"admin": True}, "Extra inputs are not permitted"),
    "missing currency": ({"currency": None}, "Input should be a valid string"),
    "memo too long": ({"memo": "m" * 201}, "String should have at most 200 characters"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_a_malformed_request_is_refused_with_its_reason(case: str) -> None:
    change, reason = BAD_REQUESTS[case]

    with pytest.raises(ValidationError, match=reason):
        TransferRequest.model_validate({**VALID, **change})


@pytest.mark.parametrize("case", MALFORMED_AMOUNTS)
@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD"])
def test_a_malformed_amount_is_an_invalid_amount(case: str, currency: str) -> None:
    with pytest.raises(InvalidAmount, match=r"is not a plain decimal number|is too large to store"):
        parse_amount(MALFORMED_AMOUNTS[case], currency)


def test_a_hold_timeout_of_nan_is_refused() -> None:
    # the other out-of-range timeouts: tests/workflows/test_pending_bad_input.py
    with pytest.raises(ValidationError, match="Input should be a finite number"):
        PendingTransferRequest.model_validate({**VALID, "timeout_s": float("nan")})


async def test_an_unreachable_temporal_is_named() -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = Settings(temporal_address=address, _env_file=None)

    with pytest.raises(TemporalUnavailable, match=rf"Temporal at {address} is unreachable"):
        await TransfersClient.connect(settings, wait_s=1)
