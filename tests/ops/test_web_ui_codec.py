"""The Web UI shows encrypted payloads decrypted through `transfers codec-server`: a transfer runs
with PAYLOAD_KEYS on a dev server whose UI is pointed at the codec server
(`--ui-codec-endpoint`), and headless Chromium finds its memo in the workflow's input, which the
server itself holds encrypted only.

Screenshots go to artifacts/webui/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerActivities
from shards.ledger import Ledger
from shards.router import ShardRouter
from tests.ops.test_web_ui_tracing import ARTIFACTS, CHROMIUM, page  # noqa: F401 (a fixture)
from tests.support.codec_server import codec_server, key_env
from tests.support.workers import Accounts, running_worker
from transfers.client import TransfersClient, workflow_id
from transfers.settings import Settings
from transfers.temporal_connection import connect_temporal
from workflows.models import TransferRequest, TransferStatus
from workflows.search_attributes import REGISTRATION

pytestmark = [
    pytest.mark.webui,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing"),
]


@dataclass(frozen=True)
class Shown:
    """A transfer run with the codec on, and the Web UI that should show its memo."""

    ui_url: str
    request: TransferRequest
    history: bytes  # what the server holds, read without the codec


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
async def shown(dsns: list[str], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shown]:
    keys = key_env(ui=os.urandom(32))
    ui_url = f"http://127.0.0.1:{_free_port()}"
    folder = tmp_path_factory.mktemp("codec-ui")
    with codec_server(keys, folder, "--ui-origin", ui_url) as codec_url:
        registration = [f"--search-attribute={name}={kind}" for name, kind in REGISTRATION.items()]
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(Path(sys.prefix) / "bin" / "temporal"),
            dev_server_extra_args=[*registration, "--ui-codec-endpoint", codec_url],
            ui=True,
            ui_port=int(ui_url.rsplit(":", 1)[1]),
            data_converter=pydantic_data_converter,  # no codec: reads what the server holds
        )
        router = ShardRouter.from_dsns(dsns)
        try:
            settings = Settings(
                _env_file=None,
                temporal_address=env.client.service_client.config.target_host,
                transfers_task_queue=_new_id("queue"),
                shard_dsns=",".join(dsns),
                payload_keys=SecretStr(keys["PAYLOAD_KEYS"]),
                payload_key_id=keys["PAYLOAD_KEY_ID"],
            )
            accounts = Accounts(Ledger(router), _new_id)
            request = TransferRequest(
                transfer_id=_new_id("t"),
                source_account_id=await accounts.open(10_000, shard=0),
                target_account_id=await accounts.open(0, shard=1),
                amount=1_234,
                currency="USD",
                memo=_new_id("memo-seen-with-the-key"),
            )
            client = await connect_temporal(settings)
            async with running_worker(client, settings, LedgerActivities(Ledger(router))):
                outcome = await TransfersClient(client, settings).submit(request)
            assert outcome.status == TransferStatus.COMPLETED
            handle = env.client.get_workflow_handle(workflow_id(request.transfer_id))
            history = (await handle.fetch_history()).to_json().encode()
            yield Shown(ui_url, request, history)
        finally:
            await router.dispose()
            await env.shutdown()


async def test_the_ui_shows_the_memo_through_the_codec_server(
    shown: Shown,
    page: Page,  # noqa: F811 (the fixture imported above)
) -> None:
    request = shown.request
    assert request.memo is not None
    assert request.memo.encode() not in shown.history  # the server holds it encrypted

    await page.goto(
        f"{shown.ui_url}/namespaces/default/workflows/{workflow_id(request.transfer_id)}"
    )

    await expect(page.get_by_text(request.memo).first).to_be_visible()
    await page.screenshot(path=ARTIFACTS / "codec-decrypted-input.png", full_page=True)
