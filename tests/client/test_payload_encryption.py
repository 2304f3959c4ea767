"""With PAYLOAD_KEYS set, the Temporal server stores no memo, no account id and no amount in
clear outside the search attributes and summaries, which stay readable and carry no memo; the
worker and clients with the keys work as before, histories replay, and a transfer's submitter
learns no balance.

The histories are read with a client that has no codec: what the server (and anyone who can
read its database or the Web UI without the codec server) sees.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from activities.ledger import LedgerActivities
from shards.errors import PayloadKeyError
from tests.support.cli_runs import run_cli
from tests.support.workers import Accounts, running_worker
from transfers.client import TransfersClient, workflow_id
from transfers.payload_codec import ENCODING, KEY_ID
from transfers.settings import Settings
from transfers.temporal_connection import connect_temporal
from workflows.models import TransferOutcome, TransferRequest, TransferStatus
from workflows.pending import PendingTransferWorkflow
from workflows.transfer import TransferWorkflow

pytestmark = pytest.mark.security

AMOUNT = 987_654  # 9876.54 USD: digits that appear nowhere by chance
FUNDS = 2_345_678  # two transfers of AMOUNT fit
OLD_KEY, NEW_KEY = os.urandom(32), os.urandom(32)


def _keys(**keys: bytes) -> SecretStr:
    return SecretStr(",".join(f"{i}:{base64.b64encode(key).decode()}" for i, key in keys.items()))


def _with_keys(settings: Settings, key_id: str, **keys: bytes) -> Settings:
    fields = settings.model_dump(exclude={"payload_keys", "payload_key_id"})
    return Settings(_env_file=None, **fields, payload_keys=_keys(**keys), payload_key_id=key_id)


@dataclass(frozen=True)
class Sent:
    """A transfer submitted with the codec on, and what must not be in clear in its history."""

    request: TransferRequest
    outcome: TransferOutcome

    @property
    def secrets(self) -> tuple[bytes, ...]:
        request = self.request
        memo = request.memo or ""
        ids = (request.source_account_id, request.target_account_id)
        return (memo.encode(), *(i.encode() for i in ids), b"987654", b"9876.54")


@pytest.fixture
async def encrypted(settings: Settings) -> Settings:
    """The test's settings, payloads encrypted under `new`; `old` still decrypts."""
    return _with_keys(settings, "new", old=OLD_KEY, new=NEW_KEY)


@pytest.fixture
async def transfers(
    encrypted: Settings, activities: LedgerActivities
) -> AsyncIterator[TransfersClient]:
    """A client and a worker, both with the keys, as worker.py and the CLI connect."""
    client = await connect_temporal(encrypted)
    async with running_worker(client, encrypted, activities):
        yield TransfersClient(client, encrypted)


@pytest.fixture
async def sent(
    transfers: TransfersClient, accounts: Accounts, new_id: Callable[[str], str]
) -> list[Sent]:
    """A completed cross-shard transfer and a compensated one (its credit refused), both with
    a memo."""
    source = await accounts.open(FUNDS, shard=0)
    target, closed = await accounts.open(0, shard=1), await accounts.open(0, shard=2)
    await accounts.close(closed)
    requests = [
        TransferRequest(
            transfer_id=new_id("t"),
            source_account_id=source,
            target_account_id=to,
            amount=AMOUNT,
            currency="USD",
            memo=f"memo-{new_id('secret')}",
        )
        for to in (target, closed)
    ]
    outcomes = [await transfers.submit(request) for request in requests]
    assert [o.status for o in outcomes] == [TransferStatus.COMPLETED, TransferStatus.COMPENSATED]
    return [Sent(r, o) for r, o in zip(requests, outcomes, strict=True)]


async def _raw_history(plain: Client, transfer_id: str) -> WorkflowHistory:
    """The history as the server keeps it, read without any codec."""
    return await plain.get_workflow_handle(workflow_id(transfer_id)).fetch_history()


def _without_readable_parts(event: HistoryEvent) -> bytes:
    """The event's bytes without its search attributes and summary (meant to be readable)."""
    stripped = HistoryEvent()
    stripped.CopyFrom(event)
    stripped.ClearField("user_metadata")
    stripped.workflow_execution_started_event_attributes.ClearField("search_attributes")
    stripped.upsert_workflow_search_attributes_event_attributes.ClearField("search_attributes")
    return stripped.SerializeToString()


async def test_the_history_holds_no_memo_account_or_amount_in_clear(
    sent: list[Sent], temporal_env: WorkflowEnvironment
) -> None:
    for transfer in sent:
        history = await _raw_history(temporal_env.client, transfer.request.transfer_id)
        memo = transfer.secrets[0]

        for event in history.events:
            assert memo not in event.SerializeToString(), event
            leaked = [s for s in transfer.secrets if s in _without_readable_parts(event)]
            assert leaked == [], event

        started = history.events[0].workflow_execution_started_event_attributes
        [request] = started.input.payloads
        assert (request.metadata["encoding"], request.metadata[KEY_ID]) == (ENCODING, b"new")


async def test_search_attributes_and_summaries_stay_readable_without_the_memo(
    sent: list[Sent], temporal_env: WorkflowEnvironment
) -> None:
    transfer = sent[0]
    request = transfer.request
    history = await _raw_history(temporal_env.client, request.transfer_id)

    summaries = [
        json.loads(event.user_metadata.summary.data)
        for event in history.events
        if event.user_metadata.HasField("summary")
    ]
    attributes = history.events[0].workflow_execution_started_event_attributes.search_attributes

    route = f"{request.source_account_id} -> {request.target_account_id}"
    assert summaries[0] == f"9876.54 USD {route}"  # the transfer's, in the Web UI's list
    assert f"credit 9876.54 USD to {request.target_account_id}" in summaries
    assert json.loads(attributes.indexed_fields["SourceAccountId"].data) == (
        request.source_account_id
    )
    assert json.loads(attributes.indexed_fields["Amount"].data) == AMOUNT
    assert all(transfer.secrets[0] not in s.encode() for s in summaries)
    assert all(transfer.secrets[0] not in p.data for p in attributes.indexed_fields.values())


async def test_the_keys_read_everything_back_and_the_result_carries_no_balance(
    sent: list[Sent], transfers: TransfersClient, temporal_env: WorkflowEnvironment
) -> None:
    transfer = sent[1]  # compensated: its error names the closed account
    request = transfer.request
    history = await _raw_history(temporal_env.client, request.transfer_id)
    started = history.events[0].workflow_execution_started_event_attributes
    completed = history.events[-1].workflow_execution_completed_event_attributes
    converter = transfers.client.data_converter

    [recorded] = await converter.decode(started.input.payloads, [TransferRequest])
    [result] = await converter.decode(completed.result.payloads, [TransferOutcome])
    assert recorded == request  # the memo comes back with the keys
    assert result == transfer.outcome
    assert result.error is not None
    assert result.error.message == f"account {request.target_account_id} is closed"
    assert await transfers.submit(request) == transfer.outcome  # the same request, found again
    # The field stays for the workers of the release before (tests/workflows/
    # test_wire_compatibility.py); it never holds a balance.
    assert result.entries
    assert all(entry.balance_after == 0 for entry in result.entries)


async def test_histories_with_the_codec_replay(
    sent: list[Sent], temporal_env: WorkflowEnvironment, transfers: TransfersClient
) -> None:
    replayer = Replayer(
        workflows=[TransferWorkflow, PendingTransferWorkflow],
        data_converter=transfers.client.data_converter,
    )
    for transfer in sent:
        history = await _raw_history(temporal_env.client, transfer.request.transfer_id)

        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

        assert result.replay_failure is None


async def test_rotation_reads_old_payloads_and_an_unknown_key_fails_clearly(
    sent: list[Sent], settings: Settings, tmp_path: Path
) -> None:
    transfer_id = sent[0].request.transfer_id
    rotated = _with_keys(settings, "newer", new=NEW_KEY, newer=os.urandom(16))
    retired = _with_keys(settings, "newer", newer=os.urandom(16))
    unknown = "key id 'new', which PAYLOAD_KEYS does not hold"

    rotated_client = TransfersClient(await connect_temporal(rotated), rotated)
    retired_client = TransfersClient(await connect_temporal(retired), retired)

    assert await rotated_client.status(transfer_id) == sent[0].outcome
    with pytest.raises(PayloadKeyError, match=unknown):
        await retired_client.status(transfer_id)
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": retired.temporal_address,
        "SHARD_DSNS": retired.shard_dsns,
        "PAYLOAD_KEYS": _keys(newer=os.urandom(16)).get_secret_value(),
        "PAYLOAD_KEY_ID": "newer",
    }
    status = await asyncio.to_thread(run_cli, ("status", transfer_id, "--json"), env, tmp_path)
    assert (status.exit_code, "Traceback" in status.stderr) == (1, False), status
    assert status.json()["error"]["type"] == "PayloadKeyError"
    assert unknown in status.json()["error"]["message"]


async def test_insufficient_funds_tells_the_submitter_no_balance(
    transfers: TransfersClient, accounts: Accounts, new_id: Callable[[str], str]
) -> None:
    source = await accounts.open(FUNDS, shard=0)
    target = await accounts.open(0, shard=1)
    request = TransferRequest(
        transfer_id=new_id("t"),
        source_account_id=source,
        target_account_id=target,
        amount=FUNDS + 1,
        currency="USD",
    )

    outcome = await transfers.submit(request)

    assert outcome.error is not None
    assert outcome.error.type == "InsufficientFunds"
    assert outcome.error.message == f"account {source} has too little available for {FUNDS + 1}"
    assert str(FUNDS) not in outcome.model_dump_json()
