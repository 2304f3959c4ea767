"""Whatever a client of the namespace writes into a workflow id, a search attribute or a
termination reason, `transfers list` and `transfers status` print it as inert text: no Rich
markup read (`[/]` used to crash them), no link made, no escape sequence sent to the terminal."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from rich.text import Text
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from tests.support.cli_runs import CliResult, run_cli
from transfers.client import WORKFLOW_TYPE, workflow_id
from transfers.settings import Settings
from transfers.terminal import InertConsole, inert
from workflows.search_attributes import (
    AMOUNT,
    CURRENCY,
    SOURCE_ACCOUNT_ID,
    TARGET_ACCOUNT_ID,
    TRANSFER_STATUS,
)

pytestmark = pytest.mark.security

CLOSE_MARKUP = "[/]"
MARKUP_LINK = "[link=http://evil]x[/link]"
OSC8_LINK = "\x1b]8;;http://evil\x07"
CLEAR_SCREEN = "\x1b[2J"
HOSTILE = f"{CLOSE_MARKUP} {MARKUP_LINK} {OSC8_LINK}{CLEAR_SCREEN}"
LIST_WAIT_S = 10.0  # visibility is eventually consistent


async def _start_hostile(client: Client, transfer_id: str, status: str = "RUNNING") -> None:
    """A 'transfer' as any client of the namespace may start one: hostile id and search
    attributes, on a task queue no worker polls, then terminated with a hostile reason."""
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        {"transfer_id": transfer_id},
        id=workflow_id(transfer_id),
        task_queue=f"nobody-{uuid.uuid4().hex}",
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(TRANSFER_STATUS, status),
                SearchAttributePair(SOURCE_ACCOUNT_ID, f"src {HOSTILE}"),
                SearchAttributePair(TARGET_ACCOUNT_ID, f"dst {HOSTILE}"),
                SearchAttributePair(AMOUNT, 1234),
                SearchAttributePair(CURRENCY, CLOSE_MARKUP),
            ]
        ),
    )
    await handle.terminate(reason=f"reason {HOSTILE}")


def _assert_inert(result: CliResult) -> str:
    """The command succeeded and printed nothing a terminal would act on; its stdout."""
    assert result.exit_code == 0, result
    assert "Traceback" not in result.stderr, result.stderr
    printed = result.stdout + result.stderr
    assert "\x1b" not in printed  # no escape sequence
    assert "\x07" not in printed
    assert "]8;;" not in printed  # nor what is left of an OSC 8 link
    return result.stdout


async def test_hostile_ids_attributes_and_reasons_are_printed_as_text(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    transfer_id = f"t-{uuid.uuid4().hex[:8]} {HOSTILE}"
    bad_status_id = f"t-{uuid.uuid4().hex[:8]} bad status {CLOSE_MARKUP}"
    await _start_hostile(client, transfer_id)
    await _start_hostile(client, bad_status_id, status=f"COMPLETED{CLOSE_MARKUP}")
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "SHARD_DSNS": settings.shard_dsns,
        "COLUMNS": "500",  # a table row on one line, so the values are found whole
    }

    def cli(*args: str) -> CliResult:
        return run_cli(args, env, tmp_path)

    async with asyncio.timeout(LIST_WAIT_S):
        while inert(transfer_id) not in (listed := await asyncio.to_thread(cli, "list")).stdout:
            _assert_inert(listed)
            await asyncio.sleep(0.3)
    status, as_json = await asyncio.gather(
        asyncio.to_thread(cli, "status", transfer_id),
        asyncio.to_thread(cli, "status", transfer_id, "--json"),
    )

    table = _assert_inert(listed)
    assert f"src {CLOSE_MARKUP} {MARKUP_LINK} " in table  # literal brackets, escapes cut out
    assert f"dst {CLOSE_MARKUP} {MARKUP_LINK} " in table
    assert f"12.34 {CLOSE_MARKUP}" in table
    assert "bad status" not in table  # a status that is none of ours: not a transfer of ours
    line = _assert_inert(status).splitlines()[0]
    assert line == f"{inert(transfer_id)} FAILED (step workflow-failed): Terminated: " + inert(
        f"reason {HOSTILE}"
    )
    assert inert(f"reason {HOSTILE}") == f"reason {CLOSE_MARKUP} {MARKUP_LINK} "
    data = as_json.json()  # JSON keeps the data exactly, its escapes are JSON's own
    assert (data["transfer_id"], data["amount"], data["currency"]) == (
        transfer_id,
        "12.34",
        CLOSE_MARKUP,
    )
    assert "\x1b" not in as_json.stdout


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (MARKUP_LINK, MARKUP_LINK),
        (f"a{OSC8_LINK}b\x1b]8;;\x07c", "abc"),
        (f"{CLEAR_SCREEN}x\x1b[31;1my", "xy"),
        ("unterminated \x1b]8;;http://evil", "unterminated "),
        ("8-bit \x9b31m csi", "8-bit 31m csi"),
        ("line\nforged\r\tline", "line forged line"),
        ("bell\x07 nul\x00 del\x7f", "bell nul del"),
        ("bidi \u202eevil\u202c", "bidi evil"),
    ],
)
def test_inert_text_keeps_what_a_terminal_shows_and_cuts_what_it_acts_on(
    value: str, shown: str
) -> None:
    assert inert(value) == shown


def test_a_text_built_from_data_is_cut_of_escape_sequences_too() -> None:
    console = InertConsole()
    with console.capture() as captured:
        # ended by ST: a Text drops BEL itself, and an OSC left open is cut up to the next ESC
        console.print(Text(f"a\x1b]8;;http://evil\x1b\\b{CLEAR_SCREEN}c\nnext [/]"))
    assert captured.get() == "abc\nnext [/]\n"
