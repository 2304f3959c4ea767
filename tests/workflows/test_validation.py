"""A client that bypasses validation cannot move money: the workflow fails at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from tests.support.workers import Accounts, record_history


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"amount": 0}, "greater than 0"),
        ({"target_account_id": "SOURCE"}, "source and target must be different accounts"),
        ({"amount": -100}, "greater than 0"),
        ({"amount": 1.5}, "valid integer"),
        ({"amount": "1e9"}, "valid integer"),
        ({"amount": 2**63}, "less than or equal to 9223372036854775807"),
        ({"currency": "usd"}, "should match pattern"),
        ({"target_account_id": "x'; DROP TABLE accounts; --"}, "should match pattern"),
        ({"admin": True}, "Extra inputs are not permitted"),
        ({"currency": None}, "valid string"),
    ],
    ids=[
        "zero-amount",
        "same-account",
        "negative-amount",
        "fractional-amount",
        "amount-as-text",
        "amount-beyond-bigint",
        "lower-case-currency",
        "sql-in-account-id",
        "unknown-field",
        "missing-currency",
    ],
)
async def test_raw_json_that_fails_validation_fails_the_workflow(
    client: Client,
    worker: Worker,
    accounts: Accounts,
    new_id: Callable[[str], str],
    change: dict[str, Any],
    complaint: str,
) -> None:
    source = await accounts.open(1_000, shard=0)
    raw = {
        "transfer_id": new_id("t"),
        "source_account_id": source,
        "target_account_id": await accounts.open(0, shard=1),
        "amount": 100,
        "currency": "USD",
    } | change
    raw = {key: source if value == "SOURCE" else value for key, value in raw.items()}

    # a plain dict, by workflow type name: no pydantic model checks it on the way in
    handle = await client.start_workflow(
        "TransferWorkflow", raw, id=f"transfer-{raw['transfer_id']}", task_queue=worker.task_queue
    )
    with pytest.raises(WorkflowFailureError) as failure:
        await asyncio.wait_for(handle.result(), timeout=10)

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "ValidationError"
    assert complaint in cause.message
    assert await accounts.balance(source) == 1_000
    if change.get("amount") == 0:
        await record_history(handle, "invalid_input")
